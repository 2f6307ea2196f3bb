//! What an in-process miss costs when Redis has the answer, beside what it
//! costs when the permission API is asked: both on loopback, sequentially,
//! one request at a time (README, "Shared cache (fleet)").
//!
//!   cargo run --release --example shared_cache_latency [N]
//!
//! Starts its own `redis-server` (from PATH) on a free 127.0.0.1 port and a
//! permission API that answers at once, so the API figure is a floor: a
//! real one also runs its own lookup.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Response};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use permgate::config::{CacheConfig, HttpGrantsConfig, HttpOrigin, SharedCacheConfig};
use permgate::grants::{Credentials, GrantCache, HttpSource, SharedCache};
use tokio::sync::watch;

const GRANTS: &str = r#"{"subject":"bench","permissions":["integrations:integration:view","integrations:integration:edit","routing:queue:view","analytics:conversationDetail:view","users:user:view"]}"#;

fn percentiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    format!(
        "p50 {:>7.1} µs   p99 {:>7.1} µs",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);

    // redis-server on a free port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = std::env::temp_dir().join(format!("permgate-l2-bench-{port}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut redis = std::process::Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server in PATH");

    // A permission API that answers at once.
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = api.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = api.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                        GRANTS.as_bytes(),
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });

    let timeout = Duration::from_secs(1);
    let shared = Arc::new(
        SharedCache::new(SharedCacheConfig {
            url: format!("redis://127.0.0.1:{port}/0"),
            display_url: format!("redis://127.0.0.1:{port}/0"),
            hash_key: [7; 32],
            timeout,
        })
        .expect("client"),
    );
    let cache = GrantCache::new(CacheConfig {
        ttl: Duration::from_secs(60),
        negative_ttl: Duration::from_secs(5),
        max_entries: 10,
        stale_if_error: Duration::ZERO,
    });
    let (_stop_tx, stop) = watch::channel(false);
    tokio::spawn(Arc::clone(&shared).supervise(cache, stop));
    let deadline = Instant::now() + Duration::from_secs(5);
    while shared.stats().breaker_open() {
        assert!(Instant::now() < deadline, "redis-server did not answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let source = HttpSource::new(
        Arc::new(HttpGrantsConfig {
            origin: HttpOrigin::parse(&format!("http://{api_addr}/grants"), true).unwrap(),
            timeout,
            headers: HeaderMap::new(),
            subject_pointer: "/subject".into(),
            permissions_pointer: "/permissions".into(),
            deny_pointer: "/deny".into(),
        }),
        Arc::default(),
    );
    let mut headers = HeaderMap::new();
    headers.insert("authorization", HeaderValue::from_static("Bearer bench"));
    let names = [HeaderName::from_static("authorization")];
    let creds = Credentials::from_request(&headers, &names).unwrap();
    let id = HeaderValue::from_static("bench");

    let fetched = source.fetch(&creds, &id).await.expect("the API answers");
    shared
        .put(1, &fetched.answer, Duration::from_secs(60))
        .await;

    // Warm both paths, then measure them alternately.
    for _ in 0..1000 {
        shared.get(1).await.expect("an L2 hit");
        source.fetch(&creds, &id).await.expect("the API answers");
    }
    let (mut l2, mut api) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let t = Instant::now();
        shared.get(1).await.expect("an L2 hit");
        l2.push(t.elapsed());
        let t = Instant::now();
        source.fetch(&creds, &id).await.expect("the API answers");
        api.push(t.elapsed());
    }
    println!("{n} sequential lookups each, loopback, one connection:");
    println!("  Redis hit (GET+PTTL, decode)      {}", percentiles(l2));
    println!("  permission API call (HTTP/1.1)    {}", percentiles(api));

    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
