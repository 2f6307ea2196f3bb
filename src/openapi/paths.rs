//! OpenAPI path templates as permgate path patterns.
//!
//! `{param}` filling a whole segment maps to `{param}` (a name permgate
//! cannot take is renamed, e.g. `{enterprise-team}` → `{enterprise_team}`).
//! A parameter inside a segment (`/files/{name}.json`,
//! `/compare/{base}...{head}`) cannot be expressed: a whole-segment
//! parameter would match more paths than the operation, so the operation is
//! left out. A `*` is matched literally, never as a wildcard.

use crate::path::NormalizeOptions;
use crate::routes::PathPattern;

/// A converted path: the permgate pattern and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathParams {
    /// The permgate path pattern.
    pub pattern: String,
    /// The pattern with parameter names erased: same shape, same paths.
    pub shape: String,
    /// Parameter names in path order, as permgate writes them.
    pub names: Vec<String>,
    /// The same parameters as the document names them.
    pub originals: Vec<String>,
    /// Things worth telling about the conversion.
    pub notes: Vec<String>,
}

impl PathParams {
    /// The permgate name of a parameter, by its permgate or document name.
    pub fn lookup(&self, name: &str) -> Option<&str> {
        self.names
            .iter()
            .zip(&self.originals)
            .find(|(n, o)| *n == name || *o == name)
            .map(|(n, _)| n.as_str())
    }
}

/// Converts an OpenAPI path (base path included) into a permgate pattern;
/// `Err` says why it cannot be expressed.
pub fn convert(path: &str) -> Result<PathParams, String> {
    let mut names: Vec<String> = Vec::new();
    let mut originals = Vec::new();
    let mut notes = Vec::new();
    let mut pieces = Vec::new();
    for segment in path.split('/') {
        let whole = segment
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .filter(|inner| !inner.contains(['{', '}']));
        match whole {
            Some(original) => {
                let name = unique(param_name(original), &names);
                if name != original {
                    notes.push(format!("path parameter {{{original}}} is named {{{name}}}"));
                }
                pieces.push(format!("{{{name}}}"));
                originals.push(original.to_string());
                names.push(name);
            }
            None if segment.contains(['{', '}']) => {
                return Err(format!(
                    "segment {segment:?} has a parameter inside it; routes match whole segments, and a wider route would let through paths the operation does not have"
                ));
            }
            None => {
                if segment.contains('*') {
                    notes.push(format!(
                        "'*' in segment {segment:?} is matched literally, not as a wildcard"
                    ));
                }
                pieces.push(segment.to_string());
            }
        }
    }
    let pattern = pieces.join("/");
    let parsed = PathPattern::parse(&pattern, &NormalizeOptions::default())
        .map_err(|e| format!("path {pattern:?}: {e}"))?;
    Ok(PathParams {
        shape: parsed.shape(),
        pattern,
        names,
        originals,
        notes,
    })
}

/// A permgate parameter name (`[A-Za-z_][A-Za-z0-9_]*`) for `original`.
fn param_name(original: &str) -> String {
    let mut name: String = original
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, 'p');
    }
    name
}

/// `name`, or `name_2`, `name_3`… when it is taken.
fn unique(name: String, taken: &[String]) -> String {
    if !taken.contains(&name) {
        return name;
    }
    (2..)
        .map(|i| format!("{name}_{i}"))
        .find(|n| !taken.contains(n))
        .unwrap_or(name)
}
