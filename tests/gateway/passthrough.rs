//! A FlexDeploy-style credential API (GET by id, GET with query filters,
//! POST, PUT, PATCH; Basic auth) keeps working exactly as before for an
//! allowed caller.

use crate::support::*;

const BASE: &str = "/flexdeploy/rest/v2/administration/security/credential";

const ROUTES: &str = r#"
[[route]]
name = "credential.get"
methods = ["GET"]
path = "/flexdeploy/rest/v2/administration/security/credential/{Id}"
require = ["flexdeploy:credential:read"]

[[route]]
name = "credential.search"
methods = ["GET"]
path = "/flexdeploy/rest/v2/administration/security/credential"
require = ["flexdeploy:credential:read"]

[[route]]
name = "credential.create"
methods = ["POST"]
path = "/flexdeploy/rest/v2/administration/security/credential"
require = ["flexdeploy:credential:create"]

[[route]]
name = "credential.update"
methods = ["PUT", "PATCH"]
path = "/flexdeploy/rest/v2/administration/security/credential/{credentialId}"
require = ["flexdeploy:credential:update"]
"#;

const BASIC: &str = "Basic Y2k6czNjcjN0LXBhc3N3b3Jk"; // ci:s3cr3t-password

/// Answers like the seed API: 200/201/400/404/500 with their bodies.
fn flexdeploy(r: &Recorded) -> Reply {
    let id = r.path().strip_prefix(BASE).unwrap_or("");
    match (r.method.as_str(), id) {
        ("GET", "/11004") => Reply::json(
            200,
            r#"{"credentialId":11004,"versionNumber":1,"credentialName":"GET Example Name","isActive":true,"credentialScope":"ENVINST","credentialStoreId":11000,"credentialInputs":[{"versionNumber":1,"inputValue":"TestPassword","credentialStoreInputDefId":12000}]}"#,
        )
        .header("etag", "\"v1\""),
        ("GET", "/99999") => Reply::json(404, r#"{"message":"Credential not found"}"#),
        ("GET", "/500") => Reply::json(500, r#"{"message":"Unexpected internal server error"}"#),
        ("GET", "") => Reply::json(200, &format!("[{{\"query\":{:?}}}]", r.target.split_once('?').map_or("", |q| q.1))),
        ("POST", "") if r.body.is_empty() => Reply::json(400, r#"{"message":"Bad request"}"#),
        ("POST", "") => Reply::json(201, r#"{"credentialId":11105}"#).header("location", &format!("{BASE}/11105")),
        ("PUT" | "PATCH", "/11104") => Reply::json(200, &String::from_utf8_lossy(&r.body)),
        _ => Reply::json(404, r#"{"message":"no such thing"}"#),
    }
}

#[tokio::test]
async fn allowed_caller_sees_the_api_unchanged() {
    let backend = Backend::start(flexdeploy).await;
    let api = PermissionApi::start().await;
    api.set(
        BASIC,
        ApiReply::grants("ci", &["flexdeploy:credential:*"], &[]),
    );
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let basic = [("authorization", BASIC)];

    let r = request(gw.addr, "GET", &format!("{BASE}/11004"), &basic, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["credentialInputs"][0]["inputValue"],
        "TestPassword"
    );
    assert_eq!(
        r.header("etag"),
        Some("\"v1\""),
        "upstream headers pass back"
    );
    assert_eq!(
        backend.last().unwrap().header("authorization").as_deref(),
        Some(BASIC),
        "Basic header unchanged"
    );

    // Query string byte for byte, including escapes, '+', empty values and repeats.
    let query = "credentialName=GET%20ex&credentialScope=envinst&credentialStoreId=11000&x=%2F%2e%25&y=a+b&z=&z=2";
    let r = request(gw.addr, "GET", &format!("{BASE}?{query}"), &basic, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(backend.last().unwrap().target, format!("{BASE}?{query}"));
    assert_eq!(r.json()[0]["query"], query);

    let body = r#"{"credentialName":"n","credentialScope":"ENVINST","credentialStoreId":11000,"credentialInputs":[{"inputValue":"p@ss\u00e9","credentialStoreInputDefId":12000}]}"#;
    let r = request(
        gw.addr,
        "POST",
        BASE,
        &[basic[0], ("content-type", "application/json")],
        body,
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), Some(&*format!("{BASE}/11105")));
    assert_eq!(
        backend.last().unwrap().body,
        body.as_bytes(),
        "request body unchanged"
    );
    assert_eq!(
        backend.last().unwrap().header("content-type").as_deref(),
        Some("application/json")
    );

    for method in ["PUT", "PATCH"] {
        let r = request(gw.addr, method, &format!("{BASE}/11104"), &basic, body).await;
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(r.body, body.as_bytes(), "{method} response body unchanged");
    }

    let r = request(gw.addr, "POST", BASE, &basic, "").await;
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (400, Some("Bad request"))
    );
    let r = request(gw.addr, "GET", &format!("{BASE}/99999"), &basic, "").await;
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (404, Some("Credential not found"))
    );
    let r = request(gw.addr, "GET", &format!("{BASE}/500"), &basic, "").await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.body.as_ref(),
        br#"{"message":"Unexpected internal server error"}"#
    );
    assert_eq!(backend.count(), 8);
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let backend = Backend::start(|r| Reply::json(200, &"x".repeat(r.body.len()))).await;
    let api = PermissionApi::start().await;
    api.set(BASIC, ApiReply::grants("ci", &["flexdeploy"], &[]));
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let big = vec![b'a'; 3 * 1024 * 1024 + 17];
    let r = request(
        gw.addr,
        "PUT",
        &format!("{BASE}/11104"),
        &[("authorization", BASIC)],
        big.clone(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), big.len());
    assert_eq!(backend.last().unwrap().body.len(), big.len());
}
