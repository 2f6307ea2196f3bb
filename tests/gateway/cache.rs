//! The grants cache: single flight, negative caching, max-age, TTL expiry,
//! stale-if-error.

use std::time::Duration;

use crate::support::*;

const ROUTES: &str = r#"
[[route]]
path = "/items/{id}"
require = ["items:item:view"]
"#;

async fn setup(cache: &[&str]) -> (Backend, PermissionApi, RunningGateway) {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    let mut b = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(api.url());
    for line in cache {
        b = b.cache(line);
    }
    let gw = b.start();
    (backend, api, gw)
}

#[tokio::test]
async fn concurrent_first_requests_make_one_call() {
    let (backend, api, gw) = setup(&[]).await;
    api.set(
        "Bearer t",
        ApiReply::grants("t", &["items"], &[]).delayed(Duration::from_millis(300)),
    );
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let addr = gw.addr;
            tokio::spawn(async move { get(addr, &format!("/items/{i}"), Some("t")).await.status })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(
        api.calls(),
        1,
        "100 concurrent misses, one permission API call"
    );
    assert_eq!(backend.count(), 100);
    get(gw.addr, "/items/x", Some("t")).await;
    assert_eq!(api.calls(), 1, "cached");
}

#[tokio::test]
async fn rejections_are_remembered_for_negative_ttl() {
    let (_b, api, gw) = setup(&["negative_ttl = \"400ms\""]).await;
    assert_eq!(get(gw.addr, "/items/1", Some("nobody")).await.status, 401);
    assert_eq!(get(gw.addr, "/items/1", Some("nobody")).await.status, 401);
    assert_eq!(api.calls(), 1, "the 401 is remembered");
    let expired = eventually(Duration::from_secs(5), async || {
        get(gw.addr, "/items/1", Some("nobody")).await;
        api.calls() > 1
    })
    .await;
    assert!(expired, "asked again after negative_ttl");
}

#[tokio::test]
async fn max_age_lowers_the_ttl() {
    let (_b, api, gw) = setup(&["ttl = \"60s\""]).await;
    api.set(
        "Bearer t",
        ApiReply::grants("t", &["items"], &[]).header("cache-control", "private, max-age=1"),
    );
    assert_eq!(get(gw.addr, "/items/1", Some("t")).await.status, 200);
    assert_eq!(get(gw.addr, "/items/1", Some("t")).await.status, 200);
    assert_eq!(api.calls(), 1);
    let refetched = eventually(Duration::from_secs(5), async || {
        get(gw.addr, "/items/1", Some("t")).await;
        api.calls() > 1
    })
    .await;
    assert!(refetched, "max-age=1 expired well before the 60 s ttl");

    api.set(
        "Bearer n",
        ApiReply::grants("n", &["items"], &[]).header("cache-control", "no-store"),
    );
    get(gw.addr, "/items/1", Some("n")).await;
    get(gw.addr, "/items/1", Some("n")).await;
    let n_calls = api
        .seen()
        .iter()
        .filter(|h| h["authorization"] == "Bearer n")
        .count();
    assert_eq!(n_calls, 2, "no-store answers are not cached");
}

#[tokio::test]
async fn grants_expire_after_ttl_and_changes_are_seen() {
    let (_b, api, gw) = setup(&["ttl = \"300ms\""]).await;
    api.grant("t", &["items"]);
    assert_eq!(get(gw.addr, "/items/1", Some("t")).await.status, 200);
    api.grant("t", &["other"]);
    assert_eq!(
        get(gw.addr, "/items/1", Some("t")).await.status,
        200,
        "still cached"
    );
    let revoked = eventually(Duration::from_secs(5), async || {
        get(gw.addr, "/items/1", Some("t")).await.status == 403
    })
    .await;
    assert!(revoked, "the revocation is seen once the ttl passes");
}

#[tokio::test]
async fn ttl_zero_calls_the_api_every_time() {
    let (_b, api, gw) = setup(&["ttl = \"0s\""]).await;
    api.grant("t", &["items"]);
    for _ in 0..3 {
        assert_eq!(get(gw.addr, "/items/1", Some("t")).await.status, 200);
    }
    assert_eq!(api.calls(), 3);
}

#[tokio::test]
async fn stale_grants_are_used_inside_the_stale_if_error_window() {
    let (backend, api, gw) = setup(&["ttl = \"200ms\"", "stale_if_error = \"30s\""]).await;
    api.grant("t", &["items"]);
    assert_eq!(get(gw.addr, "/items/1", Some("t")).await.status, 200);
    api.set("Bearer t", ApiReply::raw(500, "down"));
    // Once the fresh entry expires, each request asks the API, which fails,
    // and the stale answer is used.
    let used_stale = eventually(Duration::from_secs(5), async || {
        let before = api.calls();
        let status = get(gw.addr, "/items/1", Some("t")).await.status;
        assert_eq!(status, 200);
        api.calls() > before
    })
    .await;
    assert!(
        used_stale,
        "the API was asked and failed, the stale grants served"
    );
    assert!(backend.count() >= 2);
}

#[tokio::test]
async fn stale_grants_are_not_used_outside_the_window() {
    let (backend, api, gw) = setup(&["ttl = \"100ms\"", "stale_if_error = \"400ms\""]).await;
    api.grant("t", &["items"]);
    assert_eq!(get(gw.addr, "/items/1", Some("t")).await.status, 200);
    api.set("Bearer t", ApiReply::raw(500, "down"));
    let forwarded = backend.count();
    let refused = eventually(Duration::from_secs(5), async || {
        get(gw.addr, "/items/1", Some("t")).await.status == 503
    })
    .await;
    assert!(refused, "past stale_if_error the gateway fails closed");
    let r = get(gw.addr, "/items/1", Some("t")).await;
    assert_eq!(r.status, 503);
    assert!(backend.count() >= forwarded);
}

#[tokio::test]
async fn alternating_credentials_on_one_connection_each_get_their_own_grants() {
    let (backend, api, gw) = setup(&[]).await;
    api.grant("reader", &["items"]);
    api.grant("stranger", &["other"]);
    let mut conn = KeepAlive::open(gw.addr).await;
    let mut statuses = Vec::new();
    for token in [
        "reader", "stranger", "reader", "reader", "stranger", "nobody", "reader",
    ] {
        statuses.push(conn.status("/items/1", token).await);
    }
    assert_eq!(statuses, [200, 403, 200, 200, 403, 401, 200]);
    assert_eq!(backend.count(), 4);
    let subjects: Vec<String> = backend
        .requests()
        .iter()
        .map(|r| r.header("x-authenticated-subject").unwrap())
        .collect();
    assert_eq!(subjects, ["reader"; 4]);
}

#[tokio::test]
async fn purge_by_subject_without_redis_drops_only_that_subject() {
    let (_b, api, gw) = setup(&[]).await;
    api.set("Bearer a1", ApiReply::grants("alice", &["items"], &[]));
    api.set("Bearer a2", ApiReply::grants("alice", &["items"], &[]));
    api.set("Bearer b1", ApiReply::grants("bob", &["items"], &[]));
    for token in ["a1", "a2", "b1"] {
        assert_eq!(get(gw.addr, "/items/1", Some(token)).await.status, 200);
    }
    for token in ["a1", "a2", "b1"] {
        api.set(
            &format!("Bearer {token}"),
            ApiReply::grants("z", &["other"], &[]),
        );
    }
    let r = request(
        gw.admin,
        "POST",
        "/admin/cache/purge?subject=alice",
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        serde_json::json!({"purged": true, "subject": "alice", "shared": null})
    );
    assert_eq!(
        get(gw.addr, "/items/1", Some("a1")).await.status,
        403,
        "refetched"
    );
    assert_eq!(
        get(gw.addr, "/items/1", Some("a2")).await.status,
        403,
        "refetched"
    );
    assert_eq!(
        get(gw.addr, "/items/1", Some("b1")).await.status,
        200,
        "bob still cached"
    );
    assert_eq!(api.calls(), 5);
    let r = request(gw.admin, "POST", "/admin/cache/purge?subject=", &[], "").await;
    assert_eq!(r.status, 400);
    let r = request(gw.admin, "POST", "/admin/cache/purge", &[], "").await;
    assert_eq!(r.json()["subject"], serde_json::Value::Null);
    assert_eq!(
        get(gw.addr, "/items/1", Some("b1")).await.status,
        403,
        "all purged"
    );
}

/// Each connection remembers its last answer; on one keep-alive
/// connection, a purge (by subject or all) must still take effect on the
/// very next request.
#[tokio::test]
async fn a_keep_alive_connection_sees_purges_on_its_next_request() {
    let (backend, api, gw) = setup(&["ttl = \"60s\""]).await;
    api.set("Bearer a", ApiReply::grants("alice", &["items"], &[]));
    let mut conn = KeepAlive::open(gw.addr).await;
    let mut status = async || conn.status("/items/1", "a").await;
    let purge = async |query: &str| {
        let r = request(
            gw.admin,
            "POST",
            &format!("/admin/cache/purge{query}"),
            &[],
            "",
        )
        .await;
        assert_eq!(r.status, 200);
    };

    assert_eq!(status().await, 200);
    assert_eq!(status().await, 200);
    api.set("Bearer a", ApiReply::grants("alice", &["other"], &[]));
    assert_eq!(status().await, 200, "still cached");
    purge("?subject=alice").await;
    assert_eq!(status().await, 403, "purged by subject: refetched at once");

    api.set("Bearer a", ApiReply::grants("alice", &["items"], &[]));
    purge("?subject=alice").await;
    assert_eq!(status().await, 200);
    assert_eq!(status().await, 200);
    api.set("Bearer a", ApiReply::grants("alice", &["other"], &[]));
    purge("").await;
    assert_eq!(status().await, 403, "purged: refetched at once");
    assert_eq!(api.calls(), 4, "one fetch, then one after each purge");
    assert_eq!(backend.count(), 5);
}

/// The same connection stops using its remembered answer when the cache
/// entry expires.
#[tokio::test]
async fn a_keep_alive_connection_sees_expiry_on_its_next_request() {
    let (_backend, api, gw) = setup(&["ttl = \"300ms\""]).await;
    api.grant("t", &["items"]);
    let mut conn = KeepAlive::open(gw.addr).await;
    let mut status = async || conn.status("/items/1", "t").await;
    assert_eq!(status().await, 200);
    assert_eq!(status().await, 200);
    api.grant("t", &["other"]);
    let started = std::time::Instant::now();
    assert_eq!(status().await, 200, "still cached");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(status().await, 403, "expired: refetched");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(api.calls(), 2);
}

/// One keep-alive HTTP/1.1 connection to the gateway.
struct KeepAlive(hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>);

impl KeepAlive {
    async fn open(addr: std::net::SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        Self(send)
    }

    /// The status of `GET path` with `Authorization: Bearer token`, its
    /// body read to the end.
    async fn status(&mut self, path: &str, token: &str) -> u16 {
        use http_body_util::BodyExt;
        let req = http::Request::get(path)
            .header("host", "x")
            .header("authorization", format!("Bearer {token}"))
            .body(http_body_util::Empty::new())
            .unwrap();
        self.0.ready().await.unwrap();
        let resp = self.0.send_request(req).await.unwrap();
        let s = resp.status().as_u16();
        resp.into_body().collect().await.unwrap();
        s
    }
}
