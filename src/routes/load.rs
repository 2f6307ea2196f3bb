//! Reading the routes file into a [`RouteTable`]: raw TOML structs, then
//! validation with errors that point at the offending line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use http::Method;
use serde::Deserialize;

use toml::Spanned;

use super::matcher::MethodMatcher;
use super::pattern::PathPattern;
use super::{Access, DefaultPolicy, Expectation, Mode, Route, RouteTable, RouteTest};
use crate::config::ConfigError;
use crate::path::{NormalizeOptions, TrailingSlash};
use crate::permission::{Permission, Requirement};

/// Where a [`RouteTable`] was loaded from.
#[derive(Clone, Debug)]
pub struct RouteSource {
    /// The routes file.
    pub file: PathBuf,
    /// Hex SHA-256 of its contents.
    pub sha256: String,
    /// When it was loaded.
    pub loaded_at: SystemTime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    default: DefaultPolicy,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    normalize: RawNormalize,
    #[serde(default, rename = "route")]
    routes: Vec<RawRoute>,
    #[serde(default, rename = "test")]
    tests: Vec<RawTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNormalize {
    #[serde(default = "yes")]
    merge_slashes: bool,
    #[serde(default)]
    case_insensitive: bool,
    #[serde(default)]
    trailing_slash: RawTrailingSlash,
    #[serde(default)]
    allow_semicolon: bool,
}

impl Default for RawNormalize {
    fn default() -> Self {
        Self {
            merge_slashes: true,
            case_insensitive: false,
            trailing_slash: RawTrailingSlash::Strict,
            allow_semicolon: false,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawTrailingSlash {
    #[default]
    Strict,
    Ignore,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Option<String>,
    methods: Option<Spanned<Vec<Spanned<String>>>>,
    path: Spanned<String>,
    require: Option<Vec<Spanned<String>>>,
    require_any: Option<Vec<Spanned<String>>>,
    public: Option<Spanned<bool>>,
    upstream: Option<Spanned<String>>,
    mode: Option<Mode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    method: Spanned<String>,
    path: Spanned<String>,
    grants: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    expect: Expectation,
}

/// Reads and compiles the routes file. `upstreams` lists the upstream names
/// of the main config; a route's `upstream` must be one of them.
pub fn load(file: &Path, upstreams: &[String]) -> Result<RouteTable, ConfigError> {
    let text = crate::config::read_file(file)?;
    parse(&text, file, upstreams)
}

/// Compiles routes-file `text` read from `file`.
pub fn parse(text: &str, file: &Path, upstreams: &[String]) -> Result<RouteTable, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
    let Some(default_upstream) = upstreams.iter().position(|u| u == super::DEFAULT_UPSTREAM) else {
        return Err(ConfigError::at(
            file,
            text,
            0..0,
            "the main config defines no [upstreams.default]",
        ));
    };
    let err = |span: std::ops::Range<usize>, msg: String| ConfigError::at(file, text, span, msg);
    let lines = crate::config::LineIndex::new(text);
    let line_of = |span: std::ops::Range<usize>| lines.line(span.start);

    let normalize = NormalizeOptions {
        merge_slashes: raw.normalize.merge_slashes,
        case_insensitive: raw.normalize.case_insensitive,
        trailing_slash: match raw.normalize.trailing_slash {
            RawTrailingSlash::Strict => TrailingSlash::Strict,
            RawTrailingSlash::Ignore => TrailingSlash::Ignore,
        },
        allow_semicolon: raw.normalize.allow_semicolon,
    };

    let mut routes = Vec::with_capacity(raw.routes.len());
    for r in raw.routes {
        routes.push(compile_route(
            r, &normalize, raw.mode, upstreams, &err, &line_of,
        )?);
    }
    let (by_method, any_method) = build_matchers(&routes, &err_for_route(file, text, &routes))?;
    let ranks = routes.iter().map(|r| r.pattern.ranks()).collect();

    let mut tests = Vec::with_capacity(raw.tests.len());
    for t in raw.tests {
        tests.push(compile_test(t, &err, &line_of)?);
    }

    Ok(RouteTable {
        routes: routes.into_boxed_slice(),
        ranks,
        by_method,
        any_method,
        default: raw.default,
        default_upstream,
        mode: raw.mode,
        normalize,
        tests: tests.into_boxed_slice(),
        source: RouteSource {
            file: file.to_path_buf(),
            sha256: crate::common::sha256_hex(text.as_bytes()),
            loaded_at: SystemTime::now(),
        },
    })
}

fn compile_route(
    r: RawRoute,
    normalize: &NormalizeOptions,
    file_mode: Mode,
    upstreams: &[String],
    err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
    line_of: &impl Fn(std::ops::Range<usize>) -> usize,
) -> Result<Route, ConfigError> {
    let path_span = r.path.span();
    let path_text = r.path.into_inner();
    let pattern = PathPattern::parse(&path_text, normalize)
        .map_err(|m| err(path_span.clone(), format!("route path {path_text:?}: {m}")))?;
    let param_names = pattern.param_names();

    let methods = parse_methods(r.methods, err)?;

    let requirements =
        |list: Option<Vec<Spanned<String>>>| -> Result<Box<[Requirement]>, ConfigError> {
            list.unwrap_or_default()
                .into_iter()
                .map(|s| {
                    Requirement::parse(s.get_ref(), &param_names)
                        .map_err(|e| err(s.span(), format!("permission {:?}: {e}", s.get_ref())))
                })
                .collect()
        };
    let all = requirements(r.require)?;
    let any = requirements(r.require_any)?;
    let access = match r.public {
        Some(p) if *p.get_ref() => {
            if !all.is_empty() || !any.is_empty() {
                return Err(err(
                    p.span(),
                    "a public route cannot also have require or require_any".into(),
                ));
            }
            Access::Public
        }
        _ if all.is_empty() && any.is_empty() => Access::Authenticated,
        _ => Access::Permissions { all, any },
    };

    let (upstream, upstream_name) = match r.upstream {
        None => (super::DEFAULT_UPSTREAM.to_string(), None),
        Some(u) => {
            let span = u.span();
            (u.into_inner(), Some(span))
        }
    };
    let Some(upstream_index) = upstreams.iter().position(|u| *u == upstream) else {
        return Err(err(
            upstream_name.unwrap_or_else(|| path_span.clone()),
            format!(
                "unknown upstream {upstream:?}; the main config defines: {}",
                upstreams.join(", ")
            ),
        ));
    };

    let name = r
        .name
        .unwrap_or_else(|| format!("{} {path_text}", super::methods_label(methods.as_deref())));

    Ok(Route {
        name: name.into(),
        params: param_names.iter().map(|n| Box::from(*n)).collect(),
        methods: methods.map(Vec::into_boxed_slice),
        path: path_text.into(),
        pattern,
        access,
        upstream: upstream_index,
        upstream_name: upstream.into(),
        mode: r.mode.unwrap_or(file_mode),
        line: line_of(path_span),
    })
}

/// `None` for any method (`methods` omitted or `["*"]`).
fn parse_methods(
    raw: Option<Spanned<Vec<Spanned<String>>>>,
    err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<Option<Vec<Method>>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let list_span = raw.span();
    let list = raw.into_inner();
    if list.len() == 1 && list[0].get_ref() == "*" {
        return Ok(None);
    }
    if list.is_empty() {
        return Err(err(
            list_span,
            "methods is empty; omit it or write [\"*\"] for any method".into(),
        ));
    }
    let mut methods: Vec<Method> = Vec::with_capacity(list.len());
    for m in list {
        let span = m.span();
        let upper = m.get_ref().to_ascii_uppercase();
        if upper == "*" {
            return Err(err(
                span,
                "\"*\" cannot be combined with other methods".into(),
            ));
        }
        let method = Method::from_bytes(upper.as_bytes())
            .map_err(|_| err(span.clone(), format!("invalid method {:?}", m.get_ref())))?;
        if methods.contains(&method) {
            return Err(err(span, format!("method {upper} is listed twice")));
        }
        methods.push(method);
    }
    Ok(Some(methods))
}

/// Errors about route `i` point at its path.
fn err_for_route<'a>(
    file: &'a Path,
    text: &'a str,
    routes: &'a [Route],
) -> impl Fn(usize, String) -> ConfigError + 'a {
    move |i, msg| {
        let line = routes[i].line;
        let offset: usize = text
            .split_inclusive('\n')
            .take(line - 1)
            .map(str::len)
            .sum();
        ConfigError::at(file, text, offset..offset, msg)
    }
}

type Matchers = (Vec<(Method, MethodMatcher)>, MethodMatcher);

fn build_matchers(
    routes: &[Route],
    err: &impl Fn(usize, String) -> ConfigError,
) -> Result<Matchers, ConfigError> {
    let shapes: Vec<String> = routes.iter().map(|r| r.pattern.shape()).collect();
    // Routes listing each method, in file order; and the any-method routes.
    let mut by_method: Vec<(Method, Vec<usize>)> = Vec::new();
    let mut any: Vec<usize> = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        match &r.methods {
            None => any.push(i),
            Some(ms) => {
                for m in ms.iter() {
                    match by_method.iter_mut().find(|(x, _)| x == m) {
                        Some((_, list)) => list.push(i),
                        None => by_method.push((m.clone(), vec![i])),
                    }
                }
            }
        }
    }
    let conflict = |i: usize, j: usize, what: &str| {
        let (a, b) = (&routes[i], &routes[j]);
        err(
            j,
            format!(
                "route {:?} conflicts with route {:?} at line {}: {what} {} and {} match the same paths",
                b.name, a.name, a.line, a.path, b.path
            ),
        )
    };
    let insert = |m: &mut MethodMatcher, i: usize| {
        m.insert(&routes[i].pattern, i)
            .map_err(|e| err(i, format!("route {:?}: {e}", routes[i].name)))
    };

    let mut any_method = MethodMatcher::default();
    let mut any_shapes: HashMap<&str, usize> = HashMap::with_capacity(any.len());
    for &i in &any {
        if let Some(&j) = any_shapes.get(shapes[i].as_str()) {
            return Err(conflict(j, i, "any-method routes"));
        }
        any_shapes.insert(&shapes[i], i);
        insert(&mut any_method, i)?;
    }

    let mut matchers = Vec::with_capacity(by_method.len());
    for (method, list) in by_method {
        let mut matcher = MethodMatcher::default();
        let mut own: HashMap<&str, usize> = HashMap::with_capacity(list.len());
        for &i in &list {
            if let Some(&j) = own.get(shapes[i].as_str()) {
                return Err(conflict(j, i, method.as_str()));
            }
            own.insert(&shapes[i], i);
            insert(&mut matcher, i)?;
        }
        // Any-method routes fill in shapes this method does not define itself.
        for &i in &any {
            if !own.contains_key(shapes[i].as_str()) {
                insert(&mut matcher, i)?;
            }
        }
        matchers.push((method, matcher));
    }
    Ok((matchers, any_method))
}

fn compile_test(
    t: RawTest,
    err: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
    line_of: &impl Fn(std::ops::Range<usize>) -> usize,
) -> Result<RouteTest, ConfigError> {
    let method = Method::from_bytes(t.method.get_ref().as_bytes()).map_err(|_| {
        err(
            t.method.span(),
            format!("invalid method {:?}", t.method.get_ref()),
        )
    })?;
    let perms = |list: Vec<Spanned<String>>| -> Result<Vec<Permission>, ConfigError> {
        list.into_iter()
            .map(|s| {
                Permission::parse(s.get_ref())
                    .map_err(|e| err(s.span(), format!("permission {:?}: {e}", s.get_ref())))
            })
            .collect()
    };
    let line = line_of(t.method.span());
    Ok(RouteTest {
        method,
        path: t.path.into_inner(),
        grants: t.grants.map(perms).transpose()?,
        denies: perms(t.deny)?,
        expect: t.expect,
        line,
    })
}
