//! Permission API faults (README, "Reliability"): an API that goes away and
//! comes back under load while the routes file reloads, answers at the edge
//! of `grants.timeout`, cuts its answer short, or sends a deny list that
//! cannot be read. Every failure is a 503 with `Retry-After`, the backend
//! never sees a request whose grants were not resolved, and the first
//! request after the API returns is served.
//!
//! Covered elsewhere: API refused, error statuses, too slow, invalid JSON
//! and wrong types (`fail_closed.rs`); `stale_if_error` (`cache.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::reload::{TABLE_A, TABLE_B};
use crate::support::*;

/// A gateway with `ttl = "0s"` in front of an echo backend and a
/// permission API, with the routes of [`TABLE_A`]; `more` adds settings.
async fn setup(
    more: impl FnOnce(GatewayBuilder) -> GatewayBuilder,
) -> (Backend, PermissionApi, RunningGateway) {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    let gw = more(
        GatewayBuilder::new(TABLE_A)
            .backend(backend.addr)
            .grants_url(api.url())
            .cache("ttl = \"0s\""),
    )
    .start();
    (backend, api, gw)
}

/// Replaces the routes file by a rename and reloads through the admin API.
async fn swap_routes(gw: &RunningGateway, text: &str) {
    super::faults_backend::replace_file(&gw.dir, "routes.toml", text);
    let r = request(gw.admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(r.status, 200, "reload: {:?}", r.body);
}

/// What one client saw: (path, token, status) counts, and any 503 that
/// came without `Retry-After`.
#[derive(Default)]
struct Seen {
    counts: BTreeMap<(&'static str, &'static str, u16), usize>,
    without_retry_after: usize,
}

/// A client on one keep-alive connection sending GETs, alternating paths
/// and tokens, until `done` or `max` requests; counts what it saw.
async fn client(
    addr: std::net::SocketAddr,
    max: usize,
    done: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    unavailable: Arc<AtomicUsize>,
) -> Seen {
    let mut conn = client::KeepAlive::connect(addr).await;
    let mut seen = Seen::default();
    let cases = [
        ("/stable", "viewer"),
        ("/items/1", "viewer"),
        ("/stable", "nobody"),
        ("/items/1", "nobody"),
    ];
    for i in 0..max {
        if done.load(Ordering::SeqCst) {
            break;
        }
        let (path, token) = cases[i % cases.len()];
        let r = conn.get(path, token).await;
        let status = r.status;
        if status == 503 && r.header("retry-after").is_none() {
            seen.without_retry_after += 1;
        }
        match status {
            200 => ok.fetch_add(1, Ordering::SeqCst),
            503 => unavailable.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
        *seen.counts.entry((path, token, status)).or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn a_flapping_permission_api_under_load_and_reloads_never_opens_the_gate() {
    let (backend, api, gw) = setup(|b| b.routes("watch = false")).await;
    api.grant("viewer", &["items:item:view"]);
    api.grant("nobody", &["other:thing"]);

    let done = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (done, ok, unavailable) = (done.clone(), ok.clone(), unavailable.clone());
            tokio::spawn(client(gw.addr, 3000, done, ok, unavailable))
        })
        .collect();

    // Eight outages: each lasts until some client has seen a 503, each
    // recovery until some client has seen a 200 (bounded waits), with a
    // reload of the routes file in every outage and every recovery.
    let mut outages_seen = 0;
    for i in 0..8 {
        let before = unavailable.load(Ordering::SeqCst);
        api.stop().await;
        swap_routes(&gw, if i % 2 == 0 { TABLE_B } else { TABLE_A }).await;
        if eventually(Duration::from_secs(3), async || {
            unavailable.load(Ordering::SeqCst) > before
        })
        .await
        {
            outages_seen += 1;
        }
        let before = ok.load(Ordering::SeqCst);
        api.restart().await;
        swap_routes(&gw, if i % 2 == 0 { TABLE_A } else { TABLE_B }).await;
        assert!(
            eventually(Duration::from_secs(3), async || ok.load(Ordering::SeqCst)
                > before)
            .await,
            "served again after restart {i}"
        );
    }
    done.store(true, Ordering::SeqCst);
    let mut counts: BTreeMap<(&str, &str, u16), usize> = BTreeMap::new();
    let mut without_retry_after = 0;
    for c in clients {
        let seen = c.await.unwrap();
        without_retry_after += seen.without_retry_after;
        for (k, n) in seen.counts {
            *counts.entry(k).or_insert(0) += n;
        }
    }
    assert_eq!(outages_seen, 8, "every outage was seen by a client");
    assert_eq!(without_retry_after, 0, "every 503 carries Retry-After");
    let total: usize = counts.values().sum();
    assert!(total >= 100, "a few hundred requests: {total} ({counts:?})");
    for ((path, token, status), n) in &counts {
        let allowed: &[u16] = match (*path, *token) {
            ("/stable", "viewer") => &[200, 503],
            ("/items/1", "viewer") => &[200, 403, 503],
            _ => &[403, 503],
        };
        assert!(
            allowed.contains(status),
            "{n} × {status} for {token} on {path}: {counts:?}"
        );
    }

    // The backend saw exactly the requests answered 200, all of them the
    // granted caller's.
    let forwarded = backend.requests();
    let answered_ok: usize = counts
        .iter()
        .filter(|((_, _, s), _)| *s == 200)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(forwarded.len(), answered_ok, "{counts:?}");
    assert!(
        forwarded
            .iter()
            .all(|r| r.header("x-authenticated-subject").as_deref() == Some("viewer")),
        "only the granted caller's requests were forwarded"
    );
}

#[tokio::test]
async fn the_first_request_after_the_permission_api_returns_is_served() {
    let (backend, api, gw) = setup(|b| b).await;
    api.grant("viewer", &["items:item:view"]);
    // Both workers hold a pooled connection to the API.
    for _ in 0..4 {
        assert_eq!(get(gw.addr, "/stable", Some("viewer")).await.status, 200);
    }
    let mut forwarded = backend.count();
    for round in 0..5 {
        api.stop().await;
        let r = get(gw.addr, "/stable", Some("viewer")).await;
        assert_eq!(r.status, 503, "round {round}: {:?}", r.body);
        assert_eq!(r.header("retry-after"), Some("2"));
        assert_eq!(backend.count(), forwarded, "nothing forwarded while down");
        api.restart().await;
        // Each request may land on either worker: every one is served.
        for _ in 0..4 {
            let r = get(gw.addr, "/stable", Some("viewer")).await;
            assert_eq!(r.status, 200, "round {round}: {:?}", r.body);
            forwarded += 1;
        }
        assert_eq!(backend.count(), forwarded);
    }
}

#[tokio::test]
async fn a_permission_api_at_the_edge_of_its_timeout() {
    let (backend, api, gw) = setup(|b| b.grants("timeout = \"1s\"")).await;
    let grants = ApiReply::grants("viewer", &["items:item:view"], &[]);

    // Just under: allowed.
    api.set(
        "Bearer viewer",
        grants.clone().delayed(Duration::from_millis(600)),
    );
    let r = get(gw.addr, "/stable", Some("viewer")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(backend.count(), 1);

    // Just over: fail closed.
    api.set(
        "Bearer viewer",
        grants.clone().delayed(Duration::from_millis(1400)),
    );
    let r = get(gw.addr, "/stable", Some("viewer")).await;
    assert_eq!(r.status, 503, "{:?}", r.body);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(r.json()["code"], "permission_service_unavailable");
    assert_eq!(backend.count(), 1, "nothing forwarded on a timeout");

    // And back: the abandoned call leaves nothing behind.
    api.set("Bearer viewer", grants);
    assert_eq!(get(gw.addr, "/stable", Some("viewer")).await.status, 200);
    assert_eq!(backend.count(), 2);
}

/// A gateway in front of an API that always writes `answer` and closes:
/// every request is a 503 with `Retry-After`, asked again each time, and
/// the backend sees nothing.
async fn broken_answers_fail_closed(answer: &'static [u8]) {
    fails_closed_with(RawPermissionApi::start(answer).await, answer).await;
}

async fn fails_closed_with(api: RawPermissionApi, answer: &[u8]) {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(TABLE_A)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    for i in 1..=3 {
        let r = get(gw.addr, "/stable", Some("viewer")).await;
        let shown = String::from_utf8_lossy(answer);
        assert_eq!(r.status, 503, "{shown}: {:?}", r.body);
        assert_eq!(r.header("retry-after"), Some("2"), "{shown}");
        assert_eq!(r.json()["code"], "permission_service_unavailable");
        assert_eq!(api.calls(), i, "{shown}: failures are not cached");
    }
    assert_eq!(backend.count(), 0, "nothing forwarded");
}

#[tokio::test]
async fn a_truncated_answer_fails_closed_even_when_its_json_is_complete() {
    // The JSON would grant everything, but the body is shorter than its
    // Content-Length says.
    broken_answers_fail_closed(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n\
          {\"subject\":\"viewer\",\"permissions\":[\"items\"]}",
    )
    .await;
}

#[tokio::test]
async fn an_answer_closed_midway_fails_closed() {
    // In the status line, in the headers, before the last chunk, and
    // before any byte.
    broken_answers_fail_closed(b"HTTP/1.1 20").await;
    broken_answers_fail_closed(b"HTTP/1.1 200 OK\r\ncontent-type: appli").await;
    broken_answers_fail_closed(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
          2c\r\n{\"subject\":\"viewer\",\"permissions\":[\"items\"]}\r\n",
    )
    .await;
    broken_answers_fail_closed(b"").await;
}

#[tokio::test]
async fn an_answer_stalling_midway_fails_closed_at_the_timeout() {
    // The head, then half the body, then nothing: the gateway's
    // `grants.timeout` (500 ms here) covers reading the whole answer.
    const STALLED: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
          content-length: 44\r\n\r\n{\"subject\":\"viewer\",";
    fails_closed_with(RawPermissionApi::stalling(STALLED).await, STALLED).await;
}

#[tokio::test]
async fn a_200_with_an_invalid_deny_list_fails_closed() {
    let (backend, api, gw) = setup(|b| b).await;
    // Control: the same grants with a valid deny list are used.
    api.set(
        "Bearer viewer",
        ApiReply::grants("viewer", &["items"], &["items:item:delete"]),
    );
    assert_eq!(get(gw.addr, "/stable", Some("viewer")).await.status, 200);
    assert_eq!(backend.count(), 1);
    // Ignoring a deny that cannot be read would widen access.
    for deny in [
        r#"["items:item:delete", "not a permission!"]"#,
        r#"["items:item:delete", 5]"#,
        r#"[null]"#,
        r#"["items::view"]"#,
        r#""items:item:view""#,
    ] {
        let body = format!(r#"{{"subject":"viewer","permissions":["items"],"deny":{deny}}}"#);
        api.set("Bearer viewer", ApiReply::raw(200, &body));
        let r = get(gw.addr, "/stable", Some("viewer")).await;
        assert_eq!(r.status, 503, "deny = {deny}: {:?}", r.body);
        assert_eq!(r.header("retry-after"), Some("2"));
    }
    assert_eq!(
        backend.count(),
        1,
        "nothing forwarded on a broken deny list"
    );
}
