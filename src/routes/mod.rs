//! The route table (README, "Configuration"): which permissions each `METHOD /path` needs.
//!
//! A [`RouteTable`] is compiled once per load of the routes file and never
//! changes afterwards; a reload builds a new one. Lookups take a path that
//! [`crate::path::normalize`] has already canonicalized.

pub mod lint;
mod load;
mod matcher;
mod pattern;

use http::Method;
use serde::Deserialize;

pub use load::{RouteSource, load, parse};
pub use matcher::Params;
pub use pattern::{MAX_PARAMS, PathPattern, Segment};

use crate::path::NormalizeOptions;
use crate::permission::{Permission, Requirement};
use matcher::MethodMatcher;

/// The upstream that requests matching no route go to, and routes that
/// name none.
pub const DEFAULT_UPSTREAM: &str = "default";

/// `mode`: whether decisions are enforced or only recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refused requests get 401/403/503.
    #[default]
    Enforce,
    /// Every request is forwarded; refusals are logged as `would_deny`.
    Audit,
}

impl Mode {
    /// The word used in the routes file.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }
}

/// `default`: what happens to a request that matches no route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultPolicy {
    /// 403.
    #[default]
    Deny,
    /// Any caller whose credentials the grant source accepts.
    Authenticate,
    /// Forwarded without any check.
    Allow,
}

impl DefaultPolicy {
    /// The word used in the routes file.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultPolicy::Deny => "deny",
            DefaultPolicy::Authenticate => "authenticate",
            DefaultPolicy::Allow => "allow",
        }
    }
}

/// What a route asks of the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed and no grant lookup.
    Public,
    /// Credentials the grant source accepts, nothing more.
    Authenticated,
    /// Every `all` requirement, and one of `any` when it is not empty.
    Permissions {
        /// `require`: all of these.
        all: Box<[Requirement]>,
        /// `require_any`: at least one of these (ignored when empty).
        any: Box<[Requirement]>,
    },
}

/// One compiled `[[route]]`.
#[derive(Debug)]
pub struct Route {
    /// `name`, or `METHODS /path` when the file gives none.
    pub name: Box<str>,
    /// The methods it applies to; `None` for any method.
    pub methods: Option<Box<[Method]>>,
    /// The path pattern as written in the file.
    pub path: Box<str>,
    /// The parsed pattern.
    pub pattern: PathPattern,
    /// Parameter names in path order; requirement templates index into this.
    pub params: Box<[Box<str>]>,
    /// What the route asks of the caller.
    pub access: Access,
    /// Index of the upstream in the main config's upstream list.
    pub upstream: usize,
    /// Name of that upstream.
    pub upstream_name: Box<str>,
    /// Effective mode: the route's own, or the file's.
    pub mode: Mode,
    /// Line of the route's `path` in the routes file.
    pub line: usize,
}

impl Route {
    /// The route's methods as written (`GET,HEAD`), or `*`.
    pub fn methods_label(&self) -> String {
        methods_label(self.methods.as_deref())
    }
}

/// Methods as written (`GET,HEAD`), or `*` for any method.
fn methods_label(methods: Option<&[Method]>) -> String {
    match methods {
        None => "*".to_string(),
        Some(ms) => ms.iter().map(Method::as_str).collect::<Vec<_>>().join(","),
    }
}

/// What a `[[test]]` case expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expectation {
    /// Forwarded.
    Allow,
    /// 403.
    Deny,
    /// 401.
    Unauthenticated,
    /// 400: the request is rejected before any decision.
    BadRequest,
}

impl Expectation {
    /// The word used in the routes file.
    pub fn as_str(self) -> &'static str {
        match self {
            Expectation::Allow => "allow",
            Expectation::Deny => "deny",
            Expectation::Unauthenticated => "unauthenticated",
            Expectation::BadRequest => "bad_request",
        }
    }
}

/// One `[[test]]` case, run by `permgate check`.
#[derive(Clone, Debug)]
pub struct RouteTest {
    /// Request method.
    pub method: Method,
    /// Request path (may carry a query).
    pub path: String,
    /// The caller's grants; `None` for a caller without credentials.
    pub grants: Option<Vec<Permission>>,
    /// The caller's denies.
    pub denies: Vec<Permission>,
    /// The expected outcome.
    pub expect: Expectation,
    /// Line of the case in the routes file.
    pub line: usize,
}

/// A route that matched, with its path parameter values.
#[derive(Clone, Copy, Debug)]
pub struct RouteMatch<'t, 'p> {
    /// The route.
    pub route: &'t Route,
    /// Its parameter values, borrowed from the normalized path.
    pub params: Params<'p>,
}

/// The compiled routes file.
pub struct RouteTable {
    routes: Box<[Route]>,
    ranks: Box<[Box<[u8]>]>,
    by_method: Vec<(Method, MethodMatcher)>,
    any_method: MethodMatcher,
    /// `default`.
    pub default: DefaultPolicy,
    /// Index of the upstream named [`DEFAULT_UPSTREAM`]: where requests
    /// that match no route go when the default lets them through.
    pub default_upstream: usize,
    /// `mode` of the file.
    pub mode: Mode,
    /// `[normalize]`.
    pub normalize: NormalizeOptions,
    /// `[[test]]` cases.
    pub tests: Box<[RouteTest]>,
    /// Where the table came from.
    pub source: RouteSource,
}

impl RouteTable {
    /// The route for `method` and the normalized `path`, if any.
    ///
    /// A path that only routes of other methods match finds nothing.
    pub fn find<'t, 'p>(&'t self, method: &Method, path: &'p str) -> Option<RouteMatch<'t, 'p>> {
        let matcher = self
            .by_method
            .iter()
            .find(|(m, _)| m == method)
            .map_or(&self.any_method, |(_, t)| t);
        let (index, params) = matcher.find(path, &self.ranks)?;
        Some(RouteMatch {
            route: &self.routes[index],
            params,
        })
    }

    /// All routes in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Largest number of matchit layers any method needs (1 for most tables).
    pub fn max_layers(&self) -> usize {
        self.by_method
            .iter()
            .map(|(_, t)| t.layer_count())
            .chain([self.any_method.layer_count()])
            .max()
            .unwrap_or(0)
    }
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable")
            .field("routes", &self.routes.len())
            .field("default", &self.default)
            .field("mode", &self.mode)
            .field("source", &self.source)
            .finish()
    }
}

#[cfg(test)]
mod tests;
