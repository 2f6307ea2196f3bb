//! Regression tests for defects an attack run found: where unmatched traffic
//! goes, `_` spellings of the subject header, re-routing headers, Host,
//! upstream 101s, and `/admin/explain` in audit mode.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::*;

/// A backend whose every answer names it, so a test sees which one served.
async fn named_backend(name: &'static str) -> Backend {
    Backend::start(move |_| Reply::json(200, &format!("{{\"backend\":\"{name}\"}}"))).await
}

/// `[upstreams.api]` in front of `addr`.
fn api_upstream(addr: SocketAddr) -> String {
    format!("[upstreams.api]\nurl = \"http://{addr}\"\ntimeout = \"3s\"\n")
}

#[tokio::test]
async fn unmatched_requests_go_to_the_default_upstream() {
    let api = named_backend("api").await;
    let default = named_backend("default").await;
    let permissions = PermissionApi::start().await;
    permissions.grant("t", &["x"]);
    for policy in ["allow", "authenticate"] {
        let routes = format!(
            "default = \"{policy}\"\n[[route]]\npath = \"/api/{{id}}\"\nupstream = \"api\"\nrequire = [\"x\"]\n"
        );
        let gw = GatewayBuilder::new(&routes)
            .backend(default.addr)
            .grants_url(permissions.url())
            .more(&api_upstream(api.addr))
            .start();
        let r = get(gw.addr, "/unrouted", Some("t")).await;
        assert_eq!(r.status, 200, "{policy}");
        assert_eq!(r.json()["backend"], "default", "default = {policy}");
        let r = get(gw.addr, "/api/1", Some("t")).await;
        assert_eq!(r.json()["backend"], "api", "a route naming an upstream");
    }
    assert_eq!(api.count(), 2, "only the routed requests reached api");
    assert_eq!(default.count(), 2);
}

#[tokio::test]
async fn underscore_spellings_of_the_subject_header_never_reach_the_backend() {
    let backend = Backend::echo().await;
    let permissions = PermissionApi::start().await;
    permissions.set(
        "Bearer t",
        ApiReply::grants("alice", &["items:item:view"], &[]),
    );
    let routes = r#"
[[route]]
path = "/public"
public = true
[[route]]
path = "/items/{id}"
require = ["items:item:view"]
"#;
    let gw = GatewayBuilder::new(routes)
        .backend(backend.addr)
        .grants_url(permissions.url())
        .start();
    let spoofs = [
        ("X_Authenticated_Subject", "admin"),
        ("x_authenticated-subject", "admin"),
        ("x-authenticated_subject", "admin"),
    ];
    for (path, token) in [("/public", None), ("/items/1", Some("Bearer t"))] {
        let mut headers: Vec<(&str, &str)> = spoofs.to_vec();
        headers.push(("X-Authenticated-Subject", "admin"));
        if let Some(t) = token {
            headers.push(("authorization", t));
        }
        let r = request(gw.addr, "GET", path, &headers, "").await;
        assert_eq!(r.status, 200, "{path}");
        let seen = backend.last().unwrap();
        let subject_like: Vec<(String, String)> = seen
            .headers
            .iter()
            .filter(|(n, _)| n.as_str().replace('_', "-") == "x-authenticated-subject")
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let expected: Vec<(String, String)> = match token {
            None => vec![],
            Some(_) => vec![("x-authenticated-subject".into(), "alice".into())],
        };
        assert_eq!(subject_like, expected, "{path}");
    }
}

#[tokio::test]
async fn rerouting_headers_are_400_before_any_grant_lookup() {
    let backend = Backend::echo().await;
    let permissions = PermissionApi::start().await;
    permissions.grant("t", &["*"]);
    let gw = GatewayBuilder::new(
        "[[route]]\npath = \"/a\"\nrequire = [\"x\"]\n[[route]]\npath = \"/p\"\npublic = true\n",
    )
    .backend(backend.addr)
    .grants_url(permissions.url())
    .start();
    for (name, value) in [
        ("X-Original-URL", "/admin"),
        ("x_original_url", "/admin"),
        ("X-Rewrite-URL", "/admin"),
        ("X_Rewrite_Url", "/admin"),
        ("X-Original-Method", "DELETE"),
        ("x_original_method", "DELETE"),
    ] {
        for path in ["/a", "/p"] {
            let r = request(
                gw.addr,
                "GET",
                path,
                &[("authorization", "Bearer t"), (name, value)],
                "",
            )
            .await;
            assert_eq!(r.status, 400, "{name} on {path}");
            assert_eq!(r.json()["code"], "bad_request");
        }
    }
    assert_eq!(permissions.calls(), 0, "refused before any grant lookup");
    assert_eq!(backend.count(), 0);
}

/// The status code of a raw HTTP/1 answer.
fn status_of(answer: &str) -> Option<u16> {
    answer.split(' ').nth(1)?.parse().ok()
}

#[tokio::test]
async fn missing_repeated_and_invalid_hosts_are_400() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new("default = \"allow\"\n")
        .backend(backend.addr)
        .upstream("host_header = \"preserve\"")
        .start();
    let wait = Duration::from_millis(500);
    let ok = raw(
        gw.addr,
        b"GET /a HTTP/1.1\r\nHost: api.example:8080\r\nConnection: close\r\n\r\n",
        wait,
    )
    .await;
    assert_eq!(status_of(&ok), Some(200), "{ok}");
    assert_eq!(backend.count(), 1);
    let refused: [&[u8]; 9] = [
        b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: user:pw@a.example\r\nConnection: close\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: a.example, b.example\r\nConnection: close\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: a.example/admin\r\nConnection: close\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: a example\r\nConnection: close\r\n\r\n",
        b"GET /a HTTP/1.1\r\nHost: a.example:99999999\r\nConnection: close\r\n\r\n",
        b"GET http://user:pw@a.example/a HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
        b"GET http://user@a.example/a HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n",
    ];
    for bytes in refused {
        let answer = raw(gw.addr, bytes, wait).await;
        assert_eq!(
            status_of(&answer),
            Some(400),
            "{}\n-> {answer}",
            String::from_utf8_lossy(bytes)
        );
        assert!(!answer.contains("pw@"), "no userinfo echoed: {answer}");
    }
    assert_eq!(backend.count(), 1, "none of them reached the backend");
    let old = raw(gw.addr, b"GET /a HTTP/1.0\r\n\r\n", wait).await;
    assert_eq!(status_of(&old), Some(200), "HTTP/1.0 may omit Host: {old}");
}

/// A raw upstream: `/switch` gets `101 Switching Protocols` and the
/// connection is then held open without reading; anything else gets 200.
async fn switching_backend() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                for _ in 0..1000 {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        let request = String::from_utf8_lossy(&head[..end]).into_owned();
                        head.drain(..end + 4);
                        if request.contains("/switch") {
                            let _ = stream
                                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
                                .await;
                            tokio::time::sleep(Duration::from_secs(10)).await;
                            return;
                        }
                        let _ = stream
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                            .await;
                    }
                }
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn an_upstream_101_without_an_upgrade_is_502() {
    let (addr, backend) = switching_backend().await;
    let gw = GatewayBuilder::new("default = \"allow\"\n")
        .backend(addr)
        .server("workers = 1")
        .start();
    for headers in [
        vec![],
        vec![("connection", "upgrade"), ("upgrade", "websocket")],
    ] {
        let r = request(gw.addr, "GET", "/switch", &headers, "").await;
        assert_eq!(r.status, 502, "{headers:?}");
        assert_eq!(r.json()["code"], "upstream_unavailable");
        let after = request(gw.addr, "GET", "/ok", &[], "").await;
        assert_eq!(
            (after.status, &after.body[..]),
            (200, &b"ok"[..]),
            "the switched connection is not reused"
        );
    }
    backend.abort();
}

#[tokio::test]
async fn admin_explain_says_what_the_proxy_does_in_audit_mode() {
    let backend = Backend::echo().await;
    let permissions = PermissionApi::start().await;
    permissions.grant("viewer", &["items:item:view"]);
    let routes = r#"
mode = "audit"
[[route]]
name = "items.delete"
methods = ["DELETE"]
path = "/items/{id}"
require = ["items:item:delete"]
"#;
    let gw = GatewayBuilder::new(routes)
        .backend(backend.addr)
        .grants_url(permissions.url())
        .start();
    let j = get(
        gw.admin,
        "/admin/explain?method=DELETE&path=/items/1&grant=items:item:view",
        None,
    )
    .await
    .json();
    assert_eq!(j["mode"], "audit");
    assert_eq!(j["decision"], "deny", "what enforce mode would answer");
    assert_eq!(j["forwarded"], true);
    assert_eq!(j["wouldDeny"], true);
    assert_eq!(j["upstream"], "default");
    assert!(j["status"].is_null(), "the gateway does not answer: {j}");
    assert_eq!(
        j["missingPermissions"],
        serde_json::json!(["items:item:delete"])
    );
    let r = request(
        gw.addr,
        "DELETE",
        "/items/1",
        &[("authorization", "Bearer viewer")],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "the proxy forwards, as explain says");
    assert_eq!(backend.count(), 1);

    let j = get(
        gw.admin,
        "/admin/explain?method=DELETE&path=/items/1&header=X-HTTP-Method-Override:%20GET",
        None,
    )
    .await
    .json();
    assert_eq!(
        (j["decision"].as_str(), j["status"].as_u64()),
        (Some("bad_request"), Some(400))
    );
    assert_eq!(
        j["forwarded"], false,
        "ambiguity is refused in audit mode too"
    );
}
