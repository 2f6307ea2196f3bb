//! `permgate import-openapi`: a routes file from an API description
//! (README, "Importing an API description").

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::decision::{ExplainRequest, Grants, explain};
use crate::openapi::{Import, PermissionSource, Report, import};
use crate::permission::PermissionSet;
use crate::routes::RouteTable;

/// Imports `file`, checks the result the way `permgate check` would, and
/// writes it to `output` (replacing it only on success) or stdout. The
/// report goes to stderr.
pub fn run(file: &Path, source: &str, output: Option<&Path>) -> ExitCode {
    let source: PermissionSource = match source.parse() {
        Ok(s) => s,
        Err(e) => return super::fail(format!("--permissions: {e}")),
    };
    let text = match crate::config::read_file(file) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let imported = match import(&text, file, &source) {
        Ok(i) => i,
        Err(e) => return super::fail(e),
    };
    if let Err(e) = self_check(&imported, file) {
        return super::fail(e);
    }
    print_report(file, &imported.report);
    match output {
        None => {
            super::print_out(&imported.text);
            ExitCode::SUCCESS
        }
        Some(out) => match replace_file(out, &imported.text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => super::fail(format!("{}: {e}", out.display())),
        },
    }
}

/// Loads the routes with the real loader and runs their `[[test]]`s.
fn self_check(imported: &Import, file: &Path) -> Result<(), String> {
    let table = crate::routes::parse(&imported.text, file, &["default".to_string()])
        .map_err(|e| format!("the imported routes do not load (this is a bug): {e}"))?;
    let failures = failing_tests(&table);
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "{} of the imported routes' tests fail (this is a bug), first: {first}",
            failures.len()
        )),
    }
}

/// `METHOD path` of every `[[test]]` of `table` whose outcome differs from
/// its `expect`, decided as `permgate check` decides it.
pub fn failing_tests(table: &RouteTable) -> Vec<String> {
    table
        .tests
        .iter()
        .filter(|t| {
            let grants = t.grants.as_ref().map(|allow| Grants {
                subject: "test".into(),
                allow: allow.iter().cloned().collect::<PermissionSet>(),
                deny: t.denies.iter().cloned().collect::<PermissionSet>(),
            });
            let request = ExplainRequest {
                method: t.method.clone(),
                target: t.path.clone(),
                headers: http::HeaderMap::new(),
            };
            super::check::outcome(&explain(table, &request, grants.as_ref())) != t.expect
        })
        .map(|t| format!("{} {} (line {})", t.method, t.path, t.line))
        .collect()
}

fn print_report(file: &Path, r: &Report) {
    let file = file.display();
    let mut err = std::io::stderr().lock();
    for (op, w) in &r.warnings {
        let _ = writeln!(err, "{file}: warning: {op}: {w}");
    }
    for c in &r.conflicts {
        let _ = writeln!(err, "{file}: conflict: {c}");
    }
    for (op, why) in &r.left_out {
        let _ = writeln!(err, "{file}: left out: {op}: {why}");
    }
    let _ = writeln!(
        err,
        "{file}: {} operations: {} routes ({} authenticated only), {} left out, {} conflicts, {} warnings, {} tests",
        r.operations,
        r.routes,
        r.authenticated_only,
        r.left_out.len(),
        r.conflicts.len(),
        r.warnings.len(),
        r.tests
    );
}

/// Writes `text` to a temporary file beside `path` and renames it over
/// `path`, so a failure never leaves a half-written or emptied file. An
/// existing file's permission bits are kept.
fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "routes".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create_new(&temp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        if let Ok(old) = std::fs::metadata(path) {
            f.set_permissions(old.permissions())?;
        }
        f.sync_all()
    });
    let result = written.and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
