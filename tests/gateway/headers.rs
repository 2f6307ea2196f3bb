//! What the upstream and the permission API receive (README, "Requests and responses").

use crate::support::*;

const ROUTES: &str = r#"
[[route]]
name = "items.get"
path = "/items/{id}"
require = ["items:item:view"]

[[route]]
name = "public"
path = "/pub/{*rest}"
public = true
"#;

async fn setup(
    extra: impl FnOnce(GatewayBuilder) -> GatewayBuilder,
) -> (Backend, PermissionApi, RunningGateway) {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.set(
        "Bearer alice",
        ApiReply::grants("alice@example.com", &["items"], &[]),
    );
    let gw = extra(
        GatewayBuilder::new(ROUTES)
            .backend(backend.addr)
            .grants_url(api.url()),
    )
    .start();
    (backend, api, gw)
}

#[tokio::test]
async fn a_client_sent_subject_never_reaches_the_backend() {
    let (backend, _api, gw) = setup(|b| b).await;
    let spoof = [
        ("authorization", "Bearer alice"),
        ("x-authenticated-subject", "admin"),
        ("X-Authenticated-Subject", "root"),
    ];
    assert_eq!(
        request(gw.addr, "GET", "/items/1", &spoof, "").await.status,
        200
    );
    assert_eq!(
        backend
            .last()
            .unwrap()
            .header("x-authenticated-subject")
            .as_deref(),
        Some("alice@example.com")
    );

    let r = request(gw.addr, "GET", "/pub/x", &spoof[1..], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        backend.last().unwrap().header("x-authenticated-subject"),
        None,
        "public routes set no subject"
    );

    // Also when the spoofed header is named in Connection, and over HTTP/2.
    let r = request(
        gw.addr,
        "GET",
        "/pub/x",
        &[("connection", "x-authenticated-subject"), spoof[1]],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        backend.last().unwrap().header("x-authenticated-subject"),
        None
    );
    let r = request_h2(gw.addr, "GET", "/items/1", &spoof, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        backend
            .last()
            .unwrap()
            .header("x-authenticated-subject")
            .as_deref(),
        Some("alice@example.com")
    );
}

#[tokio::test]
async fn hop_by_hop_and_connection_named_headers_are_removed() {
    let (backend, _api, gw) = setup(|b| b).await;
    let headers = [
        ("authorization", "Bearer alice"),
        ("connection", "keep-alive, X-Drop-Me"),
        ("x-drop-me", "1"),
        ("keep-alive", "timeout=5"),
        ("proxy-authorization", "Basic eA=="),
        ("te", "trailers"),
        ("upgrade", "websocket"),
        ("x-keep-me", "1"),
    ];
    assert_eq!(
        request(gw.addr, "GET", "/items/1", &headers, "")
            .await
            .status,
        200
    );
    let rec = backend.last().unwrap();
    for gone in [
        "x-drop-me",
        "keep-alive",
        "proxy-authorization",
        "te",
        "upgrade",
    ] {
        assert_eq!(rec.header(gone), None, "{gone} must not be forwarded");
    }
    assert_eq!(rec.header("x-keep-me").as_deref(), Some("1"));
    assert_eq!(
        rec.header("authorization").as_deref(),
        Some("Bearer alice"),
        "forward_credentials defaults to true"
    );
}

#[tokio::test]
async fn response_hop_by_hop_headers_are_removed() {
    let backend = Backend::start(|_| {
        Reply::json(200, "{}")
            .header("connection", "x-internal")
            .header("x-internal", "secret")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
    })
    .await;
    let gw = GatewayBuilder::new(ROUTES).backend(backend.addr).start();
    let r = get(gw.addr, "/pub/x", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-internal"), None);
    assert_eq!(
        r.headers.get_all("set-cookie").iter().count(),
        2,
        "other headers pass back unchanged"
    );
}

#[tokio::test]
async fn forwarding_headers_and_request_id() {
    let (backend, api, gw) = setup(|b| b).await;
    let headers = [
        ("authorization", "Bearer alice"),
        ("host", "api.example.com"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("x-request-id", "req-123"),
    ];
    let r = request(gw.addr, "GET", "/items/1", &headers, "").await;
    assert_eq!(r.status, 200);
    let rec = backend.last().unwrap();
    assert_eq!(
        rec.header("x-forwarded-for").as_deref(),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(
        rec.header("x-forwarded-proto").as_deref(),
        Some("http"),
        "an untrusted peer cannot set the proto"
    );
    assert_eq!(
        rec.header("x-forwarded-host").as_deref(),
        Some("api.example.com")
    );
    assert_eq!(
        rec.header("host").as_deref(),
        Some("api.example.com"),
        "host_header = preserve"
    );
    assert_eq!(rec.header("x-request-id").as_deref(), Some("req-123"));
    assert_eq!(
        api.seen()[0]["x-request-id"],
        "req-123",
        "the permission API gets the same id"
    );

    // An insane request id is replaced, on the upstream and in error answers.
    let long = "x".repeat(200);
    let r = request(
        gw.addr,
        "GET",
        "/items/1",
        &[("authorization", "Bearer alice"), ("x-request-id", &long)],
        "",
    )
    .await;
    let id = backend.last().unwrap().header("x-request-id").unwrap();
    assert_eq!(id.len(), 32);
    assert_eq!(r.status, 200);
    let r = request(gw.addr, "GET", "/items/1", &[("x-request-id", "mine")], "").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("x-request-id"), Some("mine"));
    assert_eq!(r.json()["requestId"], "mine");
}

#[tokio::test]
async fn trusted_proxies_may_set_forwarded_proto_and_host() {
    let (backend, _api, gw) = setup(|b| b.server("trusted_proxies = [\"127.0.0.1/32\"]")).await;
    let headers = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "front.example"),
    ];
    assert_eq!(
        request(gw.addr, "GET", "/pub/a", &headers, "").await.status,
        200
    );
    let rec = backend.last().unwrap();
    assert_eq!(rec.header("x-forwarded-proto").as_deref(), Some("https"));
    assert_eq!(
        rec.header("x-forwarded-host").as_deref(),
        Some("front.example")
    );
}

#[tokio::test]
async fn permission_api_gets_credentials_static_headers_and_nothing_else() {
    let (_backend, api, gw) =
        setup(|b| b.grants("headers = { \"X-Api-Key\" = \"svc-key\" }")).await;
    let r = request(
        gw.addr,
        "GET",
        "/items/1",
        &[
            ("authorization", "Bearer alice"),
            ("cookie", "session=1"),
            ("x-other", "1"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = &api.seen()[0];
    assert_eq!(seen["authorization"], "Bearer alice");
    assert_eq!(seen["x-api-key"], "svc-key");
    assert!(
        seen.get("cookie").is_none() && seen.get("x-other").is_none(),
        "{seen:?}"
    );
}

#[tokio::test]
async fn credentials_can_be_kept_from_the_upstream_and_host_rewritten() {
    let (backend, _api, gw) = setup(|b| {
        b.auth("forward_credentials = false")
            .upstream("host_header = \"upstream\"")
    })
    .await;
    let r = request(
        gw.addr,
        "GET",
        "/items/1",
        &[
            ("authorization", "Bearer alice"),
            ("host", "api.example.com"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let rec = backend.last().unwrap();
    assert_eq!(rec.header("authorization"), None);
    assert_eq!(rec.header("host"), Some(backend.addr.to_string()));
    assert_eq!(
        rec.header("x-forwarded-host").as_deref(),
        Some("api.example.com")
    );
}

#[tokio::test]
async fn other_credential_headers() {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .auth("credential_headers = [\"x-api-key\"]")
        .auth("challenge = 'ApiKey realm=\"items\"'")
        .start();
    let r = request(
        gw.addr,
        "GET",
        "/items/1",
        &[("authorization", "Bearer alice")],
        "",
    )
    .await;
    assert_eq!(
        r.status, 401,
        "authorization is not a credential header here"
    );
    assert_eq!(r.header("www-authenticate"), Some("ApiKey realm=\"items\""));
    assert_eq!(api.calls(), 0);
    let _ = request(gw.addr, "GET", "/items/1", &[("x-api-key", "k1")], "").await;
    assert_eq!(api.seen()[0]["x-api-key"], "k1");
}

#[tokio::test]
async fn http2_prior_knowledge_is_forwarded_as_http1() {
    let (backend, _api, gw) = setup(|b| b).await;
    let r = request_h2(
        gw.addr,
        "GET",
        "/items/7?q=1",
        &[("authorization", "Bearer alice")],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let rec = backend.last().unwrap();
    assert_eq!(rec.target, "/items/7?q=1");
    assert_eq!(
        rec.header("host"),
        Some(gw.addr.to_string()),
        "the :authority becomes Host"
    );
    let r = request_h2(gw.addr, "GET", "/items/7", &[], "").await;
    assert_eq!(r.status, 401);
}
