//! Resource-scoped permissions from the path: `integration:{integrationId}:admin`.

use crate::support::*;

const ROUTES: &str = r#"
[[route]]
name = "integration.permissions"
methods = ["POST"]
path = "/api/integrations/{integrationId}/permissions"
require = ["integration:{integrationId}:admin"]
"#;

#[tokio::test]
async fn only_the_matching_integration_and_no_injected_ids() {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.grant("alice", &["integration:virustotal_3_7_4:admin"]);
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let auth = [("authorization", "Bearer alice")];
    let post = |id: String| {
        let gw = gw.addr;
        async move {
            request(
                gw,
                "POST",
                &format!("/api/integrations/{id}/permissions"),
                &auth,
                "{}",
            )
            .await
        }
    };

    let r = post("virustotal_3_7_4".into()).await;
    assert_eq!(r.status, 200);
    let r = post("VirusTotal_3_7_4".into()).await;
    assert_eq!(r.status, 200, "permission comparison ignores case");
    let r = post("other".into()).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["missingPermissions"],
        serde_json::json!(["integration:other:admin"])
    );

    // Values that would widen the grant if substituted raw.
    for id in [
        "a:b",
        "*",
        "x,y",
        "virustotal_3_7_4:admin",
        "%2A",
        "x%2Cy",
        "a%3Ab",
        "virustotal_3_7_4%3Aadmin",
        "%7B%7D",
        "a%20b",
    ] {
        let r = post(id.into()).await;
        assert_eq!(r.status, 403, "{id}");
        assert_eq!(
            r.json()["missingPermissions"],
            serde_json::json!(["integration:<invalid>:admin"]),
            "{id}"
        );
    }
    for id in ["%2F", "a%2fb", "..", "%2e%2e"] {
        let r = post(id.into()).await;
        assert_eq!(r.status, 400, "{id}");
    }
    assert_eq!(
        backend.count(),
        2,
        "only the two allowed requests were forwarded"
    );

    // A caller with a wildcard over integrations may use any plain id, and still no injected one.
    api.grant("root", &["integration:*:admin"]);
    let r = request(
        gw.addr,
        "POST",
        "/api/integrations/any-1/permissions",
        &[("authorization", "Bearer root")],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let r = request(
        gw.addr,
        "POST",
        "/api/integrations/a:b/permissions",
        &[("authorization", "Bearer root")],
        "",
    )
    .await;
    assert_eq!(r.status, 403);
}
