//! `permgate import-openapi` (README, "Importing an API description"): an
//! OpenAPI 3.x or Swagger 2.0 document turned into a routes file.
//!
//! * [`document`] reads the document (JSON or YAML, [`yaml`]) into
//!   operations, resolving `$ref`s inside it;
//! * [`paths`] turns OpenAPI path templates into permgate patterns;
//! * [`source`] derives each operation's permissions (extension, OAuth2
//!   scopes or a template) and validates them;
//! * [`plan`] resolves same-shape conflicts;
//! * [`writer`] writes the routes file with a `[[test]]` per operation.
//!
//! Nothing here ever widens access: an operation that cannot be expressed
//! exactly, or only more widely, is left out, and `default = "deny"`
//! applies to it.

pub mod document;
pub mod paths;
pub mod plan;
pub mod source;
pub mod writer;
mod yaml;

use std::path::Path;

pub use source::PermissionSource;

use crate::config::ConfigError;
use document::Document;
use plan::Entry;

/// What an import tells its user.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Operations in the document.
    pub operations: usize,
    /// `[[route]]`s written.
    pub routes: usize,
    /// Routes that need only an authenticated caller.
    pub authenticated_only: usize,
    /// `[[test]]`s written.
    pub tests: usize,
    /// Operations left out, as (operation, why).
    pub left_out: Vec<(String, String)>,
    /// Same-shape conflicts and how each was resolved.
    pub conflicts: Vec<String>,
    /// Warnings, as (operation, what).
    pub warnings: Vec<(String, String)>,
}

/// A finished import: the routes file and the report.
#[derive(Debug)]
pub struct Import {
    /// The routes file.
    pub text: String,
    /// What happened.
    pub report: Report,
}

/// Imports the API description `text`, read from `file`.
pub fn import(text: &str, file: &Path, source: &PermissionSource) -> Result<Import, ConfigError> {
    let doc = Document::parse(text, file)?;
    let mut report = Report::default();
    let mut problems = Vec::new();
    let operations = doc.operations(&mut problems);
    report.operations = operations.len() + problems.len();
    let mut left_out: Vec<writer::LeftOut> = problems
        .into_iter()
        .map(|(label, why)| writer::LeftOut::new(label, None, why))
        .collect();
    let oauth = doc.oauth_schemes();
    let mut entries = Vec::with_capacity(operations.len());
    for op in &operations {
        let label = op.label();
        let params = match paths::convert(&op.path) {
            Ok(p) => p,
            Err(why) => {
                left_out.push(writer::LeftOut::new(label, Some(op), why));
                continue;
            }
        };
        let mut warnings = Vec::new();
        let needs = source::stated(&doc, source, op, &params, &oauth)
            .and_then(|stated| source::validate(stated, &params, &mut warnings));
        for w in &warnings {
            report.warnings.push((label.clone(), w.clone()));
        }
        for n in &params.notes {
            report.warnings.push((label.clone(), n.clone()));
        }
        match needs {
            Ok(needs) => entries.push(Entry::new(op, label, params, needs, warnings)),
            Err(why) => left_out.push(writer::LeftOut::new(label, Some(op), why)),
        }
    }
    let planned = plan::plan(entries);
    report.conflicts = planned.conflicts;
    left_out.extend(planned.left_out);
    left_out.sort_by(|a, b| (&a.path, &a.label).cmp(&(&b.path, &b.label)));
    let header = writer::Header {
        title: doc.title(),
        flavor: format!(
            "{} {}",
            match doc.flavor {
                document::Flavor::Swagger2 => "Swagger",
                document::Flavor::OpenApi3 => "OpenAPI",
            },
            doc.version
        ),
        file: file.file_name().map_or_else(
            || file.display().to_string(),
            |n| n.to_string_lossy().into(),
        ),
        source: source.to_string(),
    };
    let written = writer::write(&header, &planned.entries, &left_out, file)?;
    report.routes = planned.entries.len();
    report.authenticated_only = planned
        .entries
        .iter()
        .filter(|e| e.needs.is_empty())
        .count();
    report.tests = written.tests;
    report.left_out = left_out.into_iter().map(|l| (l.label, l.why)).collect();
    Ok(Import {
        text: written.text,
        report,
    })
}

#[cfg(test)]
mod tests;
