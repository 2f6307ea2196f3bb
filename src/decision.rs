//! The decision core: method and path checks, route lookup, and the
//! authorization decision. Plain Rust with no I/O. The proxy, `permgate
//! check`, `permgate explain`, `/admin/explain` and the benches all go
//! through these functions, so what `explain` says is what the proxy does.
//!
//! A request is decided in three steps, with grant resolution (async, in
//! [`crate::grants`]) between the second and the third:
//!
//! 1. [`prepare`] rejects ambiguous requests (400) and normalizes the path,
//!    and [`routing_path`] gives the path routes are matched on;
//! 2. [`Target::of`] finds the route, and [`Target::need`] says whether
//!    grants must be resolved at all;
//! 3. [`authorize`] decides, and [`Decision::permit`] turns the decision and
//!    the route's mode into a [`Permit`] — the only thing the proxy forwards
//!    with — or a refusal.

use std::borrow::Cow;

use http::{HeaderMap, Method};

use crate::path::{PathRejection, normalize};
use crate::permission::{Check, PermissionSet, check};
use crate::routes::{Access, DefaultPolicy, Mode, Route, RouteMatch, RouteTable};

/// Headers that make some frameworks run a different method than the one
/// that was authorized.
pub const METHOD_OVERRIDE_HEADERS: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// A caller's resolved grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Who the caller is, as the grant source names it.
    pub subject: Box<str>,
    /// What the caller is granted.
    pub allow: PermissionSet,
    /// What is explicitly denied to the caller.
    pub deny: PermissionSet,
}

impl Grants {
    /// Grants from permission strings, as `explain` and `[[test]]` give them.
    pub fn from_lists(subject: &str, allow: &[String], deny: &[String]) -> Result<Grants, String> {
        let parse = |list: &[String]| -> Result<PermissionSet, String> {
            list.iter()
                .map(|p| {
                    crate::permission::Permission::parse(p)
                        .map_err(|e| format!("permission {p:?}: {e}"))
                })
                .collect()
        };
        Ok(Grants {
            subject: subject.into(),
            allow: parse(allow)?,
            deny: parse(deny)?,
        })
    }
}

/// Why a request is answered with 400 before any grant lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// The path is ambiguous or malformed.
    Path(PathRejection),
    /// A method-override header is present.
    MethodOverride(&'static str),
    /// The method has lower-case letters (some backends would fold it).
    MethodCase,
}

impl BadRequest {
    /// A short reason for the answer and the log.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Path(p) => p.reason(),
            Self::MethodOverride(_) => "method-override headers are not accepted",
            Self::MethodCase => "method names must be upper case",
        }
    }
}

/// Step 1: rejects ambiguous requests and returns the normalized path.
pub fn prepare<'p>(
    table: &RouteTable,
    method: &Method,
    path: &'p str,
    headers: &HeaderMap,
) -> Result<Cow<'p, str>, BadRequest> {
    // One pass over the header names. CGI-style backends (Rack on Puma,
    // uWSGI, …) map `-` and `_` to the same variable, so
    // `X_HTTP_METHOD_OVERRIDE` counts too.
    for name in headers.keys() {
        let n = name.as_str().as_bytes();
        if !matches!(n.len(), 13 | 17 | 22) || n[0] != b'x' {
            continue;
        }
        let same = |h: &str| {
            h.len() == n.len()
                && h.bytes()
                    .zip(n)
                    .all(|(a, &b)| a == b || (a == b'-' && b == b'_'))
        };
        if let Some(h) = METHOD_OVERRIDE_HEADERS.into_iter().find(|h| same(h)) {
            return Err(BadRequest::MethodOverride(h));
        }
    }
    if method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(BadRequest::MethodCase);
    }
    normalize(path, &table.normalize).map_err(BadRequest::Path)
}

/// Step 1b: the path routes are matched on: the normalized path, or with
/// `allow_semicolon` the normalized path without its `;` parameters (see
/// [`crate::path::routing_path`]). The normalized path is what is forwarded.
pub fn routing_path<'a>(table: &RouteTable, normalized: &'a str) -> Cow<'a, str> {
    crate::path::routing_path(normalized, &table.normalize)
}

/// Where a request goes: a route, or the table's default.
// The route variant carries its parameter values inline: a `Target` lives on
// the stack for one request, and boxing it would allocate per request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Target<'t, 'p> {
    /// A route matched.
    Route(RouteMatch<'t, 'p>),
    /// No route matched; the default policy applies.
    Default(DefaultPolicy),
}

/// What must be known about the caller before deciding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing: public route, `default = "allow"`, or `default = "deny"`.
    Nothing,
    /// That the grant source accepts the caller's credentials.
    Authentication,
    /// The caller's grants.
    Permissions,
}

impl<'t, 'p> Target<'t, 'p> {
    /// Step 2: the route for `method` and the normalized `path`.
    pub fn of(table: &'t RouteTable, method: &Method, path: &'p str) -> Self {
        match table.find(method, path) {
            Some(m) => Target::Route(m),
            None => Target::Default(table.default),
        }
    }

    /// Whether grants must be resolved.
    pub fn need(&self) -> Need {
        match self {
            Target::Route(m) => match m.route.access {
                Access::Public => Need::Nothing,
                Access::Authenticated => Need::Authentication,
                Access::Permissions { .. } => Need::Permissions,
            },
            Target::Default(DefaultPolicy::Authenticate) => Need::Authentication,
            Target::Default(DefaultPolicy::Allow | DefaultPolicy::Deny) => Need::Nothing,
        }
    }

    /// The effective mode: the route's, or the table's for the default.
    pub fn mode(&self, table: &RouteTable) -> Mode {
        match self {
            Target::Route(m) => m.route.mode,
            Target::Default(_) => table.mode,
        }
    }

    /// The route name, or `None` for the default.
    pub fn route_name(&self) -> Option<&'t str> {
        match self {
            Target::Route(m) => Some(&m.route.name),
            Target::Default(_) => None,
        }
    }

    /// The upstream index the request goes to.
    pub fn upstream(&self) -> usize {
        match self {
            Target::Route(m) => m.route.upstream,
            Target::Default(_) => 0,
        }
    }
}

/// What is known about the caller when deciding.
#[derive(Clone, Copy, Debug)]
pub enum Caller<'g> {
    /// Not looked up (the target needs nothing), or no credentials sent.
    Anonymous,
    /// The grant source rejected the credentials.
    Rejected,
    /// The grant source could not be asked or gave no usable answer.
    Unavailable,
    /// The caller's grants.
    Known(&'g Grants),
}

/// Why a request is forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// Public route, or no route and `default = "allow"`.
    Open,
    /// The route needs only an authenticated caller.
    Authenticated,
    /// The caller's grants satisfy the route.
    Granted,
}

/// Why a request is refused with 403.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forbidden {
    /// No route matched and `default = "deny"`.
    NoRoute,
    /// Requirements the caller does not satisfy, with parameters substituted.
    Missing(Vec<String>),
}

/// The outcome of [`authorize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Forward.
    Allow(Allowed),
    /// 403.
    Forbidden(Forbidden),
    /// 401.
    Unauthenticated,
    /// 503: grants could not be resolved (fail closed).
    Unavailable,
}

/// Step 3: decides for `target` and what is known about the caller.
pub fn authorize(target: &Target<'_, '_>, caller: Caller<'_>) -> Decision {
    let need = target.need();
    if need == Need::Nothing {
        return match target {
            Target::Default(DefaultPolicy::Deny) => Decision::Forbidden(Forbidden::NoRoute),
            _ => Decision::Allow(Allowed::Open),
        };
    }
    let grants = match caller {
        Caller::Known(g) => g,
        Caller::Anonymous | Caller::Rejected => return Decision::Unauthenticated,
        Caller::Unavailable => return Decision::Unavailable,
    };
    let Target::Route(m) = target else {
        return Decision::Allow(Allowed::Authenticated);
    };
    let Access::Permissions { all, any } = &m.route.access else {
        return Decision::Allow(Allowed::Authenticated);
    };
    let params = m.params.as_slice();
    let satisfied = |r| check(r, params, &grants.allow, &grants.deny).is_satisfied();
    let all_ok = all.iter().all(satisfied);
    let any_ok = any.is_empty() || any.iter().any(satisfied);
    if all_ok && any_ok {
        return Decision::Allow(Allowed::Granted);
    }
    let mut missing: Vec<String> = all
        .iter()
        .filter(|r| !satisfied(r))
        .map(|r| r.render(params))
        .collect();
    if !any_ok {
        missing.extend(any.iter().map(|r| r.render(params)));
    }
    Decision::Forbidden(Forbidden::Missing(missing))
}

/// A decision not to forward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// 403.
    Forbidden(Forbidden),
    /// 401.
    Unauthenticated,
    /// 503.
    Unavailable,
}

impl Refused {
    /// A short word for logs: `deny`, `unauthenticated`, `unavailable`.
    pub fn label(&self) -> &'static str {
        match self {
            Refused::Forbidden(_) => "deny",
            Refused::Unauthenticated => "unauthenticated",
            Refused::Unavailable => "unavailable",
        }
    }
}

/// Proof that a request may be forwarded. Only [`Decision::permit`] makes one.
#[derive(Debug)]
pub struct Permit {
    audited: Option<Refused>,
}

impl Permit {
    /// In audit mode, the refusal that enforce mode would have answered.
    pub fn would_deny(&self) -> Option<&Refused> {
        self.audited.as_ref()
    }
}

impl Decision {
    /// A permit to forward, or the refusal to answer. In audit mode every
    /// decision yields a permit that remembers what enforce would have done.
    pub fn permit(self, mode: Mode) -> Result<Permit, Refused> {
        let refused = match self {
            Decision::Allow(_) => return Ok(Permit { audited: None }),
            Decision::Forbidden(f) => Refused::Forbidden(f),
            Decision::Unauthenticated => Refused::Unauthenticated,
            Decision::Unavailable => Refused::Unavailable,
        };
        match mode {
            Mode::Audit => Ok(Permit {
                audited: Some(refused),
            }),
            Mode::Enforce => Err(refused),
        }
    }

    /// A short word for logs: `allow`, `deny`, `unauthenticated`, `unavailable`.
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Allow(_) => "allow",
            Decision::Forbidden(_) => "deny",
            Decision::Unauthenticated => "unauthenticated",
            Decision::Unavailable => "unavailable",
        }
    }
}

/// How each requirement of a route fared, for `explain`.
#[derive(Clone, Debug)]
pub struct RequirementReport {
    /// The requirement with parameters substituted.
    pub concrete: String,
    /// Whether it is in `require_any` (else `require`).
    pub any_of: bool,
    /// The outcome, naming the grant or deny that decided it.
    pub check: String,
}

/// Explains each requirement of `target` for `grants`. The decision itself
/// always comes from [`authorize`]; this only adds the detail.
pub fn report(target: &Target<'_, '_>, grants: &Grants) -> Vec<RequirementReport> {
    let Target::Route(m) = target else {
        return Vec::new();
    };
    let Access::Permissions { all, any } = &m.route.access else {
        return Vec::new();
    };
    let params = m.params.as_slice();
    let describe = |c: Check<'_>| match c {
        Check::Satisfied(p) => format!("satisfied by grant {p}"),
        Check::Denied(p) => format!("denied by {p}"),
        Check::NotGranted => "not granted".to_string(),
        Check::Unformable => "path value cannot form a permission".to_string(),
    };
    all.iter()
        .map(|r| (r, false))
        .chain(any.iter().map(|r| (r, true)))
        .map(|(r, any_of)| RequirementReport {
            concrete: r.render(params),
            any_of,
            check: describe(check(r, params, &grants.allow, &grants.deny)),
        })
        .collect()
}

/// Everything `explain` reports about one request.
#[derive(Debug)]
pub struct Explanation<'t> {
    /// The normalized path (what is forwarded), or why the request is
    /// rejected with 400.
    pub path: Result<String, BadRequest>,
    /// The path routes were matched on, when it differs (`;` parameters).
    pub routing_path: Option<String>,
    /// The matched route; `None` when the default applies (or on 400).
    pub route: Option<&'t Route>,
    /// Path parameters by name.
    pub params: Vec<(String, String)>,
    /// The effective mode.
    pub mode: Mode,
    /// The default policy of the table.
    pub default: DefaultPolicy,
    /// The decision; `None` on 400.
    pub decision: Option<Decision>,
    /// Each requirement with what decided it (known grants only).
    pub requirements: Vec<RequirementReport>,
}

/// Decides a request the way the proxy does, for a caller with `grants`
/// (`None`: no credentials), and reports how. `target` is a path with an
/// optional query.
pub fn explain<'t>(
    table: &'t RouteTable,
    method: &Method,
    target: &str,
    grants: Option<&Grants>,
) -> Explanation<'t> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let prepared = prepare(table, method, path, &HeaderMap::new());
    let normalized = match prepared {
        Ok(p) => p.into_owned(),
        Err(bad) => {
            return Explanation {
                path: Err(bad),
                routing_path: None,
                route: None,
                params: Vec::new(),
                mode: table.mode,
                default: table.default,
                decision: None,
                requirements: Vec::new(),
            };
        }
    };
    let routing = routing_path(table, &normalized);
    let target = Target::of(table, method, &routing);
    let caller = grants.map_or(Caller::Anonymous, Caller::Known);
    let decision = authorize(&target, caller);
    let (route, params) = match &target {
        Target::Route(m) => (
            Some(m.route),
            m.route
                .params
                .iter()
                .zip(m.params.as_slice())
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        ),
        Target::Default(_) => (None, Vec::new()),
    };
    let requirements = grants.map(|g| report(&target, g)).unwrap_or_default();
    let mode = target.mode(table);
    Explanation {
        routing_path: (routing != normalized).then(|| routing.to_string()),
        path: Ok(normalized.clone()),
        route,
        params,
        mode,
        default: table.default,
        decision: Some(decision),
        requirements,
    }
}

#[cfg(test)]
mod tests;
