//! A soak run of the real permgate binary (`benches/soak.sh` builds and
//! runs it): mixed traffic, reloads and faults for a long while, sampling
//! the gateway's memory, descriptors, connections, latency and answers
//! every second, then an audit of everything the backend received.
//!
//!   soak --gateway BIN --out DIR [--duration 10m] [--rate 200]
//!        [--font DejaVuSans.ttf] [--build NAME]
//!   soak --self-check
//!
//! Exits 1 when the audit finds a request forwarded without permission,
//! when its self-check does not refuse forged ones, when an answer
//! contradicts the route table (2xx where it refuses, 401/403 where it
//! allows), when RSS grows after warm-up, or when the gateway dies or does
//! not stop cleanly.

mod audit;
#[allow(dead_code)] // the line numbers and texts serve the bypass test
#[path = "../../tests/support/corpus.rs"]
mod corpus;
mod gateway;
mod mix;
mod plot;
mod report;
mod sampler;
mod schedule;
mod stats;
mod table;
mod traffic;
mod upstreams;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gateway::Gateway;
use stats::Stats;
use upstreams::Upstreams;

/// Workers sending traffic; one in four opens a connection per request.
const WORKERS: u64 = 16;

struct Args {
    gateway: PathBuf,
    out: PathBuf,
    duration: Duration,
    rate: f64,
    font: PathBuf,
    build: String,
}

fn usage() -> ! {
    eprintln!(
        "usage: soak --gateway BIN --out DIR [--duration 10m] [--rate 200] [--font FILE.ttf] [--build NAME] | soak --self-check"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        gateway: PathBuf::new(),
        out: PathBuf::new(),
        duration: Duration::from_secs(600),
        rate: 200.0,
        font: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into(),
        build: "release".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--self-check" => {
                match audit::self_check() {
                    Ok(n) => println!("self-check: the audit refused all {n} forged requests"),
                    Err(e) => {
                        eprintln!("self-check FAILED: {e}");
                        std::process::exit(1);
                    }
                }
                std::process::exit(0);
            }
            "--gateway" => a.gateway = value().into(),
            "--out" => a.out = value().into(),
            "--duration" => {
                let v = value();
                a.duration = v
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .or_else(|_| humantime::parse_duration(&v))
                    .unwrap_or_else(|_| usage());
            }
            "--rate" => a.rate = value().parse().unwrap_or_else(|_| usage()),
            "--font" => a.font = value().into(),
            "--build" => a.build = value(),
            _ => usage(),
        }
    }
    if a.gateway.as_os_str().is_empty() || a.out.as_os_str().is_empty() || a.rate <= 0.0 {
        usage();
    }
    a
}

fn main() {
    let args = parse_args();
    if let Err(e) = plot::load_font(&args.font) {
        eprintln!("soak: {e}");
        std::process::exit(1);
    }
    match run(&args) {
        Ok((summary, failures)) => {
            println!("{summary}");
            println!("report: {}", args.out.display());
            if !failures.is_empty() {
                eprintln!("soak FAILED: {}", failures.join("; "));
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(1);
        }
    }
}

fn run(args: &Args) -> Result<(String, Vec<String>), String> {
    let mut failures = Vec::new();
    let self_check = audit::self_check();
    if let Err(e) = &self_check {
        failures.push(format!("audit self-check: {e}"));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let started = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let start = Instant::now();
    let up = Upstreams::start(start);
    gateway::check_variants(&args.gateway, work.path(), up.backend, up.api)?;
    let mut gw = Gateway::start(&args.gateway, work.path(), up.backend, up.api)?;
    eprintln!(
        "soak: permgate pid {} on {} (admin {}), backend {}, permission API {}; {} s",
        gw.pid,
        gw.proxy,
        gw.admin,
        up.backend,
        up.api,
        args.duration.as_secs()
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let stats = Arc::new(Stats::new(start));
    let counts = Arc::new(schedule::Reloads::default());
    let until = start + args.duration;
    let samples = rt.block_on(async {
        let mut workers = Vec::new();
        for i in 0..WORKERS {
            workers.push(tokio::spawn(traffic::worker(
                gw.proxy,
                Arc::clone(&stats),
                0x9e37_79b9_7f4a_7c15 ^ (i + 1).wrapping_mul(0x2545_f491_4f6c_dd1d),
                args.rate / WORKERS as f64,
                i % 4 == 3,
                until,
            )));
        }
        let (samples, ..) = tokio::join!(
            sampler::run(gw.pid, gw.admin, Arc::clone(&stats), start, until),
            schedule::faults(Arc::clone(&up), start, until),
            schedule::reloads(&gw, Arc::clone(&counts), until),
            schedule::grants(Arc::clone(&up), gw.admin, Arc::clone(&counts), until),
            async {
                for w in workers {
                    let _ = w.await;
                }
            },
        );
        samples
    });

    // Leave the last good table in place, then read the reload counters.
    gw.write_routes(&table::routes_file(0));
    let metrics = rt
        .block_on(gateway::admin(gw.admin, "GET", "/metrics"))
        .map(|(_, m)| m)
        .unwrap_or_default();
    let series = |s: &str| gateway::metric(&metrics, s).unwrap_or(f64::NAN);
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed) as f64;
    let reloads = vec![
        ("by SIGHUP".to_string(), c(&counts.sighup)),
        ("by POST /admin/reload (200)".into(), c(&counts.admin_ok)),
        (
            "by POST /admin/reload (422, broken file)".into(),
            c(&counts.admin_refused),
        ),
        ("left to the file watcher".into(), c(&counts.watched)),
        ("broken files written".into(), c(&counts.broken)),
        (
            "grants spelling switches".into(),
            c(&counts.grants_switches),
        ),
        (
            "gateway's permgate_config_reloads_total success".into(),
            series("permgate_config_reloads_total{result=\"success\"}"),
        ),
        (
            "failure".into(),
            series("permgate_config_reloads_total{result=\"failure\"}"),
        ),
    ];
    if counts.admin_other.load(Ordering::Relaxed) > 0 {
        failures.push(format!(
            "{} POST /admin/reload answers were neither 200 nor 422",
            counts.admin_other.load(Ordering::Relaxed)
        ));
    }

    let alive = gw.alive();
    if !alive {
        failures.push("the gateway died during the run".into());
    }
    let log = work.path().join("permgate.log");
    let gateway_exit = match gw.stop() {
        Some(s) if s.success() => "0".to_string(),
        Some(s) => {
            failures.push(format!("the gateway exited with {s}"));
            s.to_string()
        }
        None => {
            failures.push("the gateway did not stop within 10 s of SIGTERM".into());
            "killed after 10 s".into()
        }
    };
    let _ = std::fs::copy(&log, args.out.join("permgate.log"));

    let received = up.take_received();
    let violations = audit::audit(&received);
    if !violations.is_empty() {
        failures.push(format!(
            "{} requests forwarded without permission",
            violations.len()
        ));
    }
    let totals = stats.take_totals();
    if totals.false_allow > 0 || totals.false_refusal > 0 {
        failures.push(format!(
            "answers contradict the route table: {} 2xx where it refuses, {} 401/403 where it allows",
            totals.false_allow, totals.false_refusal
        ));
    }
    let secs = args.duration.as_secs();
    let mut run = report::Run {
        title: format!("permgate soak, {} s ({} build)", secs, args.build),
        started,
        build: args.build.clone(),
        duration: secs,
        rate: args.rate,
        warmup: (secs / 5).clamp(10, 120),
        samples,
        totals,
        received: received.len(),
        received_ids: received
            .iter()
            .filter_map(|r| r.request_id.clone())
            .collect(),
        violations,
        self_check,
        reloads,
        api_calls: up.api_calls(),
        gateway_exit,
        failures,
    };
    let summary = report::write(&args.out, &mut run)?;
    Ok((summary, run.failures))
}
