//! `permgate explain`: how the loaded route table decides one request.

use std::fmt::Write;
use std::process::ExitCode;

use http::Method;

use crate::decision::{Decision, Explanation, Forbidden, Grants, explain};
use crate::permission::{Permission, PermissionSet};

/// The caller of an explained request.
pub struct Caller {
    /// Grants (`--grant`).
    pub grants: Vec<String>,
    /// Denies (`--deny`).
    pub denies: Vec<String>,
    /// No credentials at all (`--anonymous`).
    pub anonymous: bool,
}

/// Prints the explanation; exit code 1 only when the files or arguments are bad.
pub fn run(config: &std::path::Path, method: &str, path: &str, caller: &Caller) -> ExitCode {
    let snapshot = match super::load_snapshot(config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return super::fail(format!("invalid method {method:?}"));
    };
    let grants = match grants_of(caller) {
        Ok(g) => g,
        Err(e) => return super::fail(e),
    };
    let e = explain(&snapshot.routes, &method, path, grants.as_ref());
    super::print_out(&render(&method, path, &e, grants.as_ref()));
    ExitCode::SUCCESS
}

/// The caller's grants, `None` for `--anonymous`.
pub fn grants_of(caller: &Caller) -> Result<Option<Grants>, String> {
    if caller.anonymous {
        return Ok(None);
    }
    Grants::from_lists("explain", &caller.grants, &caller.denies).map(Some)
}

/// The text `permgate explain` prints.
pub fn render(method: &Method, path: &str, e: &Explanation<'_>, grants: Option<&Grants>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "request:     {method} {path}");
    let normalized = match &e.path {
        Err(bad) => {
            let _ = writeln!(out, "normalized:  rejected: {}", bad.reason());
            let _ = writeln!(
                out,
                "decision:    bad_request (400), before any grant lookup"
            );
            return out;
        }
        Ok(p) => p,
    };
    let _ = writeln!(out, "normalized:  {normalized}");
    if let Some(r) = &e.routing_path {
        let _ = writeln!(out, "matched as:  {r}  (without ; parameters)");
    }
    match e.route {
        Some(r) => {
            let _ = writeln!(
                out,
                "route:       {} (line {}: {} {})",
                r.name,
                r.line,
                r.methods_label(),
                r.path
            );
            if !e.params.is_empty() {
                let params: Vec<String> =
                    e.params.iter().map(|(n, v)| format!("{n}={v}")).collect();
                let _ = writeln!(out, "params:      {}", params.join(", "));
            }
        }
        None => {
            let _ = writeln!(
                out,
                "route:       none; default = \"{}\"",
                e.default.as_str()
            );
        }
    }
    let _ = writeln!(out, "mode:        {}", e.mode.as_str());
    for r in &e.requirements {
        let kind = if r.any_of { "require_any" } else { "require" };
        let _ = writeln!(out, "{kind:<12} {}  {}", r.concrete, r.check);
    }
    let caller = match grants {
        None => "no credentials".to_string(),
        Some(g) => {
            let list = |s: &PermissionSet| {
                s.iter()
                    .map(Permission::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!("grants [{}], denies [{}]", list(&g.allow), list(&g.deny))
        }
    };
    let _ = writeln!(out, "caller:      {caller}");
    let decision = match &e.decision {
        Some(Decision::Allow(why)) => format!("allow ({})", allowed_why(why)),
        Some(Decision::Forbidden(Forbidden::Missing(m))) => {
            format!("deny (403): missing {}", m.join(", "))
        }
        Some(Decision::Forbidden(Forbidden::NoRoute)) => "deny (403): no route matches".to_string(),
        Some(Decision::Unauthenticated) => "unauthenticated (401)".to_string(),
        Some(Decision::Unavailable) | None => "unavailable (503)".to_string(),
    };
    let _ = writeln!(out, "decision:    {decision}");
    out
}

fn allowed_why(why: &crate::decision::Allowed) -> &'static str {
    match why {
        crate::decision::Allowed::Open => "no credentials needed",
        crate::decision::Allowed::Authenticated => "any authenticated caller",
        crate::decision::Allowed::Granted => "the grants satisfy the route",
    }
}
