//! The report directory: `summary.md`, `samples.csv` and `soak.png`.

use std::fmt::Write as _;
use std::path::Path;

use crate::audit::Violation;
use crate::plot;
use crate::sampler::{Sample, rss_slope};
use crate::stats::{CLASSES, Totals, quantile};

/// Above this RSS slope after warm-up (KiB per minute) the summary flags
/// memory growth. RSS in this soak swings by about 1 MiB either way as the
/// faults come and go every minute, so slopes fitted over a few minutes of
/// a gateway that does not grow scatter by a few hundred KiB/min (the
/// summary shows the slopes of both halves of the window). 512 KiB/min, 4
/// MiB over the 8 minutes after a 10-minute run's warm-up, is beyond that
/// scatter, and is what a leak of about 50 bytes per request shows at the
/// 170-200 requests/s the soak sends.
pub const SLOPE_LIMIT_KIB_PER_MIN: f64 = 512.0;

/// A post-warm-up window shorter than this (s) is reported, not judged.
pub const MIN_JUDGED_WINDOW: u64 = 300;

/// Everything the report says.
pub struct Run {
    pub title: String,
    pub started: String,
    pub build: String,
    pub duration: u64,
    pub rate: f64,
    pub warmup: u64,
    pub samples: Vec<Sample>,
    pub totals: Totals,
    pub received: usize,
    /// Request ids the backend received.
    pub received_ids: std::collections::HashSet<String>,
    pub violations: Vec<Violation>,
    pub self_check: Result<usize, String>,
    pub reloads: Vec<(String, f64)>,
    pub api_calls: usize,
    pub gateway_exit: String,
    pub failures: Vec<String>,
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Start, end and maximum of a series.
fn span(v: impl Iterator<Item = u64> + Clone) -> (u64, u64, u64) {
    let first = v.clone().next().unwrap_or(0);
    let last = v.clone().last().unwrap_or(0);
    (first, last, v.max().unwrap_or(0))
}

/// Whether the memory verdict flags growth; with its sentence.
pub fn memory_verdict(slope: Option<f64>, window: u64, halves: &str) -> (bool, String) {
    match slope {
        None => (false, "not enough samples after warm-up".into()),
        Some(s) if window < MIN_JUDGED_WINDOW => (
            false,
            format!(
                "{s:+.1} KiB/min (window of {window} s after warm-up: too short to judge; the limit of {SLOPE_LIMIT_KIB_PER_MIN} KiB/min applies to runs with 5 minutes or more after warm-up)"
            ),
        ),
        Some(s) if s > SLOPE_LIMIT_KIB_PER_MIN => (
            true,
            format!(
                "{s:+.1} KiB/min{halves}: **FLAG, above the limit of {SLOPE_LIMIT_KIB_PER_MIN} KiB/min**"
            ),
        ),
        Some(s) => (
            false,
            format!(
                "{s:+.1} KiB/min{halves}: holds still (limit {SLOPE_LIMIT_KIB_PER_MIN} KiB/min)"
            ),
        ),
    }
}

/// Writes the directory; returns the summary text.
pub fn write(out: &Path, run: &mut Run) -> Result<String, String> {
    let s = &run.samples;
    let slope = rss_slope(s, run.warmup);
    let end = s.last().map_or(0, |l| l.t);
    let window = end.saturating_sub(run.warmup);
    let mid = run.warmup + window / 2;
    let halves = match (
        rss_slope(&s[..s.partition_point(|x| x.t < mid)], run.warmup),
        rss_slope(s, mid),
    ) {
        (Some(a), Some(b)) => format!(" (halves of the window: {a:+.0} and {b:+.0})"),
        _ => String::new(),
    };
    let (flag, memory) = memory_verdict(slope, window, &halves);
    if flag {
        run.failures.push("RSS grows after warm-up".into());
    }
    let (rss0, rss1, rss_max) = span(s.iter().map(|x| x.rss_kib));
    let (fd0, fd1, fd_max) = span(s.iter().map(|x| x.fds));
    let conns: Vec<u64> = s
        .iter()
        .filter_map(|x| x.open_connections)
        .map(|c| c as u64)
        .collect();
    let (c0, c1, c_max) = span(conns.iter().copied());
    let t = &mut run.totals;
    let sent: u64 = t.by_kind.values().flatten().sum();
    let p50 = f64::from(quantile(&mut t.latencies_us, 0.5)) / 1000.0;
    let p99 = f64::from(quantile(&mut t.latencies_us, 0.99)) / 1000.0;
    let audit = match (&run.self_check, run.violations.len()) {
        (Ok(n), 0) => format!(
            "**PASS**: {} requests the backend received checked, 0 forwarded without permission (self-check: the audit refused all {n} forged requests)",
            run.received
        ),
        (Ok(_), v) => format!(
            "**FAIL**: {v} of {} received requests were forwarded without permission",
            run.received
        ),
        (Err(e), _) => format!("**FAIL**: the audit's self-check failed: {e}"),
    };

    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# {}\n", run.title);
    let _ = writeln!(
        w,
        "Started {} UTC; {} build; {} s at a target of {} requests/s; warm-up {} s.\n",
        run.started, run.build, run.duration, run.rate, run.warmup
    );
    let _ = writeln!(w, "| | |\n| --- | --- |");
    let _ = writeln!(
        w,
        "| requests sent | {sent} ({:.0}/s) |",
        sent as f64 / run.duration.max(1) as f64
    );
    let _ = writeln!(w, "| received by the backend | {} |", run.received);
    let _ = writeln!(w, "| audit | {audit} |");
    let _ = writeln!(
        w,
        "| answers the route table does not allow | {} (2xx where it refuses: {}; 401/403 where it allows: {}) |",
        t.unexpected, t.false_allow, t.false_refusal
    );
    let _ = writeln!(
        w,
        "| RSS start / end / max | {} / {} / {} |",
        mib(rss0),
        mib(rss1),
        mib(rss_max)
    );
    let _ = writeln!(w, "| RSS slope after warm-up (least squares) | {memory} |");
    let _ = writeln!(
        w,
        "| open fds start / end / max | {fd0} / {fd1} / {fd_max} |"
    );
    let _ = writeln!(
        w,
        "| open client connections start / end / max | {c0} / {c1} / {c_max} |"
    );
    let _ = writeln!(
        w,
        "| latency p50 / p99 (whole run, faults included) | {p50:.2} ms / {p99:.2} ms |"
    );
    let reloads: Vec<String> = run
        .reloads
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(w, "| reloads | {} |", reloads.join(", "));
    let _ = writeln!(w, "| permission API calls | {} |", run.api_calls);
    let _ = writeln!(w, "| gateway exit after SIGTERM | {} |", run.gateway_exit);
    let verdict = if run.failures.is_empty() {
        "PASS".to_string()
    } else {
        format!("FAIL: {}", run.failures.join("; "))
    };
    let _ = writeln!(w, "| **result** | **{verdict}** |\n");

    let _ = writeln!(w, "## Answers by class\n");
    let _ = writeln!(w, "| traffic | {} | total |", CLASSES.join(" | "));
    let _ = writeln!(w, "| --- |{}---: |", " ---: |".repeat(CLASSES.len()));
    let mut sums = [0u64; CLASSES.len()];
    for (kind, counts) in &t.by_kind {
        let cells: Vec<String> = counts.iter().map(u64::to_string).collect();
        let _ = writeln!(
            w,
            "| {kind} | {} | {} |",
            cells.join(" | "),
            counts.iter().sum::<u64>()
        );
        for (s, c) in sums.iter_mut().zip(counts) {
            *s += c;
        }
    }
    let cells: Vec<String> = sums.iter().map(u64::to_string).collect();
    let _ = writeln!(w, "| **all** | {} | {sent} |\n", cells.join(" | "));
    let _ = writeln!(
        w,
        "Faults, every minute: permission API answering 500 (s 10-15), slower than its timeout (20-25), stopped (30-35); backend resetting connections (40-45), slower than its timeout (50-55). \
         Reloads every 3 s alternate two equivalent routes files and, every fifth, a broken one that must be refused; \
         the grants spelling switches every 4 s with a cache purge. `permgate check` proved before the run that every variant gives the oracle's decision for every caller.\n"
    );
    if !t.examples.is_empty() {
        let _ = writeln!(w, "## Unexpected answers (first {})\n", t.examples.len());
        for (e, id) in &t.examples {
            let seen = run.received_ids.contains(id);
            let _ = writeln!(
                w,
                "- {e}; the backend {} it",
                if seen { "received" } else { "never received" }
            );
        }
        let _ = writeln!(w);
    }
    if !run.violations.is_empty() {
        let _ = writeln!(w, "## Audit violations (first 20)\n");
        for v in run.violations.iter().take(20) {
            let r = &v.request;
            let _ = writeln!(
                w,
                "- {:.1} s: {} {:?} caller {:?}: {}",
                r.at, r.method, r.target, r.authorization, v.reason
            );
        }
        let _ = writeln!(w);
    }
    let _ = writeln!(w, "![soak plot](soak.png)");

    std::fs::write(out.join("summary.md"), &md).map_err(|e| e.to_string())?;
    write_csv(out, s).map_err(|e| e.to_string())?;
    let fit = slope.map(|per_min| (fitted_at(s, run.warmup, per_min), per_min));
    let marks = plot::Marks {
        warmup: run.warmup,
        fit,
        title: run.title.clone(),
    };
    plot::draw(&out.join("soak.png"), s, &marks).map_err(|e| format!("plot: {e}"))?;
    Ok(md)
}

/// The fitted line's value at `warmup` (it passes through the means).
fn fitted_at(s: &[Sample], warmup: u64, per_min: f64) -> f64 {
    let pts: Vec<&Sample> = s
        .iter()
        .filter(|x| x.t >= warmup && x.rss_kib > 0)
        .collect();
    let n = pts.len().max(1) as f64;
    let mt = pts.iter().map(|x| x.t as f64).sum::<f64>() / n;
    let my = pts.iter().map(|x| x.rss_kib as f64).sum::<f64>() / n;
    my - per_min * (mt - warmup as f64) / 60.0
}

fn write_csv(out: &Path, s: &[Sample]) -> std::io::Result<()> {
    let mut csv = format!(
        "t_s,rss_kib,fds,open_connections,p50_ms,p99_ms,{},fault\n",
        CLASSES.join(",").replace(' ', "_")
    );
    for x in s {
        let classes: Vec<String> = x.classes.iter().map(u64::to_string).collect();
        let _ = writeln!(
            csv,
            "{},{},{},{},{:.3},{:.3},{},{}",
            x.t,
            x.rss_kib,
            x.fds,
            x.open_connections.map_or(String::new(), |c| c.to_string()),
            x.p50_ms,
            x.p99_ms,
            classes.join(","),
            x.fault
        );
    }
    std::fs::write(out.join("samples.csv"), csv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_verdict_flags_only_a_judged_rising_slope() {
        assert!(memory_verdict(Some(600.0), 480, "").0);
        assert!(!memory_verdict(Some(20.0), 480, "").0);
        assert!(!memory_verdict(Some(600.0), 48, "").0);
        assert!(!memory_verdict(None, 480, "").0);
    }
}
