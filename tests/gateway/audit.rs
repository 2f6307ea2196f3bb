//! Audit mode forwards what enforce mode would refuse; ambiguity is still 400.

use crate::support::*;

#[tokio::test]
async fn audit_mode_forwards_refusals_but_not_ambiguity() {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.grant("viewer", &["items:item:view"]);
    let routes = r#"
mode = "audit"
[[route]]
path = "/items/{id}"
methods = ["DELETE"]
require = ["items:item:delete"]
[[route]]
path = "/locked/{id}"
require = ["items:item:admin"]
mode = "enforce"
"#;
    let gw = GatewayBuilder::new(routes)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let auth = [("authorization", "Bearer viewer")];
    assert_eq!(
        request(gw.addr, "DELETE", "/items/1", &auth, "")
            .await
            .status,
        200,
        "would deny, forwarded"
    );
    assert_eq!(
        request(gw.addr, "DELETE", "/items/1", &[], "").await.status,
        200,
        "would be 401, forwarded"
    );
    assert_eq!(
        request(gw.addr, "GET", "/unrouted", &auth, "").await.status,
        200,
        "default deny, forwarded"
    );
    assert_eq!(
        backend
            .last()
            .unwrap()
            .header("x-authenticated-subject")
            .as_deref(),
        None
    );
    assert_eq!(backend.count(), 3);
    assert_eq!(
        request(gw.addr, "GET", "/locked/1", &auth, "").await.status,
        403,
        "a route can enforce"
    );
    assert_eq!(
        request(gw.addr, "DELETE", "/items/%2e%2e", &auth, "")
            .await
            .status,
        400
    );
    assert_eq!(backend.count(), 3);
}
