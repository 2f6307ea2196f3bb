//! `permgate check`: validate the files and run the routes file's tests.

use std::process::ExitCode;

use crate::decision::{ExplainRequest, Explanation, Grants, Refused, Verdict, explain};
use crate::permission::{Permission, PermissionSet};
use crate::routes::lint::Severity;
use crate::routes::{Expectation, RouteTable, RouteTest};

/// How `--lint` reports (README, "Linting a route table").
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LintMode {
    /// Print warnings; they do not change the exit code.
    Warn,
    /// Print warnings and notes; neither changes the exit code.
    All,
    /// Print warnings; any warning makes the exit code 1.
    Strict,
}

/// Loads the config, routes, grants and TLS files, runs every `[[test]]`, prints
/// failures and a summary, and lints the table when asked; exit code 0 when
/// everything holds.
pub fn run(config: &std::path::Path, lint: Option<LintMode>) -> ExitCode {
    let snapshot = match super::load_snapshot(config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Err(code) = check_tls(config) {
        return code;
    }
    let table = &snapshot.routes;
    let file = table.source.file.display();
    let mut failed = 0;
    for test in table.tests.iter() {
        if let Some(problem) = run_test(table, test) {
            failed += 1;
            super::print_out(&format!("FAIL {file}:{}: {problem}\n", test.line));
        }
    }
    let passed = table.tests.len() - failed;
    let mut summary = format!("{} routes, {passed} tests passed", table.routes().len());
    if failed > 0 {
        summary.push_str(&format!(", {failed} failed"));
    }
    if let Some(g) = &snapshot.grants {
        summary.push_str(&format!(
            "; {} subjects in {}",
            g.subject_count(),
            g.file.display()
        ));
    }
    super::print_out(&format!("{summary}\n"));
    let lint_failed = lint.is_some_and(|mode| print_lint(table, mode) && mode == LintMode::Strict);
    if failed == 0 && !lint_failed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Prints the lint findings `mode` shows and a count; whether there was a
/// warning.
fn print_lint(table: &RouteTable, mode: LintMode) -> bool {
    let file = table.source.file.display();
    let findings = crate::routes::lint::lint(table);
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let notes = findings.len() - warnings;
    let mut text = String::new();
    for f in &findings {
        if f.severity == Severity::Note && mode != LintMode::All {
            continue;
        }
        text.push_str(&format!(
            "{file}:{}: {}[{}]: {}\n",
            f.line,
            f.severity.as_str(),
            f.kind.as_str(),
            f.message
        ));
    }
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    text.push_str(&format!(
        "lint: {}, {}",
        plural(warnings, "warning"),
        plural(notes, "note")
    ));
    if notes > 0 && mode != LintMode::All {
        text.push_str(" (--lint=all shows the notes)");
    }
    text.push('\n');
    super::print_out(&text);
    warnings > 0
}

/// Loads the TLS certificate, key and client CA the config names, as a
/// start would.
fn check_tls(config: &std::path::Path) -> Result<(), ExitCode> {
    let config = crate::config::Config::load(config).map_err(super::fail)?;
    if let Some(files) = &config.server.tls {
        crate::server::tls::TlsState::load(files).map_err(super::fail)?;
    }
    Ok(())
}

/// What the rules say about the request, as a test expectation. In audit
/// mode this is what enforce mode would answer: tests check the rules, not
/// the mode.
pub fn outcome(e: &Explanation<'_>) -> Expectation {
    match &e.verdict {
        None => Expectation::BadRequest,
        Some(Verdict::Allow(_)) => Expectation::Allow,
        Some(Verdict::Refuse(Refused::Forbidden(_))) => Expectation::Deny,
        // A test caller's grants are given, never fetched: "unavailable"
        // cannot arise; count it as the refusal it would be.
        Some(Verdict::Refuse(Refused::Unauthenticated | Refused::Unavailable)) => {
            Expectation::Unauthenticated
        }
    }
}

/// `None` if the test holds, else what went wrong.
fn run_test(table: &RouteTable, test: &RouteTest) -> Option<String> {
    let grants = test.grants.as_ref().map(|allow| Grants {
        subject: "test".into(),
        allow: allow.iter().cloned().collect::<PermissionSet>(),
        deny: test.denies.iter().cloned().collect::<PermissionSet>(),
    });
    let request = ExplainRequest {
        method: test.method.clone(),
        target: test.path.clone(),
        headers: http::HeaderMap::new(),
    };
    let e = explain(table, &request, grants.as_ref());
    let actual = outcome(&e);
    if actual == test.expect {
        return None;
    }
    let list = |p: &[Permission]| {
        p.iter()
            .map(Permission::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let caller = match &test.grants {
        None => "without credentials".to_string(),
        Some(g) if test.denies.is_empty() => format!("with grants [{}]", list(g)),
        Some(g) => format!(
            "with grants [{}] and denies [{}]",
            list(g),
            list(&test.denies)
        ),
    };
    let route = match (&e.path, e.route) {
        (Err(bad), _) => format!("rejected: {}", bad.reason()),
        (_, Some(r)) => format!("route {:?} at line {}", r.name, r.line),
        (_, None) => format!("no route; default \"{}\"", e.default.as_str()),
    };
    let missing = e
        .missing()
        .map(|m| format!("; missing {}", m.join(", ")))
        .unwrap_or_default();
    Some(format!(
        "{} {} {caller}: expected {}, got {} ({route}{missing})",
        test.method,
        test.path,
        test.expect.as_str(),
        actual.as_str()
    ))
}
