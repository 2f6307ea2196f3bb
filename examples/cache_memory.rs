//! Resident memory of the grants cache with 100,000 distinct cached
//! credentials of 20 permissions each, drawn from the real table's
//! permissions and parsed the way permission-API answers are.
//!
//!   cargo run --release --example cache_memory [CREDENTIALS] [PERMISSIONS]

use std::sync::Arc;
use std::time::Duration;

use permgate::config::CacheConfig;
use permgate::decision::Grants;
use permgate::grants::{Answer, Fetched, GrantCache};
use permgate::permission::{Permission, PermissionSet};

/// The allocator of the `permgate` binary, so the figure is the gateway's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

fn main() {
    let mut args = std::env::args().skip(1);
    let credentials: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let per_credential: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let routes = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/genesys-routes.toml"
    ))
    .expect("tests/data/genesys-routes.toml");
    let mut pool: Vec<String> = routes
        .lines()
        .filter(|l| l.starts_with("require"))
        .flat_map(|l| {
            l.split('"')
                .skip(1)
                .step_by(2)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    pool.sort();
    pool.dedup();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cache = GrantCache::new(CacheConfig {
        ttl: Duration::from_secs(3600),
        negative_ttl: Duration::from_secs(5),
        max_entries: credentials as u64,
        stale_if_error: Duration::ZERO,
    });
    let idle = resident_bytes();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    rt.block_on(async {
        for i in 0..credentials {
            let key = i as u128 * 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;
            // Each answer is parsed anew, as from the permission API.
            let allow: PermissionSet = (0..per_credential)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    Permission::parse(&pool[(seed % pool.len() as u64) as usize]).expect("valid")
                })
                .collect();
            let grants = Grants {
                subject: format!("user-{i:06}@example.com").into(),
                allow,
                deny: PermissionSet::empty(),
            };
            let (answer, _) = cache
                .get_or_fetch(key, async {
                    Ok(Fetched {
                        answer: Answer::Granted(Arc::new(grants)),
                        max_age: None,
                    })
                })
                .await;
            assert!(answer.is_ok());
        }
        cache.sync().await;
    });
    let full = resident_bytes();
    let delta = full.saturating_sub(idle);
    println!(
        "{} cached credentials x {per_credential} permissions (from {} distinct): {:.1} MiB above idle ({} bytes per credential)",
        cache.entry_count(),
        pool.len(),
        delta as f64 / (1024.0 * 1024.0),
        delta / credentials.max(1) as u64
    );
}
