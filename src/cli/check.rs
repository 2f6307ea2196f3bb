//! `permgate check`: validate the files and run the routes file's tests.

use std::process::ExitCode;

use crate::decision::{ExplainRequest, Explanation, Grants, Refused, Verdict, explain};
use crate::permission::{Permission, PermissionSet};
use crate::routes::{Expectation, RouteTable, RouteTest};

/// Loads the config, routes, grants and TLS files, runs every `[[test]]`, prints
/// failures and a summary; exit code 0 when everything holds.
pub fn run(config: &std::path::Path) -> ExitCode {
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
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
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
