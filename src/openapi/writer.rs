//! The routes file: a header, one `[[route]]` per entry with its comments,
//! the operations left out, and `[[test]]`s that pin each route's decision.
//! Same input, same bytes: nothing depends on time or hashing order.

use std::fmt::Write as _;
use std::path::Path;

use http::Method;

use super::document::Operation;
use super::plan::Entry;
use crate::config::ConfigError;
use crate::decision::{ExplainRequest, Grants, explain};
use crate::permission::PermissionSet;
use crate::routes::{Access, RouteTable};

/// An operation that got no route; the default applies to it.
#[derive(Clone, Debug)]
pub struct LeftOut {
    /// The operation's label.
    pub label: String,
    /// Its method, when known.
    pub method: String,
    /// Its path as the document writes it, when known.
    pub path: String,
    /// Why it was left out.
    pub why: String,
}

impl LeftOut {
    /// `op` (when it was read) left out for `why`.
    pub fn new(label: String, op: Option<&Operation<'_>>, why: String) -> LeftOut {
        LeftOut {
            label,
            method: op.map(|o| o.method.clone()).unwrap_or_default(),
            path: op.map(|o| o.path.clone()).unwrap_or_default(),
            why,
        }
    }
}

/// What the header says about the input.
#[derive(Debug)]
pub struct Header {
    /// `info.title` and `info.version`.
    pub title: String,
    /// `OpenAPI 3.0.3` or `Swagger 2.0`.
    pub flavor: String,
    /// The input's file name.
    pub file: String,
    /// The permission source, in words.
    pub source: String,
}

/// The written file and how many tests it has.
#[derive(Debug)]
pub struct Written {
    /// The routes file.
    pub text: String,
    /// Number of `[[test]]`s.
    pub tests: usize,
}

/// Writes the routes file. The routes are compiled with the real loader to
/// find, for each, a request that reaches it; `file` names the input in the
/// (unexpected) case that they do not load.
pub fn write(
    header: &Header,
    entries: &[Entry],
    left_out: &[LeftOut],
    file: &Path,
) -> Result<Written, ConfigError> {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Routes for {} ({}), imported from {} by permgate import-openapi.",
        one_line(&header.title),
        header.flavor,
        one_line(&header.file)
    );
    let _ = writeln!(text, "# Permissions from {}.", one_line(&header.source));
    let _ = writeln!(
        text,
        "# {} routes; {} operations left out. Requests no route matches are denied.",
        entries.len(),
        left_out.len()
    );
    text.push_str("default = \"deny\"\n");
    for e in entries {
        text.push('\n');
        for n in &e.notes {
            let _ = writeln!(text, "# {}", one_line(n));
        }
        text.push_str("[[route]]\n");
        let _ = writeln!(text, "name = {}", quote(&e.name));
        let _ = writeln!(text, "methods = [{}]", quote(&e.method));
        let _ = writeln!(text, "path = {}", quote(&e.params.pattern));
        if !e.needs.all.is_empty() {
            let _ = writeln!(text, "require = {}", list(&e.needs.all));
        }
        if !e.needs.any.is_empty() {
            let _ = writeln!(text, "require_any = {}", list(&e.needs.any));
        }
    }
    if !left_out.is_empty() {
        text.push_str("\n# Left out: no route is written for these operations, so the default\n");
        text.push_str("# (deny) applies to them.\n");
        for l in left_out {
            let what = if l.method.is_empty() {
                l.label.clone()
            } else {
                format!("{} ({} {})", l.label, l.method, l.path)
            };
            let _ = writeln!(text, "#   {}: {}", one_line(&what), one_line(&l.why));
        }
    }
    let table = crate::routes::parse(&text, file, &["default".to_string()]).map_err(|e| {
        ConfigError::file(
            file,
            format!("the imported routes do not load (this is a bug): {e}"),
        )
    })?;
    let mut tests = 0;
    text.push_str(
        "\n# Each route: a caller holding what it needs is allowed, one without is not.\n",
    );
    for (route, e) in table.routes().iter().zip(entries) {
        for case in cases_for(&table, route, e) {
            tests += 1;
            text.push_str(&case);
        }
    }
    for l in left_out {
        if let Some(case) = left_out_case(&table, l) {
            tests += 1;
            text.push_str(&case);
        }
    }
    Ok(Written { text, tests })
}

/// A request path for `route`, with sample parameter values that the table
/// really routes to it (a value equal to a sibling's static segment would
/// not), and those values.
fn sample_path(
    table: &RouteTable,
    route: &crate::routes::Route,
    method: &Method,
) -> Option<(String, Vec<String>)> {
    for attempt in 0..3 {
        let values: Vec<String> = route
            .params
            .iter()
            .map(|n| match attempt {
                0 => format!("{n}1"),
                1 => format!("x-{n}-2"),
                _ => format!("{n}.3"),
            })
            .collect();
        let mut path = route.path.to_string();
        for (n, v) in route.params.iter().zip(&values) {
            path = path.replace(&format!("{{{n}}}"), v);
        }
        let request = ExplainRequest {
            method: method.clone(),
            target: path.clone(),
            headers: http::HeaderMap::new(),
        };
        let e = explain(table, &request, None);
        if e.route.is_some_and(|r| std::ptr::eq(r, route)) {
            return Some((path, values));
        }
    }
    None
}

/// The `[[test]]`s of one route: allowed with what it needs, denied
/// without it (or 401 without credentials for an authenticated-only route).
fn cases_for(table: &RouteTable, route: &crate::routes::Route, e: &Entry) -> Vec<String> {
    let Ok(method) = Method::from_bytes(e.method.as_bytes()) else {
        return Vec::new();
    };
    let Some((path, values)) = sample_path(table, route, &method) else {
        return Vec::new();
    };
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    match &route.access {
        Access::Permissions { all, any } => {
            let mut held: Vec<String> = all.iter().map(|r| r.render(&values)).collect();
            held.extend(any.first().map(|r| r.render(&values)));
            vec![
                case(&e.method, &path, Some(&held), "allow"),
                case(&e.method, &path, Some(&[]), "deny"),
            ]
        }
        Access::Authenticated => vec![
            case(&e.method, &path, Some(&[]), "allow"),
            case(&e.method, &path, None, "unauthenticated"),
        ],
        Access::Public => Vec::new(),
    }
}

/// A test that a left-out operation is denied even to a caller holding
/// every permission, when its path reaches no other route.
fn left_out_case(table: &RouteTable, l: &LeftOut) -> Option<String> {
    let method = Method::from_bytes(l.method.as_bytes()).ok()?;
    let mut path = String::with_capacity(l.path.len());
    let mut inside = false;
    for c in l.path.chars() {
        match c {
            '{' => {
                inside = true;
                path.push_str("v1");
            }
            '}' => inside = false,
            c if !inside => path.push(c),
            _ => {}
        }
    }
    let everything = Grants {
        subject: "test".into(),
        allow: ["*"]
            .iter()
            .filter_map(|p| crate::permission::Permission::parse(p).ok())
            .collect::<PermissionSet>(),
        deny: PermissionSet::empty(),
    };
    let request = ExplainRequest {
        method,
        target: path.clone(),
        headers: http::HeaderMap::new(),
    };
    let e = explain(table, &request, Some(&everything));
    (e.path.is_ok() && e.route.is_none() && e.word() == "deny")
        .then(|| case(&l.method, &path, Some(&["*".to_string()]), "deny"))
}

fn case(method: &str, path: &str, grants: Option<&[String]>, expect: &str) -> String {
    let mut out = String::from("\n[[test]]\n");
    let _ = writeln!(out, "method = {}", quote(method));
    let _ = writeln!(out, "path = {}", quote(path));
    if let Some(g) = grants {
        let _ = writeln!(out, "grants = {}", list(g));
    }
    let _ = writeln!(out, "expect = {}", quote(expect));
    out
}

/// A TOML basic string.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// Text for a comment line: line breaks become spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
