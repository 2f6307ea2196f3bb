//! `permgate explain`: how the loaded route table decides one request.

use std::fmt::Write;
use std::process::ExitCode;

use crate::decision::{Allowed, ExplainRequest, Explanation, Forbidden, Grants, Refused, Verdict};
use crate::permission::{Permission, PermissionSet};

/// The caller of an explained request, as given on the command line.
pub struct CallerArgs {
    /// Grants (`--grant`).
    pub grants: Vec<String>,
    /// Denies (`--deny`).
    pub denies: Vec<String>,
    /// No credentials at all (`--anonymous`).
    pub anonymous: bool,
}

/// Prints the explanation; exit code 1 only when the files or arguments are bad.
pub fn run(
    config: &std::path::Path,
    method: &str,
    target: &str,
    headers: &[String],
    caller: &CallerArgs,
) -> ExitCode {
    let snapshot = match super::load_snapshot(config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let request =
        match ExplainRequest::parse(method, target, headers.iter().map(|h| h.split_once(':'))) {
            Ok(r) => r,
            Err(e) => return super::fail(e),
        };
    let grants = match grants_of(caller) {
        Ok(g) => g,
        Err(e) => return super::fail(e),
    };
    let e = crate::decision::explain(&snapshot.routes, &request, grants.as_ref());
    super::print_out(&render(&request, &e, grants.as_ref()));
    ExitCode::SUCCESS
}

/// The caller's grants, `None` for `--anonymous`.
pub fn grants_of(caller: &CallerArgs) -> Result<Option<Grants>, String> {
    if caller.anonymous {
        return Ok(None);
    }
    Grants::from_lists("explain", &caller.grants, &caller.denies).map(Some)
}

/// The text `permgate explain` prints.
pub fn render(request: &ExplainRequest, e: &Explanation<'_>, grants: Option<&Grants>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "request:     {} {}", request.method, request.target);
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
    let _ = writeln!(out, "caller:      {}", caller_text(grants));
    let _ = writeln!(out, "decision:    {}", verdict_text(e.verdict.as_ref()));
    let outcome = match (e.forwarded_to, &e.verdict) {
        (Some(up), Some(Verdict::Allow(_))) => format!("forwarded to upstream \"{up}\""),
        (Some(up), _) => {
            format!("forwarded to upstream \"{up}\": audit mode, logged as would_deny")
        }
        // Whenever the gateway answers itself, there is a status.
        (None, _) => format!("answered {} by the gateway", e.status().unwrap_or(400)),
    };
    let _ = writeln!(out, "outcome:     {outcome}");
    out
}

fn caller_text(grants: Option<&Grants>) -> String {
    match grants {
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
    }
}

fn verdict_text(verdict: Option<&Verdict>) -> String {
    match verdict {
        None => "bad_request (400)".to_string(),
        Some(Verdict::Allow(why)) => format!("allow ({})", allowed_why(*why)),
        Some(Verdict::Refuse(Refused::Forbidden(Forbidden::Missing(m)))) => {
            format!("deny (403): missing {}", m.join(", "))
        }
        Some(Verdict::Refuse(Refused::Forbidden(Forbidden::NoRoute))) => {
            "deny (403): no route matches".to_string()
        }
        Some(Verdict::Refuse(Refused::Unauthenticated)) => "unauthenticated (401)".to_string(),
        Some(Verdict::Refuse(Refused::Unavailable)) => "unavailable (503)".to_string(),
    }
}

fn allowed_why(why: Allowed) -> &'static str {
    match why {
        Allowed::Open => "no credentials needed",
        Allowed::Authenticated => "any authenticated caller",
        Allowed::Granted => "the grants satisfy the route",
    }
}
