//! The API description: JSON or YAML, OpenAPI 3.x or Swagger 2.0, read into
//! a list of operations with `$ref`s to path items resolved in the document.

use std::path::Path;

use serde_json::Value;

use crate::config::ConfigError;

/// HTTP methods an OpenAPI path item may hold, in output order.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Most `$ref` hops followed before a reference is taken for a loop.
const MAX_REF_HOPS: usize = 32;

/// Which specification the document follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `swagger: "2.0"`: `basePath`, `securityDefinitions`.
    Swagger2,
    /// `openapi: 3.x`: `servers`, `components.securitySchemes`.
    OpenApi3,
}

/// A parsed API description.
#[derive(Debug)]
pub struct Document {
    /// The whole document.
    pub root: Value,
    /// Its specification.
    pub flavor: Flavor,
    /// `swagger` or `openapi` as written, e.g. `3.0.3`.
    pub version: String,
}

/// One operation of the document.
#[derive(Debug)]
pub struct Operation<'d> {
    /// Upper-case method.
    pub method: String,
    /// The path as the document writes it, base path included.
    pub path: String,
    /// `operationId`, when present.
    pub id: Option<String>,
    /// The operation object.
    pub value: &'d Value,
    /// The security requirements in force: the operation's, else the
    /// document's.
    pub security: Option<&'d Value>,
}

impl Operation<'_> {
    /// `operationId`, or `METHOD path`.
    pub fn label(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("{} {}", self.method, self.path))
    }

    /// The first tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.value.get("tags")?.get(0)?.as_str()
    }
}

impl Document {
    /// Parses `text`, read from `file`: JSON when it starts with `{`, else
    /// YAML. Syntax errors carry the line and column.
    pub fn parse(text: &str, file: &Path) -> Result<Document, ConfigError> {
        let at = |line, column, message: String| ConfigError {
            file: file.to_path_buf(),
            position: Some((line, column)),
            message,
        };
        let root: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text)
                .map_err(|e| at(e.line(), e.column(), format!("invalid JSON: {e}")))?
        } else {
            super::yaml::parse(text).map_err(|e| ConfigError {
                file: file.to_path_buf(),
                position: e.position,
                message: format!("invalid YAML: {}", e.message),
            })?
        };
        let text_of = |key: &str| match root.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let (flavor, version) = match (text_of("openapi"), text_of("swagger")) {
            (Some(v), _) if v.starts_with("3.") => (Flavor::OpenApi3, v),
            (None, Some(v)) if v == "2.0" || v == "2" => (Flavor::Swagger2, v),
            (Some(v), _) | (None, Some(v)) => {
                return Err(ConfigError::file(
                    file,
                    format!("unsupported version {v:?}: OpenAPI 3.x or Swagger 2.0 is read"),
                ));
            }
            (None, None) => {
                return Err(ConfigError::file(
                    file,
                    "not an OpenAPI 3.x or Swagger 2.0 document: no \"openapi\" or \"swagger\" field",
                ));
            }
        };
        if !root.get("paths").is_none_or(Value::is_object) {
            return Err(ConfigError::file(file, "\"paths\" is not an object"));
        }
        Ok(Document {
            root,
            flavor,
            version,
        })
    }

    /// `value`, or what its `$ref` (a JSON pointer in this document) leads
    /// to. References to other files are not followed.
    pub fn resolve<'d>(&'d self, mut value: &'d Value) -> Result<&'d Value, String> {
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return Ok(value);
            };
            let Some(pointer) = reference.strip_prefix('#') else {
                return Err(format!(
                    "$ref {reference:?} points outside the document; only \"#/…\" references are followed"
                ));
            };
            let pointer = percent_encoding::percent_decode_str(pointer).decode_utf8_lossy();
            value = self
                .root
                .pointer(&pointer)
                .ok_or_else(|| format!("$ref {reference:?} points at nothing in the document"))?;
        }
        Err(format!(
            "$ref chain longer than {MAX_REF_HOPS} hops (a loop?)"
        ))
    }

    /// The base path every operation path is prefixed with: Swagger's
    /// `basePath`, or the path of the first server's URL (variables take
    /// their defaults). `""` for none. `servers` overrides the document's
    /// servers (a path item's or an operation's own).
    pub fn base_path(&self, servers: Option<&Value>) -> Result<String, String> {
        let path = match self.flavor {
            Flavor::Swagger2 => self
                .root
                .get("basePath")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            Flavor::OpenApi3 => {
                let Some(server) = servers.or(self.root.get("servers")).and_then(|s| s.get(0))
                else {
                    return Ok(String::new());
                };
                let url = server.get("url").and_then(Value::as_str).unwrap_or("/");
                url_path(&expand_variables(url, server.get("variables"))?).to_string()
            }
        };
        let path = path.trim_end_matches('/');
        Ok(match path {
            "" => String::new(),
            p if p.starts_with('/') => p.to_string(),
            p => format!("/{p}"),
        })
    }

    /// Every operation, in document order, with the base path prepended.
    /// Path items that cannot be read are reported in `problems` as
    /// (label, reason) and give no operation.
    pub fn operations(&self, problems: &mut Vec<(String, String)>) -> Vec<Operation<'_>> {
        let mut out = Vec::new();
        let Some(paths) = self.root.get("paths").and_then(Value::as_object) else {
            return out;
        };
        let doc_security = self.root.get("security");
        for (path, item) in paths {
            if !path.starts_with('/') {
                if !path.starts_with("x-") {
                    problems.push((path.clone(), "a path must start with '/'".into()));
                }
                continue;
            }
            let item = match self.resolve(item) {
                Ok(item) => item,
                Err(e) => {
                    problems.push((path.clone(), format!("path item: {e}")));
                    continue;
                }
            };
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let op = match self.resolve(op) {
                    Ok(op) if op.is_object() => op,
                    Ok(_) => {
                        problems.push((
                            format!("{} {path}", method.to_uppercase()),
                            "the operation is not an object".into(),
                        ));
                        continue;
                    }
                    Err(e) => {
                        problems.push((format!("{} {path}", method.to_uppercase()), e));
                        continue;
                    }
                };
                let servers = op.get("servers").or(item.get("servers"));
                let base = match self.base_path(servers) {
                    Ok(b) => b,
                    Err(e) => {
                        problems.push((format!("{} {path}", method.to_uppercase()), e));
                        continue;
                    }
                };
                out.push(Operation {
                    method: method.to_ascii_uppercase(),
                    path: format!("{base}{path}"),
                    id: op
                        .get("operationId")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    value: op,
                    security: op.get("security").or(doc_security),
                });
            }
        }
        out
    }

    /// Names of the OAuth2 (and OpenID Connect) security schemes.
    pub fn oauth_schemes(&self) -> Vec<String> {
        let schemes = match self.flavor {
            Flavor::Swagger2 => self.root.get("securityDefinitions"),
            Flavor::OpenApi3 => self
                .root
                .get("components")
                .and_then(|c| c.get("securitySchemes")),
        };
        let Some(schemes) = schemes.and_then(Value::as_object) else {
            return Vec::new();
        };
        schemes
            .iter()
            .filter(|(_, s)| {
                self.resolve(s)
                    .ok()
                    .and_then(|s| s.get("type"))
                    .and_then(Value::as_str)
                    .is_some_and(|t| t == "oauth2" || t == "openIdConnect")
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// `title version` of the `info` object, for the output's header.
    pub fn title(&self) -> String {
        let info = self.root.get("info");
        let field = |k| info.and_then(|i| i.get(k)).and_then(Value::as_str);
        match (field("title"), field("version")) {
            (Some(t), Some(v)) => format!("{t} {v}"),
            (Some(t), None) => t.to_string(),
            _ => "untitled".to_string(),
        }
    }
}

/// A server URL with `{variable}`s replaced by their defaults.
fn expand_variables(url: &str, variables: Option<&Value>) -> Result<String, String> {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("server URL {url:?} has an unclosed '{{'"));
        };
        let name = &rest[start + 1..start + len];
        let default = variables
            .and_then(|v| v.get(name))
            .and_then(|v| v.get("default"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("server URL {url:?}: variable {{{name}}} has no default"))?;
        out.push_str(default);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The path of a server URL: absolute (`https://host/v1`), scheme-relative
/// (`//host/v1`) or a path (`/v1`).
fn url_path(url: &str) -> &str {
    let after_host = if let Some((_, rest)) = url.split_once("://") {
        rest.find('/').map_or("", |i| &rest[i..])
    } else if let Some(rest) = url.strip_prefix("//") {
        rest.find('/').map_or("", |i| &rest[i..])
    } else {
        url
    };
    after_host.split(['?', '#']).next().unwrap_or("")
}
