//! The fleet's shared grants cache: two gateways and one real
//! `redis-server`, and what happens when Redis dies, stalls or talks garbage.

use std::time::{Duration, Instant};

use crate::support::redis::RedisServer;
use crate::support::*;

const ROUTES: &str = r#"
[[route]]
path = "/items/{id}"
require = ["items:item:view"]
"#;

const CHANNEL: &str = "permgate:purge";

/// The longest a request may take when Redis misbehaves: `grants.timeout`
/// (500 ms in the builder) plus scheduling slack on a busy 2-core machine.
const BOUND: Duration = Duration::from_millis(900);

struct Fleet {
    backend: Backend,
    api: PermissionApi,
    a: RunningGateway,
    b: RunningGateway,
    redis: RedisServer,
}

fn gateway(
    backend: &Backend,
    api: &PermissionApi,
    url: &str,
    key: &str,
    cache: &[&str],
) -> RunningGateway {
    let mut b = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .cache(&format!("shared = \"{url}\""))
        .cache(&format!("shared_key_file = \"{key}\""));
    for line in cache {
        b = b.cache(line);
    }
    b.start()
}

/// Two gateways sharing one Redis, both listening for purges; `None` when
/// `redis-server` is missing outside CI.
async fn fleet(cache: &[&str]) -> Option<Fleet> {
    let redis = RedisServer::start()?;
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    let key = redis.key_file();
    let key = key.to_str().unwrap();
    let a = gateway(&backend, &api, &redis.url(), key, cache);
    let b = gateway(&backend, &api, &redis.url(), key, cache);
    redis.wait_subscribers(CHANNEL, 2);
    Some(Fleet {
        backend,
        api,
        a,
        b,
        redis,
    })
}

/// GET /items/1 with `Bearer {token}`: status and how long it took.
async fn timed(gw: &RunningGateway, token: &str) -> (u16, Duration) {
    let start = Instant::now();
    let status = get(gw.addr, "/items/1", Some(token)).await.status;
    (status, start.elapsed())
}

async fn purge(gw: &RunningGateway, query: &str) -> Resp {
    request(
        gw.admin,
        "POST",
        &format!("/admin/cache/purge{query}"),
        &[],
        "",
    )
    .await
}

fn calls_for(api: &PermissionApi, token: &str) -> usize {
    let value = format!("Bearer {token}");
    api.seen()
        .iter()
        .filter(|h| h["authorization"] == value.as_str())
        .count()
}

#[tokio::test]
async fn two_instances_make_one_permission_api_call_per_credential() {
    let Some(f) = fleet(&[]).await else { return };
    f.api
        .set("Bearer tok-a1", ApiReply::grants("alice", &["items"], &[]));
    assert_eq!(get(f.a.addr, "/items/1", Some("tok-a1")).await.status, 200);
    assert_eq!(get(f.b.addr, "/items/2", Some("tok-a1")).await.status, 200);
    assert_eq!(get(f.b.addr, "/items/3", Some("tok-a1")).await.status, 200);
    assert_eq!(
        f.api.calls(),
        1,
        "the second instance found the grants in Redis"
    );
    let subjects: Vec<_> = f
        .backend
        .requests()
        .iter()
        .map(|r| r.header("x-authenticated-subject").unwrap())
        .collect();
    assert_eq!(
        subjects, ["alice"; 3],
        "grants from Redis carry the subject"
    );

    // Denies come back from Redis too: a deny still wins.
    f.api.set(
        "Bearer tok-d1",
        ApiReply::grants("dora", &["items"], &["items:item:view"]),
    );
    assert_eq!(get(f.a.addr, "/items/1", Some("tok-d1")).await.status, 403);
    assert_eq!(get(f.b.addr, "/items/1", Some("tok-d1")).await.status, 403);
    assert_eq!(calls_for(&f.api, "tok-d1"), 1);

    // Rejections are shared for negative_ttl.
    assert_eq!(get(f.a.addr, "/items/1", Some("nobody")).await.status, 401);
    assert_eq!(get(f.b.addr, "/items/1", Some("nobody")).await.status, 401);
    assert_eq!(calls_for(&f.api, "nobody"), 1, "the 401 came from Redis");
    assert_eq!(f.backend.count(), 3, "nothing forwarded without grants");

    // The second instance's metrics show what Redis answered.
    let text = metrics::scrape(f.b.admin).await;
    let value = |name: &str| metrics::series::<u64>(&text, name);
    assert_eq!(
        value(r#"permgate_shared_cache_total{result="hit"}"#),
        Some(3),
        "alice, dora and the 401 came from Redis:\n{text}"
    );
    assert_eq!(value("permgate_shared_cache_breaker_open"), Some(0));
}

#[tokio::test]
async fn redis_entries_live_as_long_as_ttl_max_age_and_negative_ttl_allow() {
    let Some(f) = fleet(&["ttl = \"400ms\"", "negative_ttl = \"300ms\""]).await else {
        return;
    };
    f.api.grant("short", &["items"]);
    assert_eq!(get(f.a.addr, "/items/1", Some("short")).await.status, 200);
    assert_eq!(get(f.a.addr, "/items/1", Some("nobody")).await.status, 401);
    let pttls: Vec<i64> = f
        .redis
        .keys()
        .iter()
        .filter(|k| k.contains(":g:"))
        .map(|k| f.redis.cmd(&["PTTL", k]))
        .collect();
    assert_eq!(pttls.len(), 2, "one entry per credential");
    assert!(
        pttls.iter().all(|t| (1..=400).contains(t)),
        "ttl and negative_ttl bound the Redis expiry: {pttls:?}"
    );
    assert!(pttls.iter().any(|t| *t <= 300), "the 401: {pttls:?}");

    // Through the other instance: cached at first, asked again once expired.
    assert_eq!(get(f.b.addr, "/items/1", Some("short")).await.status, 200);
    let refetched = eventually(Duration::from_secs(5), async || {
        get(f.b.addr, "/items/1", Some("short")).await;
        calls_for(&f.api, "short") >= 2
    })
    .await;
    assert!(refetched, "the grants expired in Redis and in-process");
}

#[tokio::test]
async fn max_age_below_ttl_is_the_shared_lifetime() {
    let Some(f) = fleet(&["ttl = \"60s\""]).await else {
        return;
    };
    f.api.set(
        "Bearer aged",
        ApiReply::grants("aged", &["items"], &[]).header("cache-control", "max-age=1"),
    );
    assert_eq!(get(f.a.addr, "/items/1", Some("aged")).await.status, 200);
    let key = f
        .redis
        .keys()
        .into_iter()
        .find(|k| k.contains(":g:"))
        .unwrap();
    let pttl: i64 = f.redis.cmd(&["PTTL", &key]);
    assert!(
        (1..=1000).contains(&pttl),
        "max-age=1, not the 60 s ttl: {pttl}"
    );
    assert_eq!(get(f.b.addr, "/items/1", Some("aged")).await.status, 200);
    assert_eq!(f.api.calls(), 1);
    let refetched = eventually(Duration::from_secs(5), async || {
        get(f.b.addr, "/items/1", Some("aged")).await;
        f.api.calls() >= 2
    })
    .await;
    assert!(refetched, "asked again after max-age, well before 60 s");
}

#[tokio::test]
async fn a_purge_on_one_instance_reaches_the_other_within_a_second() {
    let Some(f) = fleet(&[]).await else { return };
    f.api.grant("t", &["items"]);
    assert_eq!(get(f.a.addr, "/items/1", Some("t")).await.status, 200);
    assert_eq!(get(f.b.addr, "/items/1", Some("t")).await.status, 200);
    assert_eq!(f.api.calls(), 1);
    f.api.grant("t", &["other"]);
    assert_eq!(
        get(f.b.addr, "/items/1", Some("t")).await.status,
        200,
        "cached"
    );

    let r = purge(&f.a, "").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let body = r.json();
    assert_eq!(body["purged"], true);
    assert_eq!(body["subject"], serde_json::Value::Null);
    assert_eq!(body["shared"]["purged"], true);

    let revoked = eventually(Duration::from_secs(1), async || {
        get(f.b.addr, "/items/1", Some("t")).await.status == 403
    })
    .await;
    assert!(revoked, "the other instance dropped its copy within 1 s");
    assert_eq!(get(f.a.addr, "/items/1", Some("t")).await.status, 403);
    assert_eq!(
        f.api.calls(),
        2,
        "one instance asked; the other found it in Redis"
    );
}

#[tokio::test]
async fn purge_by_subject_reaches_the_fleet_and_leaves_other_subjects_cached() {
    let Some(f) = fleet(&[]).await else { return };
    f.api.set(
        "Bearer tok-alice",
        ApiReply::grants("alice", &["items"], &[]),
    );
    f.api.set(
        "Bearer tok-alice2",
        ApiReply::grants("alice", &["items"], &[]),
    );
    f.api
        .set("Bearer tok-bob", ApiReply::grants("bob", &["items"], &[]));
    for gw in [&f.a, &f.b] {
        for token in ["tok-alice", "tok-alice2", "tok-bob"] {
            assert_eq!(get(gw.addr, "/items/1", Some(token)).await.status, 200);
        }
    }
    assert_eq!(f.api.calls(), 3);
    for token in ["tok-alice", "tok-alice2", "tok-bob"] {
        f.api.set(
            &format!("Bearer {token}"),
            ApiReply::grants("x", &["other"], &[]),
        );
    }
    let entries_before = f.redis.keys().iter().filter(|k| k.contains(":g:")).count();
    assert_eq!(entries_before, 3);

    let r = purge(&f.a, "?subject=alice").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.json()["subject"], "alice");
    assert_eq!(r.json()["shared"]["purged"], true);
    let entries_after = f.redis.keys().iter().filter(|k| k.contains(":g:")).count();
    assert_eq!(
        entries_after, 1,
        "alice's two entries left Redis, bob's stayed"
    );

    let revoked = eventually(Duration::from_secs(1), async || {
        get(f.b.addr, "/items/1", Some("tok-alice2")).await.status == 403
    })
    .await;
    assert!(
        revoked,
        "alice's grants are gone from the other instance within 1 s"
    );
    assert_eq!(
        get(f.a.addr, "/items/1", Some("tok-alice")).await.status,
        403
    );
    for gw in [&f.a, &f.b] {
        assert_eq!(
            get(gw.addr, "/items/1", Some("tok-bob")).await.status,
            200,
            "bob still cached"
        );
    }
    assert_eq!(calls_for(&f.api, "tok-bob"), 1);
}

#[tokio::test]
async fn no_credential_is_ever_stored_in_redis() {
    let Some(f) = fleet(&[]).await else { return };
    let tokens = [
        "sEcReT-token-0001",
        "sEcReT-token-0002",
        "sEcReT-unknown-0003",
    ];
    f.api.set(
        &format!("Bearer {}", tokens[0]),
        ApiReply::grants("alice", &["items"], &[]),
    );
    f.api.set(
        &format!("Bearer {}", tokens[1]),
        ApiReply::grants("bob", &["other"], &["items"]),
    );
    for t in tokens {
        get(f.a.addr, "/items/1", Some(t)).await;
        get(f.b.addr, "/items/1", Some(t)).await;
    }
    purge(&f.a, "?subject=nobody-in-particular").await;
    let dump = f.redis.dump();
    assert!(dump.len() >= 4, "entries, index and counters: {dump:?}");
    for (key, value) in &dump {
        for t in tokens {
            assert!(!key.contains(t), "{key}");
            let value = String::from_utf8_lossy(value);
            assert!(!value.contains(t), "{key} = {value}");
            assert!(!value.contains("Bearer"), "{key} = {value}");
        }
    }
}

#[tokio::test]
async fn killed_redis_leaves_decisions_to_the_permission_api_and_recovers() {
    let Some(mut f) = fleet(&[]).await else {
        return;
    };
    f.api.grant("before", &["items"]);
    assert_eq!(get(f.a.addr, "/items/1", Some("before")).await.status, 200);
    f.redis.kill();

    f.api.grant("reader", &["items"]);
    f.api.grant("stranger", &["other"]);
    let forwarded = f.backend.count();
    for i in 0..6 {
        for (gw, token, want) in [
            (&f.a, "reader", 200),
            (&f.b, "stranger", 403),
            (&f.b, "nobody", 401),
        ] {
            let (status, took) = timed(gw, token).await;
            assert_eq!(status, want, "{token} #{i}");
            assert!(took < BOUND, "{token} #{i} took {took:?}");
        }
    }
    assert_eq!(
        f.backend.count(),
        forwarded + 6,
        "only the reader is forwarded"
    );
    assert_eq!(get(f.b.addr, "/items/1", Some("before")).await.status, 200);

    // Back on the same port: the breaker closes and the fleet shares again.
    f.redis.restart();
    f.redis.wait_subscribers(CHANNEL, 2);
    let mut n = 0;
    let shared_again = eventually(Duration::from_secs(5), async || {
        n += 1;
        let token = format!("later-{n}");
        f.api.grant(&token, &["items"]);
        get(f.a.addr, "/items/1", Some(&token)).await;
        get(f.b.addr, "/items/1", Some(&token)).await;
        calls_for(&f.api, &token) == 1
    })
    .await;
    assert!(shared_again, "Redis is used again after it comes back");
}

#[tokio::test]
async fn paused_redis_costs_at_most_the_timeout_and_decisions_stay_right() {
    let Some(f) = fleet(&[]).await else { return };
    f.api.grant("reader", &["items"]);
    f.api.grant("stranger", &["other"]);
    let _: String = f.redis.cmd(&["CLIENT", "PAUSE", "2000"]);
    let paused_at = Instant::now();
    let forwarded = f.backend.count();
    let mut requests = 0;
    while paused_at.elapsed() < Duration::from_millis(1500) && requests < 30 {
        requests += 1;
        let (token, want) = if requests % 2 == 0 {
            ("reader", 200)
        } else {
            ("stranger", 403)
        };
        let gw = if requests % 3 == 0 { &f.b } else { &f.a };
        let (status, took) = timed(gw, token).await;
        assert_eq!(status, want, "request {requests}");
        assert!(took < BOUND, "request {requests} took {took:?}");
    }
    assert!(requests >= 4, "only {requests} requests in 1.5 s");
    assert_eq!(f.backend.count(), forwarded + requests / 2);
}

/// Answers nonsense to whatever it is sent, on every connection.
fn serve_garbage(listener: std::net::TcpListener) {
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for _ in 0..10_000 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                for _ in 0..1000 {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            let junk = b"HTTP/1.1 200 OK\r\n\r\n\x00\xff?!";
                            if s.write_all(junk).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}

#[tokio::test]
async fn a_server_answering_garbage_from_the_start_is_skipped() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    serve_garbage(listener);
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("cache.key");
    std::fs::write(&key, [9u8; 32]).unwrap();
    let gw = gateway(
        &backend,
        &api,
        &format!("redis://{addr}/0"),
        key.to_str().unwrap(),
        &[],
    );
    api.grant("reader", &["items"]);
    api.grant("stranger", &["other"]);
    for i in 0..5 {
        let nobody = format!("nobody-{i}");
        for (token, want) in [("reader", 200), ("stranger", 403), (nobody.as_str(), 401)] {
            let (status, took) = timed(&gw, token).await;
            assert_eq!(status, want, "{token}");
            assert!(took < BOUND, "{token} took {took:?}");
        }
    }
    assert_eq!(backend.count(), 5, "only the reader is forwarded");
    assert_eq!(
        calls_for(&api, "reader"),
        1,
        "then from the in-process cache"
    );
    let r = purge(&gw, "").await;
    assert_eq!(r.status, 502, "the fleet could not be told");
    assert_eq!(r.json()["purged"], true, "this instance was");
    assert_eq!(r.json()["shared"]["purged"], false);
}

#[tokio::test]
async fn redis_replaced_by_garbage_mid_test_is_skipped_within_the_timeout() {
    let Some(mut f) = fleet(&[]).await else {
        return;
    };
    f.api.grant("reader", &["items"]);
    assert_eq!(get(f.a.addr, "/items/1", Some("reader")).await.status, 200);
    f.redis.kill();
    let listener = std::net::TcpListener::bind(f.redis.addr()).expect("the port is free again");
    serve_garbage(listener);
    f.api.grant("stranger", &["other"]);
    let forwarded = f.backend.count();
    for i in 0..5 {
        let fresh = format!("fresh-{i}");
        f.api.grant(&fresh, &["items"]);
        for (gw, token, want) in [
            (&f.b, "reader", 200),
            (&f.a, "stranger", 403),
            (&f.b, fresh.as_str(), 200),
            (&f.a, "nobody", 401),
        ] {
            let (status, took) = timed(gw, token).await;
            assert_eq!(status, want, "{token} #{i}");
            assert!(took < BOUND, "{token} #{i} took {took:?}");
        }
    }
    assert_eq!(f.backend.count(), forwarded + 10);
    assert_eq!(
        calls_for(&f.api, "reader"),
        2,
        "A once before, B once after"
    );
}

#[tokio::test]
async fn garbage_values_in_redis_are_replaced_by_the_permission_api_answer() {
    let Some(f) = fleet(&[]).await else { return };
    f.api.grant("t", &["items"]);
    f.api.grant("u", &["items"]);
    assert_eq!(get(f.a.addr, "/items/1", Some("t")).await.status, 200);
    assert_eq!(get(f.a.addr, "/items/1", Some("u")).await.status, 200);
    let entries: Vec<String> = f
        .redis
        .keys()
        .into_iter()
        .filter(|k| k.contains(":g:"))
        .collect();
    assert_eq!(entries.len(), 2);
    let _: () = f
        .redis
        .cmd(&["SET", &entries[0], "{not json", "PX", "60000"]);
    let _: () = f.redis.cmd(&[
        "SET",
        &entries[1],
        r#"{"v":1,"s":"x","a":["items"],"x":99999999999999}"#,
    ]);
    // B has neither in-process: it reads garbage (and a value stored without
    // expiry), asks the API, and overwrites.
    assert_eq!(get(f.b.addr, "/items/1", Some("t")).await.status, 200);
    assert_eq!(get(f.b.addr, "/items/1", Some("u")).await.status, 200);
    assert_eq!(f.api.calls(), 4, "both garbage values sent B to the API");
    for k in &entries {
        let pttl: i64 = f.redis.cmd(&["PTTL", k]);
        assert!(pttl > 0, "{k} was rewritten with an expiry");
    }
    let subjects: Vec<_> = f
        .backend
        .requests()
        .iter()
        .map(|r| r.header("x-authenticated-subject").unwrap())
        .collect();
    assert!(!subjects.contains(&"x".to_string()), "{subjects:?}");
}

#[tokio::test]
async fn a_cold_burst_over_four_instances_makes_at_most_one_call_per_instance() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.grant("burst", &["items"]);
    let key = redis.key_file();
    let key = key.to_str().unwrap();
    let fleet: Vec<RunningGateway> = (0..4)
        .map(|_| gateway(&backend, &api, &redis.url(), key, &[]))
        .collect();
    redis.wait_subscribers(CHANNEL, 4);
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..64 {
        let addr = fleet[i % fleet.len()].addr;
        burst.spawn(async move { get(addr, "/items/1", Some("burst")).await.status });
    }
    let statuses = burst.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let calls = calls_for(&api, "burst");
    eprintln!("cold burst: 64 requests over 4 instances made {calls} permission API calls");
    assert!(
        (1..=4).contains(&calls),
        "single flight per instance, Redis across them: {calls} calls"
    );
    // Once one instance has the answer, the others find it in Redis.
    api.grant("warm", &["items"]);
    assert_eq!(
        get(fleet[0].addr, "/items/1", Some("warm")).await.status,
        200
    );
    for gw in &fleet[1..] {
        assert_eq!(get(gw.addr, "/items/1", Some("warm")).await.status, 200);
    }
    assert_eq!(calls_for(&api, "warm"), 1);
}

/// A `permgate run` child process, killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `permgate run` in its own process, sharing its cache over `rediss://`,
/// with `SSL_CERT_FILE` as its only trust roots (set for the child alone).
async fn tls_fleet_member(
    redis: &RedisServer,
    backend: &Backend,
    api: &PermissionApi,
    roots: &std::path::Path,
) -> (Child, std::net::SocketAddr, std::net::SocketAddr) {
    let dir = redis
        .dir()
        .join(format!("gw-{}", crate::support::redis::free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let (port, admin) = (
        crate::support::redis::free_port(),
        crate::support::redis::free_port(),
    );
    std::fs::write(dir.join("routes.toml"), ROUTES).unwrap();
    std::fs::write(
        dir.join("permgate.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nworkers = 1\ndrain_delay = \"0s\"\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n\
             [upstreams.default]\nurl = \"http://{}\"\n\
             [grants]\nsource = \"http\"\nurl = \"{}\"\ntimeout = \"1s\"\n\
             [grants.cache]\nshared = \"{}\"\nshared_key_file = \"{}\"\n\
             [routes]\nfile = \"routes.toml\"\n[log]\nlevel = \"warn\"\n",
            backend.addr,
            api.url(),
            redis.tls_url(),
            redis.key_file().display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_permgate"))
        .arg("run")
        .arg("--config")
        .arg(dir.join("permgate.toml"))
        .env("SSL_CERT_FILE", roots)
        .env_remove("SSL_CERT_DIR")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let child = Child(child);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], admin));
    let up = eventually(Duration::from_secs(10), async || {
        tokio::net::TcpStream::connect(admin).await.is_ok()
    })
    .await;
    assert!(up, "permgate started");
    (child, addr, admin)
}

#[tokio::test]
async fn rediss_shares_the_cache_over_tls_and_never_falls_back_to_plain_text() {
    let certs = tempfile::tempdir().unwrap();
    let ca = crate::support::tls_backend::TestCa::new("redis test ca");
    let ca_file = ca.write(certs.path(), "ca");
    let (cert, key) = ca.server_cert().write(certs.path(), "redis");
    let Some(redis) = RedisServer::start_tls(&ca_file, &cert, &key) else {
        return;
    };
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.grant("tls-token", &["items"]);

    // Trusting the test CA: the breaker closes and answers go to Redis.
    let (_gw, addr, admin) = tls_fleet_member(&redis, &backend, &api, &ca_file).await;
    let connected = eventually(Duration::from_secs(10), async || {
        let text = metrics::scrape(admin).await;
        metrics::series::<u64>(&text, "permgate_shared_cache_breaker_open") == Some(0)
    })
    .await;
    assert!(connected, "the TLS connection to Redis is up");
    assert_eq!(get(addr, "/items/1", Some("tls-token")).await.status, 200);
    let text = metrics::scrape(admin).await;
    assert_eq!(
        metrics::series::<u64>(&text, r#"permgate_shared_cache_total{result="stored"}"#),
        Some(1),
        "{text}"
    );
    assert_eq!(
        redis.keys().iter().filter(|k| k.contains(":g:")).count(),
        1,
        "the answer is in Redis, written over TLS"
    );

    // Trusting another CA: no connection, no plain-text fallback; requests
    // are served from the permission API and nothing is stored.
    let other = crate::support::tls_backend::TestCa::new("some other ca");
    let other_file = other.write(certs.path(), "other");
    let (_gw2, addr2, admin2) = tls_fleet_member(&redis, &backend, &api, &other_file).await;
    assert_eq!(get(addr2, "/items/1", Some("tls-token")).await.status, 200);
    let text = metrics::scrape(admin2).await;
    assert_eq!(
        metrics::series::<u64>(&text, "permgate_shared_cache_breaker_open"),
        Some(1)
    );
    assert_eq!(
        metrics::series::<u64>(&text, r#"permgate_shared_cache_total{result="stored"}"#),
        Some(0)
    );
    assert_eq!(redis.keys().iter().filter(|k| k.contains(":g:")).count(), 1);
}
