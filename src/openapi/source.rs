//! Where an operation's permissions come from (`--permissions`), and the
//! rules that turn them into `require` / `require_any` without ever
//! widening access.

use serde_json::Value;

use super::document::{Document, Operation};
use super::paths::PathParams;
use crate::permission::Requirement;

/// The extension the default source reads before falling back to scopes.
pub const DEFAULT_EXTENSION: &str = "x-permissions";

/// `--permissions`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PermissionSource {
    /// The extension `x-permissions`, else OAuth2 scopes.
    Default,
    /// `extension:NAME`.
    Extension(String),
    /// `scopes`.
    Scopes,
    /// `template:T`.
    Template(String),
}

impl std::str::FromStr for PermissionSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(name) = s.strip_prefix("extension:") {
            if name.is_empty() {
                return Err("extension: needs a name, as in extension:x-permissions".into());
            }
            return Ok(Self::Extension(name.to_string()));
        }
        if let Some(t) = s.strip_prefix("template:") {
            if t.is_empty() {
                return Err("template: needs a template, as in template:{tag}:{action}".into());
            }
            return Ok(Self::Template(t.to_string()));
        }
        match s {
            "scopes" => Ok(Self::Scopes),
            "default" => Ok(Self::Default),
            _ => Err(format!(
                "unknown permission source {s:?}: use extension:NAME, scopes or template:T"
            )),
        }
    }
}

impl std::fmt::Display for PermissionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => write!(f, "extension {DEFAULT_EXTENSION}, else OAuth2 scopes"),
            Self::Extension(n) => write!(f, "extension {n}"),
            Self::Scopes => f.write_str("OAuth2 scopes"),
            Self::Template(t) => write!(f, "template {t}"),
        }
    }
}

/// Permissions as the document states them, not yet validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stated {
    /// All of these.
    pub all: Vec<String>,
    /// At least one of these (none: no alternative list).
    pub any: Vec<String>,
    /// Warnings about how they were read.
    pub warnings: Vec<String>,
}

/// Validated permissions of one operation: what its route requires.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// `require`.
    pub all: Vec<String>,
    /// `require_any`: empty, or at least two alternatives.
    pub any: Vec<String>,
}

impl Needs {
    /// Whether only an authenticated caller is needed.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.any.is_empty()
    }
}

/// What the source says about one operation's permissions; `Err` when the
/// operation cannot be given a route that is never wider than the document.
pub fn stated(
    doc: &Document,
    source: &PermissionSource,
    op: &Operation<'_>,
    params: &PathParams,
    oauth: &[String],
) -> Result<Stated, String> {
    match source {
        PermissionSource::Extension(name) => extension(doc, op, name),
        PermissionSource::Scopes => scopes(op.security, oauth),
        PermissionSource::Template(t) => template(t, op, params).map(|p| Stated {
            all: vec![p],
            ..Stated::default()
        }),
        PermissionSource::Default => {
            if op.value.get(DEFAULT_EXTENSION).is_some() {
                extension(doc, op, DEFAULT_EXTENSION)
            } else {
                scopes(op.security, oauth)
            }
        }
    }
}

/// `{"type": "ANY"|"ALL", "permissions": [...]}`; absent: no permission.
fn extension(doc: &Document, op: &Operation<'_>, name: &str) -> Result<Stated, String> {
    let Some(value) = op.value.get(name) else {
        return Ok(Stated::default());
    };
    let value = doc.resolve(value)?;
    let shape = || format!("{name} is not {{\"type\": \"ANY\"|\"ALL\", \"permissions\": [...]}}");
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(shape)?;
    let list = value
        .get("permissions")
        .and_then(Value::as_array)
        .ok_or_else(shape)?;
    let mut perms = Vec::with_capacity(list.len());
    for p in list {
        perms.push(p.as_str().ok_or_else(shape)?.to_string());
    }
    if kind.eq_ignore_ascii_case("ALL") {
        Ok(Stated {
            all: perms,
            ..Stated::default()
        })
    } else if kind.eq_ignore_ascii_case("ANY") {
        Ok(Stated {
            any: perms,
            ..Stated::default()
        })
    } else {
        Err(format!("{name}: unknown type {kind:?} (ANY or ALL)"))
    }
}

/// OAuth2 scopes of the security requirements in force. One requirement
/// object: all its scopes. Several of one scope each: any of them. Any other
/// mix: the first object, with a warning. A list given for a scheme that is
/// not a defined OAuth2 scheme (OpenAPI 3.1 roles, an undefined name) is
/// required too, with a warning: dropping it would widen access.
fn scopes(security: Option<&Value>, oauth: &[String]) -> Result<Stated, String> {
    let Some(security) = security else {
        return Ok(Stated::default());
    };
    let objects = security
        .as_array()
        .ok_or("\"security\" is not a list of requirement objects")?;
    let mut warnings = Vec::new();
    let mut sets: Vec<Vec<String>> = Vec::with_capacity(objects.len());
    for object in objects {
        let object = object
            .as_object()
            .ok_or("a security requirement is not an object")?;
        let mut set: Vec<String> = Vec::new();
        for (scheme, list) in object {
            let list = list
                .as_array()
                .ok_or_else(|| format!("security scheme {scheme}: scopes are not a list"))?;
            if !list.is_empty() && !oauth.contains(scheme) {
                warnings.push(format!(
                    "security scheme {scheme} is not a defined OAuth2 scheme; its list is required as scopes"
                ));
            }
            for scope in list {
                let scope = scope
                    .as_str()
                    .ok_or_else(|| format!("security scheme {scheme}: a scope is not a string"))?;
                if !set.iter().any(|o| o == scope) {
                    set.push(scope.to_string());
                }
            }
        }
        sets.push(set);
    }
    let mut stated = match sets.as_slice() {
        [] => Stated::default(),
        [one] => Stated {
            all: one.clone(),
            ..Stated::default()
        },
        many if many.iter().all(Vec::is_empty) => Stated::default(),
        many if many.iter().all(|s| s.len() == 1) => Stated {
            any: many.iter().map(|s| s[0].clone()).collect(),
            ..Stated::default()
        },
        [first, ..] => Stated {
            all: first.clone(),
            any: Vec::new(),
            warnings: vec![format!(
                "{} security requirement objects mix scopes in a way a route cannot express; the first ({}) is required",
                sets.len(),
                if first.is_empty() {
                    "no scope".to_string()
                } else {
                    first.join(", ")
                }
            )],
        },
    };
    stated.warnings.extend(warnings);
    Ok(stated)
}

/// The action word for a method: view, add, edit, delete.
pub fn action(method: &str) -> Option<&'static str> {
    match method {
        "GET" | "HEAD" => Some("view"),
        "POST" => Some("add"),
        "PUT" | "PATCH" => Some("edit"),
        "DELETE" => Some("delete"),
        _ => None,
    }
}

/// The last static segment of a path.
fn resource(path: &str) -> Option<&str> {
    path.split('/')
        .rev()
        .find(|s| !s.is_empty() && !s.contains(['{', '}']))
}

/// Expands `{tag}`, `{resource}` and `{action}` in `template`; other
/// `{name}`s are path parameters and stay, to be filled from the request.
fn template(template: &str, op: &Operation<'_>, params: &PathParams) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let name = &rest[start + 1..start + len];
        let word = match name {
            "tag" => Some(op.tag().ok_or("the operation has no tag for {tag}")?),
            "resource" => {
                Some(resource(&op.path).ok_or("the path has no static segment for {resource}")?)
            }
            "action" => Some(
                action(&op.method)
                    .ok_or_else(|| format!("{} has no {{action}} word", op.method))?,
            ),
            _ => None,
        };
        match (word, params.lookup(name)) {
            (Some(w), _) => out.push_str(w),
            (None, Some(p)) => {
                out.push('{');
                out.push_str(p);
                out.push('}');
            }
            (None, None) => return Err(format!("{{{name}}} is not a parameter of the path")),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Validates stated permissions against the permission grammar. An invalid
/// alternative of `require_any` is dropped (that only narrows access); an
/// invalid `require` entry, or no valid alternative left, gives `Err`: the
/// operation is left out. Invalid strings are reported in `warnings`.
pub fn validate(
    stated: Stated,
    params: &PathParams,
    warnings: &mut Vec<String>,
) -> Result<Needs, String> {
    let names: Vec<&str> = params.names.iter().map(String::as_str).collect();
    let check = |p: &str| Requirement::parse(p, &names).map_err(|e| format!("{p:?}: {e}"));
    let mut needs = Needs::default();
    for p in stated.all {
        check(&p).map_err(|e| format!("invalid required permission {e}"))?;
        if !needs.all.contains(&p) {
            needs.all.push(p);
        }
    }
    let had_alternatives = !stated.any.is_empty();
    for p in stated.any {
        match check(&p) {
            Ok(_) if !needs.any.contains(&p) => needs.any.push(p),
            Ok(_) => {}
            Err(e) => warnings.push(format!("invalid alternative {e}; skipped")),
        }
    }
    if had_alternatives && needs.any.is_empty() {
        return Err("no valid alternative in require_any".into());
    }
    if needs.any.len() == 1 {
        let only = needs.any.remove(0);
        if !needs.all.contains(&only) {
            needs.all.push(only);
        }
    }
    warnings.extend(stated.warnings);
    Ok(needs)
}
