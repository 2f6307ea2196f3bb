//! Backend faults (README, "Reliability"): resets before and during the
//! answer, an answer before the request body was read, more bytes than the
//! announced `Content-Length`, and no answer at all. The client that met
//! the fault gets 502, 504 or a cut-off body; every other client gets its
//! own answer, and no pooled connection is reused in an unclean state.
//!
//! Covered elsewhere (`upstream.rs`): refused connections (502), answers
//! slower than `timeout` (504), non-HTTP garbage (502), and an upstream that
//! answers early and keeps reading (the connection still owed a body is not
//! reused).

use std::net::SocketAddr;
use std::time::Duration;

use permgate::grants::hash_token;

use crate::support::backend::BIG_BODY;
use crate::support::*;

const ROUTES: &str = r#"
[[route]]
path = "/{*rest}"
public = true
"#;

/// A raw HTTP/1.1 answer: status, lower-cased head, body.
pub struct RawAnswer {
    /// Status code.
    pub status: u16,
    /// Status line and headers, lower-cased.
    pub head: String,
    /// Everything after the head, as read.
    pub body: String,
}

impl RawAnswer {
    /// Parses what [`raw`] read; `None` when no status line arrived.
    pub fn parse(text: &str) -> Option<RawAnswer> {
        let (head, body) = text.split_once("\r\n\r\n")?;
        let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
        Some(RawAnswer {
            status,
            head: head.to_ascii_lowercase(),
            body: body.to_string(),
        })
    }

    /// The `Content-Length` announced.
    pub fn content_length(&self) -> Option<usize> {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
    }
}

/// `GET path` on a new connection with `Connection: close`; reads until the
/// gateway closes (10 s without data at most).
pub async fn get_raw(addr: SocketAddr, path: &str, auth: Option<&str>) -> String {
    let auth = auth.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    let req = format!("GET {path} HTTP/1.1\r\nhost: gw\r\n{auth}connection: close\r\n\r\n");
    raw(addr, req.as_bytes(), Duration::from_secs(10)).await
}

/// `count` GETs of `/ok/{tag}-{i}`, one after another on new connections:
/// each must be answered 200 with its own target as the body.
pub async fn innocent_client(addr: SocketAddr, tag: String, count: usize) {
    for i in 0..count {
        let path = format!("/ok/{tag}-{i}");
        let r = get(addr, &path, None).await;
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        assert_eq!(r.body, path.as_bytes(), "{path} got another answer");
    }
}

/// A gateway with one worker (one upstream pool, shared by every client).
async fn one_worker(upstream_timeout: &str) -> (FaultyBackend, RunningGateway) {
    let backend = FaultyBackend::start().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .server("workers = 1")
        .upstream(&format!("timeout = \"{upstream_timeout}\""))
        .start();
    (backend, gw)
}

#[tokio::test]
async fn a_reset_instead_of_an_answer_is_502_for_that_request_only() {
    let (backend, gw) = one_worker("5s").await;
    let innocent = tokio::spawn(innocent_client(gw.addr, "a".into(), 30));
    for i in 0..5 {
        let r = get(gw.addr, &format!("/reset-head/{i}"), None).await;
        assert_eq!(r.status, 502, "{:?}", r.body);
        assert_eq!(r.json()["code"], "upstream_unavailable");
    }
    innocent.await.unwrap();
    assert_eq!(backend.received_under("/reset-head/").len(), 5);
    assert_eq!(backend.received_under("/ok/").len(), 30);
}

#[tokio::test]
async fn a_reset_mid_response_cuts_that_answer_off() {
    let (backend, gw) = one_worker("5s").await;
    let innocent = tokio::spawn(innocent_client(gw.addr, "a".into(), 30));
    for i in 0..5 {
        let text = get_raw(gw.addr, &format!("/reset/{i}"), None).await;
        let answer = RawAnswer::parse(&text).expect("the head was forwarded");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.content_length(), Some(100_000));
        assert!(
            answer.body.len() < 100_000,
            "the client sees the body cut off, not completed"
        );
        assert!(
            answer.body.bytes().all(|b| b == b'r'),
            "only upstream bytes"
        );
    }
    innocent.await.unwrap();
    assert_eq!(backend.received_under("/reset/").len(), 5);
    assert_eq!(backend.received_under("/ok/").len(), 30);
}

#[tokio::test]
async fn bytes_past_content_length_are_never_read_as_the_next_answer() {
    let (backend, gw) = one_worker("5s").await;
    // Control: clean answers leave the connection reusable.
    innocent_client(gw.addr, "warm".into(), 10).await;
    assert_eq!(backend.connections(), 1);
    // Alternating on one pool: every `/ok/…` request goes out right after
    // an answer that left a whole extra response behind it.
    for i in 0..20 {
        let r = get(gw.addr, &format!("/extra/{i}"), None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "ok", "the client gets the announced length");
        let path = format!("/ok/{i}");
        let r = get(gw.addr, &path, None).await;
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        assert_eq!(r.body, path.as_bytes(), "{path} read the left-over bytes");
    }
    assert_eq!(
        backend.connections(),
        21,
        "each connection with left-over bytes was closed, each clean one reused"
    );
    // The extra bytes arrive while the connection is idle in the pool.
    for i in 0..10 {
        let r = get(gw.addr, &format!("/extra-late/{i}"), None).await;
        assert_eq!(r.body, "ok");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let path = format!("/ok/late-{i}");
        let r = get(gw.addr, &path, None).await;
        assert_eq!(r.status, 200, "{path}: {:?}", r.body);
        assert_eq!(r.body, path.as_bytes(), "{path} read the left-over bytes");
    }
    assert_eq!(backend.connections(), 31);
    // And concurrently.
    let innocent: Vec<_> = (0..3)
        .map(|c| tokio::spawn(innocent_client(gw.addr, format!("c{c}"), 20)))
        .collect();
    for i in 0..20 {
        assert_eq!(get(gw.addr, &format!("/extra/x{i}"), None).await.body, "ok");
    }
    for c in innocent {
        c.await.unwrap();
    }
    assert_eq!(backend.received_under("/extra/").len(), 40);
    assert_eq!(backend.received_under("/ok/").len(), 100);
}

#[tokio::test]
async fn an_answer_before_the_body_was_read_reaches_that_client() {
    let (backend, gw) = one_worker("5s").await;
    let innocent = tokio::spawn(innocent_client(gw.addr, "a".into(), 30));
    let body = vec![b'u'; 256 * 1024];
    for i in 0..5 {
        // A lingering close: the answer always arrives.
        let r = request(gw.addr, "POST", &format!("/early/{i}"), &[], body.clone()).await;
        assert_eq!(r.status, 400, "{:?}", r.body);
        assert_eq!(r.body, "refused");
        // A close with the body unread resets the connection, which may
        // destroy the answer before it is read: the upstream's answer or
        // 502, never anything else.
        let r = request(
            gw.addr,
            "POST",
            &format!("/early-rst/{i}"),
            &[],
            body.clone(),
        )
        .await;
        match r.status {
            400 => assert_eq!(r.body, "refused"),
            502 => assert_eq!(r.json()["code"], "upstream_unavailable"),
            other => panic!("{other}: {:?}", r.body),
        }
    }
    innocent.await.unwrap();
    for fault in ["/early/", "/early-rst/"] {
        let early = backend.received_under(fault);
        assert_eq!(early.len(), 5);
        assert!(
            early
                .iter()
                .all(|r| !r.body_complete || r.request.body.len() == body.len())
        );
    }
    assert!(
        backend
            .received_under("/early-rst/")
            .iter()
            .all(|r| !r.body_complete),
        "the resetting upstream never read a body"
    );
    assert_eq!(backend.received_under("/ok/").len(), 30);
}

#[tokio::test]
async fn an_upstream_that_never_answers_is_504_and_others_are_served() {
    let (backend, gw) = one_worker("1s").await;
    let silent: Vec<_> = (0..3)
        .map(|i| tokio::spawn(async move { get(gw.addr, &format!("/silent/{i}"), None).await }))
        .collect();
    let innocent: Vec<_> = (0..3)
        .map(|c| tokio::spawn(innocent_client(gw.addr, format!("c{c}"), 10)))
        .collect();
    for s in silent {
        let r = s.await.unwrap();
        assert_eq!(r.status, 504, "{:?}", r.body);
        assert_eq!(r.json()["code"], "upstream_timeout");
    }
    for c in innocent {
        c.await.unwrap();
    }
    // After the timeouts, the pool serves on.
    innocent_client(gw.addr, "after".into(), 5).await;
    assert_eq!(backend.received_under("/silent/").len(), 3);
    assert_eq!(backend.received_under("/ok/").len(), 35);
}

/// Grants where `viewer` may view, or also administer.
fn grants(admin: bool) -> String {
    let allow = if admin {
        r#"["items:item:view", "items:item:admin"]"#
    } else {
        r#"["items:item:view"]"#
    };
    format!(
        "[[subject]]\nname = \"viewer\"\ntoken_sha256 = \"{}\"\nallow = {allow}\n\n\
         [[subject]]\nname = \"nobody\"\ntoken_sha256 = \"{}\"\nallow = [\"other:thing\"]\n",
        hash_token("viewer"),
        hash_token("nobody")
    )
}

/// Every path needs `items:item:{level}`.
fn routes(level: &str) -> String {
    format!("[[route]]\npath = \"/{{*rest}}\"\nrequire = [\"items:item:{level}\"]\n")
}

/// Rewrites `name` in `dir` by a rename.
pub fn replace_file(dir: &std::path::Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.swp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

#[tokio::test]
async fn backend_faults_while_routes_and_grants_reload() {
    let backend = FaultyBackend::start().await;
    let gw = GatewayBuilder::new(&routes("view"))
        .backend(backend.addr)
        .grants_file(&grants(false))
        .server("workers = 1")
        .upstream("timeout = \"1s\"")
        .routes("watch = false")
        .start();
    let (addr, admin, dir) = (gw.addr, gw.admin, gw.dir.clone());
    // 30 reloads: `/…` needs view or admin; viewer has view, or both.
    let reloads = tokio::spawn(async move {
        for i in 0..30 {
            replace_file(&dir, "routes.toml", &routes(["view", "admin"][i % 2]));
            replace_file(&dir, "grants.toml", &grants(i % 3 == 0));
            let r = request(admin, "POST", "/admin/reload", &[], "").await;
            assert_eq!(r.status, 200, "reload {i}: {:?}", r.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // Each fault, with the caller who may be allowed and the one never is.
    let mut tasks = Vec::new();
    for fault in ["ok", "reset-head", "reset", "extra", "silent"] {
        for token in ["viewer", "nobody"] {
            tasks.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                let rounds = if fault == "silent" { 2 } else { 8 };
                for i in 0..rounds {
                    let path = format!("/{fault}/{token}-{i}");
                    let text = get_raw(addr, &path, Some(token)).await;
                    let answer = RawAnswer::parse(&text).expect("an answer");
                    let expected: &[u16] = match (fault, token) {
                        (_, "nobody") => &[403],
                        ("reset-head", _) => &[403, 502],
                        ("silent", _) => &[403, 504],
                        _ => &[403, 200],
                    };
                    assert!(
                        expected.contains(&answer.status),
                        "{path}: {}",
                        answer.status
                    );
                    match (fault, answer.status) {
                        ("ok", 200) => assert_eq!(answer.body, path),
                        ("extra", 200) => assert_eq!(answer.body, "ok"),
                        ("reset", 200) => assert!(answer.body.len() < 100_000),
                        _ => {}
                    }
                    statuses.push(answer.status);
                }
                (fault, token, statuses)
            }));
        }
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    reloads.await.unwrap();
    // The backend saw each request that was not refused, and nothing of
    // the caller who is never allowed.
    for (fault, token, statuses) in results {
        let forwarded = statuses.iter().filter(|s| **s != 403).count();
        let seen = backend.received_under(&format!("/{fault}/{token}-")).len();
        assert_eq!(seen, forwarded, "/{fault}/ for {token}: {statuses:?}");
    }
    assert!(
        backend
            .received()
            .iter()
            .all(|r| { r.request.header("x-authenticated-subject").as_deref() == Some("viewer") }),
        "only the granted caller's requests were forwarded"
    );
}

#[tokio::test]
async fn a_big_download_is_streamed_whole() {
    let (backend, gw) = one_worker("5s").await;
    let r = get(gw.addr, "/big/1", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), BIG_BODY);
    assert_eq!(backend.received_under("/big/").len(), 1);
}
