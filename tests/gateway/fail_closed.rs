//! Any failure to resolve grants is a 503 and the backend never sees the request.

use std::time::Duration;

use crate::support::*;

const ROUTES: &str = r#"
[[route]]
path = "/items/{id}"
require = ["items:item:view"]
"#;

/// Starts a gateway whose permission API is at `grants_url` and checks a
/// request fails closed; `api`, when the API runs, must be asked again for
/// the second request (failures are not cached).
async fn expect_503(grants_url: String, api: Option<&PermissionApi>) {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(grants_url)
        .grants("timeout = \"300ms\"")
        .start();
    let r = get(gw.addr, "/items/1", Some("t")).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.json()["code"], "permission_service_unavailable");
    assert!(r.header("x-request-id").is_some());
    let calls = api.map(|a| a.calls());
    assert_eq!(get(gw.addr, "/items/1", Some("t")).await.status, 503);
    if let (Some(api), Some(before)) = (api, calls) {
        assert_eq!(before, 1);
        assert_eq!(api.calls(), 2, "failures are not cached");
    }
    assert_eq!(backend.count(), 0, "the backend never sees the request");
}

async fn scripted(reply: ApiReply) {
    let api = PermissionApi::start().await;
    api.set("Bearer t", reply);
    expect_503(api.url(), Some(&api)).await;
}

#[tokio::test]
async fn api_down() {
    let down = crate::support::backend::refused_addr().await;
    expect_503(format!("http://{down}/grants"), None).await;
}

#[tokio::test]
async fn api_error_status() {
    scripted(ApiReply::raw(500, "{}")).await;
    scripted(ApiReply::raw(404, "{}")).await;
    scripted(ApiReply::raw(302, "")).await;
}

#[tokio::test]
async fn api_slower_than_its_timeout() {
    scripted(ApiReply::grants("t", &["items"], &[]).delayed(Duration::from_secs(2))).await;
}

#[tokio::test]
async fn api_invalid_json() {
    scripted(ApiReply::raw(200, "{\"permissions\": [")).await;
}

#[tokio::test]
async fn api_wrong_types() {
    for body in [
        r#"{"permissions":"items"}"#,
        r#"{"permissions":[1,2]}"#,
        r#"{"subject":"t"}"#,
        r#"{"permissions":["items"],"deny":{}}"#,
    ] {
        scripted(ApiReply::raw(200, body)).await;
    }
}
