//! What changes during the run: faults on a one-minute cycle, reloads of
//! the routes file every 3 s, and the permission API's grants spelling
//! every 4 s (with a cache purge so that the new spelling is fetched).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::gateway::{self, Gateway};
use crate::table;
use crate::upstreams::{Fault, Upstreams};

/// The faults of second `t` of the run: `(permission API, backend)`.
/// Every 60 s: 10 s clean, then 5 s of each fault with 5 s clean between.
pub fn faults_at(t: u64) -> (Fault, Fault) {
    match t % 60 {
        10..15 => (Fault::Failing, Fault::None),
        20..25 => (Fault::Slow, Fault::None),
        30..35 => (Fault::Stopped, Fault::None),
        40..45 => (Fault::None, Fault::Failing),
        50..55 => (Fault::None, Fault::Slow),
        _ => (Fault::None, Fault::None),
    }
}

/// A short label for the faults of second `t` ("" when none).
pub fn fault_label(t: u64) -> &'static str {
    match faults_at(t) {
        (Fault::Failing, _) => "permission API 500",
        (Fault::Slow, _) => "permission API slow",
        (Fault::Stopped, _) => "permission API stopped",
        (_, Fault::Failing) => "backend resets",
        (_, Fault::Slow) => "backend slow",
        _ => "",
    }
}

/// Reloads done, by how they were started.
#[derive(Default)]
pub struct Reloads {
    /// SIGHUP.
    pub sighup: AtomicU64,
    /// `POST /admin/reload` answered 200.
    pub admin_ok: AtomicU64,
    /// `POST /admin/reload` answered 422 (the broken file).
    pub admin_refused: AtomicU64,
    /// Left to the file watcher.
    pub watched: AtomicU64,
    /// Broken files written.
    pub broken: AtomicU64,
    /// `POST /admin/reload` answers that were neither.
    pub admin_other: AtomicU64,
    /// Grants spelling switches.
    pub grants_switches: AtomicU64,
}

/// Applies the fault schedule until `until`.
pub async fn faults(up: Arc<Upstreams>, start: Instant, until: Instant) {
    while Instant::now() < until {
        let (api, backend) = faults_at(start.elapsed().as_secs());
        up.set_api_fault(api);
        up.set_backend_fault(backend);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    up.set_api_fault(Fault::None);
    up.set_backend_fault(Fault::None);
}

/// Every 3 s writes the next routes file (variant 0, 1, 0, 1, broken, …)
/// and reloads by SIGHUP, by `POST /admin/reload`, or by leaving it to the
/// file watcher, in turn.
pub async fn reloads(gw: &Gateway, counts: Arc<Reloads>, until: Instant) {
    let mut step = 0u64;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        if Instant::now() >= until {
            return;
        }
        step += 1;
        let broken = step % 5 == 0;
        let text = if broken {
            counts.broken.fetch_add(1, Ordering::Relaxed);
            table::broken_routes_file()
        } else {
            table::routes_file((step % 2) as usize)
        };
        gw.write_routes(&text);
        match step % 3 {
            0 => {
                gw.sighup();
                counts.sighup.fetch_add(1, Ordering::Relaxed);
            }
            1 => {
                let answer = gateway::admin(gw.admin, "POST", "/admin/reload").await;
                let counter = match answer {
                    Some((200, _)) => &counts.admin_ok,
                    Some((422, _)) => &counts.admin_refused,
                    _ => &counts.admin_other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                counts.watched.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Every 4 s switches the grants spelling and purges the cache (all of
/// it, or one subject's entries, in turn).
pub async fn grants(
    up: Arc<Upstreams>,
    admin: std::net::SocketAddr,
    counts: Arc<Reloads>,
    until: Instant,
) {
    let mut step = 0usize;
    loop {
        tokio::time::sleep(Duration::from_secs(4)).await;
        if Instant::now() >= until {
            return;
        }
        step += 1;
        up.set_grants_variant(step);
        let path = match step % 2 {
            0 => "/admin/cache/purge".to_string(),
            _ => format!(
                "/admin/cache/purge?subject={}",
                table::CALLERS[step % table::CALLERS.len()].name
            ),
        };
        let _ = gateway::admin(admin, "POST", &path).await;
        counts.grants_switches.fetch_add(1, Ordering::Relaxed);
    }
}
