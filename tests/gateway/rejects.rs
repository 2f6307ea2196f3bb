//! Requests answered with 400 before any grant lookup.

use crate::support::*;

#[tokio::test]
async fn ambiguous_requests_are_400_without_a_grant_lookup() {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.grant("t", &["*"]);
    let gw = GatewayBuilder::new("default = \"allow\"\n")
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let auth = ("authorization", "Bearer t");
    for path in [
        "/a/../b",
        "/a/%2e%2E/b",
        "/a/./b",
        "/a%2Fb",
        "/a%5cb",
        "/a\\b",
        "/a;x=1",
        "/a%00",
        "/a%zz",
        "/%C0%AE",
    ] {
        let r = request(gw.addr, "GET", path, &[auth], "").await;
        assert_eq!(r.status, 400, "{path}");
        let j = r.json();
        assert_eq!(j["code"], "bad_request", "{path}");
        assert!(j["requestId"].is_string());
    }
    for h in [
        "x-http-method-override",
        "X-HTTP-Method",
        "x-method-override",
    ] {
        let r = request(gw.addr, "POST", "/a", &[auth, (h, "DELETE")], "").await;
        assert_eq!(r.status, 400, "{h}");
    }
    assert_eq!(api.calls(), 0, "no grant lookup");
    assert_eq!(backend.count(), 0);
    // The same gateway forwards a canonical request.
    assert_eq!(
        request(gw.addr, "GET", "/a/%62", &[auth], "").await.status,
        200
    );
    assert_eq!(
        backend.last().unwrap().target,
        "/a/b",
        "the decoded form is forwarded"
    );
}

#[tokio::test]
async fn declared_bodies_over_the_limit_are_413_before_the_upstream() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new("default = \"allow\"\n")
        .backend(backend.addr)
        .server("max_request_body = \"1KiB\"")
        .start();
    let r = request(gw.addr, "POST", "/upload", &[], vec![b'x'; 2048]).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "payload_too_large");
    assert_eq!(backend.count(), 0);
    assert_eq!(
        request(gw.addr, "POST", "/upload", &[], vec![b'x'; 1024])
            .await
            .status,
        200
    );
}
