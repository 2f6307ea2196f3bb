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

const OVERRIDE_ROUTES: &str = r#"
default = "deny"

[[route]]
name = "public"
path = "/pub/{*rest}"
public = true

[[route]]
name = "items.create"
methods = ["POST"]
path = "/items"
require = ["items:item:add"]
"#;

/// One request over raw TCP, header names spelled exactly as given.
async fn raw_post(addr: std::net::SocketAddr, target: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!("POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    raw(addr, req.as_bytes(), std::time::Duration::from_secs(2)).await
}

#[tokio::test]
async fn method_override_headers_in_any_case_and_on_public_routes_are_400() {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.grant("t", &["items"]);
    let gw = GatewayBuilder::new(OVERRIDE_ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let names = [
        "X-HTTP-Method-Override",
        "X-HTTP-METHOD-OVERRIDE",
        "x-http-method-override",
        "x-Http-Method-Override",
        "X-hTTp-mEtHoD-oVeRrIdE",
        "X-HTTP-Method",
        "X-HTTP-METHOD",
        "x-http-method",
        "X-Method-Override",
        "X-METHOD-OVERRIDE",
        "x-method-override",
    ];
    for name in names {
        for (target, auth) in [("/pub/x", None), ("/items", Some("Bearer t"))] {
            for value in ["DELETE", "delete", "GET", ""] {
                let mut headers = vec![(name, value)];
                headers.extend(auth.map(|a| ("Authorization", a)));
                let answer = raw_post(gw.addr, target, &headers).await;
                assert!(
                    answer.starts_with("HTTP/1.1 400 "),
                    "{name}: {value:?} on {target}: {answer}"
                );
                assert!(answer.contains("\"bad_request\""), "{answer}");
            }
        }
    }
    // Also over HTTP/2 (names are lower case on the wire), on the public route.
    for name in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ] {
        let r = request_h2(gw.addr, "POST", "/pub/x", &[(name, "DELETE")], "").await;
        assert_eq!(r.status, 400, "{name} over h2");
    }
    assert_eq!(backend.count(), 0, "nothing was forwarded");
    assert_eq!(api.calls(), 0, "no grant lookup");

    // Controls: the same requests without the header are forwarded.
    assert!(
        raw_post(gw.addr, "/pub/x", &[])
            .await
            .starts_with("HTTP/1.1 200 ")
    );
    let answer = raw_post(gw.addr, "/items", &[("Authorization", "Bearer t")]).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert_eq!(backend.count(), 2);
}

/// CGI-style backends (Rack on Puma, uWSGI, …) turn `-` and `_` in header
/// names into the same `HTTP_X_HTTP_METHOD_OVERRIDE` variable, so an
/// underscore spelling is the same override to them.
#[tokio::test]
async fn method_override_underscore_spellings_are_400() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(OVERRIDE_ROUTES)
        .backend(backend.addr)
        .start();
    for name in [
        "X_HTTP_METHOD_OVERRIDE",
        "x_http_method_override",
        "X-HTTP_Method-Override",
        "X_HTTP_METHOD",
        "X_Method_Override",
    ] {
        let answer = raw_post(gw.addr, "/pub/x", &[(name, "DELETE")]).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{name}: {answer}");
    }
    assert_eq!(backend.count(), 0, "nothing was forwarded");
}
