//! The in-process cost of a request's decision: normalization, route
//! matching, permission evaluation, a grants-cache hit, and all of it
//! together at 10 and 10,000 routes.
//!
//! cargo bench --bench decision

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Method, Uri, Version};
use permgate::config::CacheConfig;
use permgate::decision::{self, Caller, Grants, RequestHead};
use permgate::grants::{Answer, Fetched, GrantCache};
use permgate::path::{NormalizeOptions, normalize};
use permgate::permission::{Permission, PermissionSet, Requirement, check};
use permgate::routes::{RouteTable, parse};

mod common;

fn table(text: &str) -> RouteTable {
    parse(text, Path::new("routes.toml"), &["default".into()]).expect("valid table")
}

fn normalization(c: &mut Criterion) {
    let opts = NormalizeOptions::default();
    let mut g = c.benchmark_group("normalize");
    for (name, path) in [
        (
            "canonical",
            "/api/v2/integrations/credentials/97f652b5-eb50-4989-9d99-9ed9d6cd5fed",
        ),
        (
            "rewritten",
            "/api//v2/integrations/%63redentials/caf%c3%a9?",
        ),
        (
            "hostile_rejected",
            "/api/v2/integrations/credentials/..%2f..%2fadmin",
        ),
        ("hostile_dot_encoded", "/api/v2/%2e%2E/%2e/admin/users/42"),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(normalize(black_box(path), &opts).is_ok()))
        });
    }
    g.finish();
}

fn matching(c: &mut Criterion) {
    let mut g = c.benchmark_group("match");
    for n in [10, 1_000, 10_000] {
        let t = table(&common::synthetic_routes(n));
        let path = common::synthetic_path(n);
        g.bench_with_input(BenchmarkId::new("synthetic", n), &path, |b, p| {
            b.iter(|| black_box(t.find(&Method::GET, black_box(p)).is_some()))
        });
    }
    let genesys = table(&std::fs::read_to_string(common::genesys_file()).expect("genesys table"));
    for (name, path) in [
        (
            "genesys_3265_credential",
            "/api/v2/integrations/credentials/97f652b5-eb50-4989-9d99-9ed9d6cd5fed",
        ),
        (
            "genesys_3265_deep",
            "/api/v2/authorization/roles/r1/comparedefault/r2",
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(genesys.find(&Method::GET, black_box(path)).is_some()))
        });
    }
    g.finish();
}

/// `n` grants: mostly other domains, some wildcards and comma lists, the
/// matching grant last; plus denies that do not apply.
fn grants(n: usize) -> (PermissionSet, PermissionSet) {
    let mut allow: Vec<Permission> = (0..n.saturating_sub(1))
        .map(|i| {
            let p = match i % 4 {
                0 => format!("domain{i}:entity{i}:view"),
                1 => format!("domain{i}:*:view,edit"),
                2 => format!("domain{i}"),
                _ => format!("integrations:action{i}:*"),
            };
            Permission::parse(&p).expect("valid")
        })
        .collect();
    allow.push(Permission::parse("integrations:integration:*").expect("valid"));
    let deny = ["integrations:integration:delete", "secrets:*"]
        .iter()
        .map(|p| Permission::parse(p).expect("valid"))
        .collect();
    (allow.into_iter().collect(), deny)
}

fn evaluation(c: &mut Criterion) {
    let req = Requirement::parse("integrations:integration:view", &[]).expect("valid");
    let templated = Requirement::parse("integration:{id}:admin", &["id"]).expect("valid");
    let mut g = c.benchmark_group("evaluate");
    for n in [1, 20, 200] {
        let (allow, deny) = grants(n);
        g.bench_with_input(BenchmarkId::new("grants", n), &n, |b, _| {
            b.iter(|| black_box(check(&req, &[], &allow, &deny).is_satisfied()))
        });
    }
    let (allow, deny) = grants(20);
    g.bench_function("templated_20", |b| {
        b.iter(|| black_box(check(&templated, &["virustotal_3_7_4"], &allow, &deny).is_satisfied()))
    });
    g.finish();
}

fn cache_hit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cache = GrantCache::new(CacheConfig {
        ttl: Duration::from_secs(600),
        negative_ttl: Duration::from_secs(5),
        max_entries: 100_000,
        stale_if_error: Duration::ZERO,
    });
    let (allow, deny) = grants(20);
    let answer = Answer::Granted(Arc::new(Grants {
        subject: "bench".into(),
        allow,
        deny,
    }));
    let key = 7u128;
    let fill = answer.clone();
    let _ = rt.block_on(cache.get_or_fetch(key, async move {
        Ok(Fetched {
            answer: fill,
            max_age: None,
        })
    }));
    c.bench_function("grants_cache_hit", |b| {
        b.iter(|| {
            rt.block_on(cache.get_or_fetch(black_box(key), async { unreachable!("cached") }))
                .0
                .is_ok()
        })
    });
}

/// 20 grants whose last one is `needed` (the others are scanned first).
fn grants_ending_with(needed: &str) -> Grants {
    let (allow, deny) = grants(20);
    Grants {
        subject: "bench".into(),
        allow: allow
            .iter()
            .take(19)
            .cloned()
            .chain([Permission::parse(needed).expect("valid")])
            .collect(),
        deny,
    }
}

fn full_decision(c: &mut Criterion) {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, "api.example".parse().expect("valid"));
    let mut g = c.benchmark_group("decide");
    let mut cases = Vec::new();
    for n in [10, 10_000] {
        cases.push((
            format!("synthetic_{n}"),
            table(&common::synthetic_routes(n)),
            common::synthetic_path(n),
            grants_ending_with(&common::synthetic_grant(n)),
        ));
    }
    cases.push((
        "genesys_3265".into(),
        table(&std::fs::read_to_string(common::genesys_file()).expect("genesys table")),
        "/api/v2/integrations/credentials/97f652b5-eb50-4989-9d99-9ed9d6cd5fed".into(),
        grants_ending_with("integrations:integration:view"),
    ));
    for (name, t, path, grants) in &cases {
        let uri: Uri = path.parse().expect("a valid target");
        // The steps the proxy takes, through the same functions.
        let decide = || {
            let head = RequestHead {
                method: &Method::GET,
                uri: black_box(&uri),
                version: Version::HTTP_11,
                headers: &headers,
            };
            let prepared = decision::prepare(t, &head).expect("accepted");
            let routed = prepared.route(t, &Method::GET);
            routed
                .decide(Caller::Known(grants))
                .into_permit()
                .map(|p| p.upstream())
        };
        let first = decide();
        assert!(first.is_ok(), "{name}: {first:?}");
        g.bench_function(name.as_str(), |b| b.iter(|| black_box(decide())));
    }
    g.finish();
}

criterion_group!(
    benches,
    normalization,
    matching,
    evaluation,
    cache_hit,
    full_decision
);
criterion_main!(benches);
