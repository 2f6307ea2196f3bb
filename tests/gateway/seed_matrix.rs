//! The seed route table (`/api/v2/integrations/credentials`, six endpoints)
//! as a full matrix: every endpoint × every kind of caller.

use crate::support::*;

pub const CREDENTIAL_ROUTES: &str = r#"
default = "deny"

[[route]]
name = "credentials.list"
methods = ["GET"]
path = "/api/v2/integrations/credentials"
require = ["integrations:integration:view"]

[[route]]
name = "credentials.types"
methods = ["GET"]
path = "/api/v2/integrations/credentials/types"
require = ["integrations:integration:view"]

[[route]]
name = "credentials.get"
methods = ["GET"]
path = "/api/v2/integrations/credentials/{credentialId}"
require = ["integrations:integration:view"]

[[route]]
name = "credentials.create"
methods = ["POST"]
path = "/api/v2/integrations/credentials"
require = ["integrations:integration:add"]

[[route]]
name = "credentials.delete"
methods = ["DELETE"]
path = "/api/v2/integrations/credentials/{credentialId}"
require = ["integrations:integration:delete"]

[[route]]
name = "credentials.update"
methods = ["PUT"]
path = "/api/v2/integrations/credentials/{credentialId}"
require = ["integrations:integration:edit"]
"#;

const ENDPOINTS: [(&str, &str, &str); 6] = [
    ("GET", "/api/v2/integrations/credentials", "view"),
    ("GET", "/api/v2/integrations/credentials/types", "view"),
    ("GET", "/api/v2/integrations/credentials/97f652b5", "view"),
    ("POST", "/api/v2/integrations/credentials", "add"),
    (
        "DELETE",
        "/api/v2/integrations/credentials/97f652b5",
        "delete",
    ),
    ("PUT", "/api/v2/integrations/credentials/97f652b5", "edit"),
];

/// A caller of the matrix.
struct Caller {
    token: &'static str,
    allow: Vec<&'static str>,
    deny: Vec<&'static str>,
    /// The actions it may perform.
    may: Vec<&'static str>,
}

fn caller(
    token: &'static str,
    allow: &[&'static str],
    deny: &[&'static str],
    may: &[&'static str],
) -> Caller {
    Caller {
        token,
        allow: allow.to_vec(),
        deny: deny.to_vec(),
        may: may.to_vec(),
    }
}

fn callers() -> Vec<Caller> {
    let all = ["view", "add", "edit", "delete"];
    vec![
        caller("viewer", &["integrations:integration:view"], &[], &["view"]),
        caller("adder", &["integrations:integration:add"], &[], &["add"]),
        caller("editor", &["integrations:integration:edit"], &[], &["edit"]),
        caller(
            "deleter",
            &["integrations:integration:delete"],
            &[],
            &["delete"],
        ),
        caller("wildcard", &["integrations:integration:*"], &[], &all),
        caller("domain", &["integrations"], &[], &all),
        caller(
            "denied-delete",
            &["integrations:integration:*"],
            &["integrations:integration:delete"],
            &["view", "add", "edit"],
        ),
        caller("other-domain", &["routing:queue:*"], &[], &[]),
        caller("nothing", &[], &[], &[]),
    ]
}

#[tokio::test]
async fn every_endpoint_for_every_caller() {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    for c in callers() {
        api.set(
            &format!("Bearer {}", c.token),
            ApiReply::grants(c.token, &c.allow, &c.deny),
        );
    }
    let gw = GatewayBuilder::new(CREDENTIAL_ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();

    let mut expected_at_backend = Vec::new();
    let mut cells = 0;
    for Caller { token, may, .. } in callers() {
        for (method, path, action) in ENDPOINTS {
            let auth = format!("Bearer {token}");
            let r = request(gw.addr, method, path, &[("authorization", &auth)], "{}").await;
            let allowed = may.contains(&action);
            cells += 1;
            if allowed {
                assert_eq!(r.status, 200, "{token} {method} {path}: {:?}", r.body);
                expected_at_backend.push(format!("{method} {path}"));
            } else {
                assert_eq!(r.status, 403, "{token} {method} {path}: {:?}", r.body);
                let j = r.json();
                assert_eq!(j["code"], "forbidden");
                assert_eq!(
                    j["missingPermissions"],
                    serde_json::json!([format!("integrations:integration:{action}")])
                );
                assert!(j["route"].as_str().unwrap().starts_with("credentials."));
            }
        }
    }
    assert_eq!(cells, 54);
    let seen: Vec<String> = backend
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        seen, expected_at_backend,
        "the backend sees exactly the allowed requests"
    );

    // Without credentials: 401 on every endpoint, nothing forwarded.
    backend.clear();
    for (method, path, _) in ENDPOINTS {
        let r = request(gw.addr, method, path, &[], "").await;
        assert_eq!(r.status, 401, "{method} {path}");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"permgate\"")
        );
        assert_eq!(r.json()["code"], "unauthenticated");
    }
    // Unknown token: the permission API says 401.
    let r = get(
        gw.addr,
        "/api/v2/integrations/credentials",
        Some("stranger"),
    )
    .await;
    assert_eq!(r.status, 401);
    // No route for the method or path: default deny.
    let r = request(
        gw.addr,
        "PATCH",
        "/api/v2/integrations/credentials/1",
        &[("authorization", "Bearer domain")],
        "",
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["message"], "no route matches this request");
    assert_eq!(backend.count(), 0);
}
