//! Steps 2 and 3: the route a prepared request takes, and the decision for
//! what is known about its caller.

use http::Method;

use super::Grants;
use super::head::Prepared;
use super::permit::Decision;
use crate::permission::check;
use crate::routes::{Access, DefaultPolicy, Mode, Route, RouteMatch, RouteTable};

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

/// What is known about the caller when deciding.
#[derive(Clone, Copy, Debug)]
pub enum Caller<'g> {
    /// Not looked up (the route needs nothing), or no credentials sent.
    Anonymous,
    /// The grant source rejected the credentials.
    Rejected,
    /// The grant source could not be asked or gave no usable answer.
    Unavailable,
    /// The caller's grants.
    Known(&'g Grants),
}

/// Why the rules let a request through.
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

/// Why the rules refuse a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// 403.
    Forbidden(Forbidden),
    /// 401.
    Unauthenticated,
    /// 503: grants could not be resolved (fail closed).
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

    /// The status the gateway answers with.
    pub fn status(&self) -> u16 {
        match self {
            Refused::Forbidden(_) => 403,
            Refused::Unauthenticated => 401,
            Refused::Unavailable => 503,
        }
    }
}

/// What the rules say about a request, before its mode is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let through.
    Allow(Allowed),
    /// Refused.
    Refuse(Refused),
}

/// A prepared request with its route (or the table's default) found.
#[derive(Clone, Copy, Debug)]
pub struct Routed<'t, 'a> {
    table: &'t RouteTable,
    found: Option<RouteMatch<'t, 'a>>,
    path: &'a str,
}

impl<'p> Prepared<'p> {
    /// Step 2: the route for `method` and this request's path.
    pub fn route<'t, 'a>(&'a self, table: &'t RouteTable, method: &Method) -> Routed<'t, 'a> {
        Routed {
            table,
            found: table.find(method, self.routing_path()),
            path: self.path(),
        }
    }
}

impl<'t, 'a> Routed<'t, 'a> {
    /// The matched route; `None` when the table's default applies.
    pub fn route(&self) -> Option<&'t Route> {
        self.found.map(|m| m.route)
    }

    /// The route's name, or `None` for the default.
    pub fn route_name(&self) -> Option<&'t str> {
        self.route().map(|r| &*r.name)
    }

    /// The path parameters as (name, value) pairs.
    pub fn params(&self) -> impl Iterator<Item = (&'t str, &'a str)> + '_ {
        self.found.iter().flat_map(|m| {
            m.route
                .params
                .iter()
                .map(|n| &**n)
                .zip(m.params.as_slice().iter().copied())
        })
    }

    /// The normalized path: what is forwarded.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The table the request was routed in.
    pub fn table(&self) -> &'t RouteTable {
        self.table
    }

    /// The effective mode: the route's, or the table's for the default.
    pub fn mode(&self) -> Mode {
        self.route().map_or(self.table.mode, |r| r.mode)
    }

    /// The upstream the request goes to: the route's, or the one named
    /// `default` when no route matched.
    pub fn upstream(&self) -> (usize, &'t str) {
        match self.route() {
            Some(r) => (r.upstream, &r.upstream_name),
            None => (self.table.default_upstream, crate::routes::DEFAULT_UPSTREAM),
        }
    }

    /// Whether grants must be resolved.
    pub fn need(&self) -> Need {
        match self.route().map(|r| &r.access) {
            Some(Access::Public) => Need::Nothing,
            Some(Access::Authenticated) => Need::Authentication,
            Some(Access::Permissions { .. }) => Need::Permissions,
            None => match self.table.default {
                DefaultPolicy::Authenticate => Need::Authentication,
                DefaultPolicy::Allow | DefaultPolicy::Deny => Need::Nothing,
            },
        }
    }

    /// Step 3: the decision for what is known about the caller, with the
    /// mode applied.
    pub fn decide<'c>(&self, caller: Caller<'c>) -> Decision<'t, 'c>
    where
        'a: 'c,
    {
        let subject = match caller {
            Caller::Known(g) => Some(&g.subject),
            _ => None,
        };
        Decision::new(self, self.verdict(caller), subject)
    }

    /// What the rules say, before the mode is applied.
    fn verdict(&self, caller: Caller<'_>) -> Verdict {
        let refuse = |r| Verdict::Refuse(r);
        if self.need() == Need::Nothing {
            return match (self.found, self.table.default) {
                (None, DefaultPolicy::Deny) => refuse(Refused::Forbidden(Forbidden::NoRoute)),
                _ => Verdict::Allow(Allowed::Open),
            };
        }
        let grants = match caller {
            Caller::Known(g) => g,
            Caller::Anonymous | Caller::Rejected => return refuse(Refused::Unauthenticated),
            Caller::Unavailable => return refuse(Refused::Unavailable),
        };
        let Some(m) = self.found else {
            return Verdict::Allow(Allowed::Authenticated);
        };
        let Access::Permissions { all, any } = &m.route.access else {
            return Verdict::Allow(Allowed::Authenticated);
        };
        let params = m.params.as_slice();
        let satisfied = |r| check(r, params, &grants.allow, &grants.deny).is_satisfied();
        let all_ok = all.iter().all(satisfied);
        let any_ok = any.is_empty() || any.iter().any(satisfied);
        if all_ok && any_ok {
            return Verdict::Allow(Allowed::Granted);
        }
        let mut missing: Vec<String> = all
            .iter()
            .filter(|r| !satisfied(r))
            .map(|r| r.render(params))
            .collect();
        if !any_ok {
            missing.extend(any.iter().map(|r| r.render(params)));
        }
        refuse(Refused::Forbidden(Forbidden::Missing(missing)))
    }

    /// The matched route and its parameter values, for `explain`.
    pub(super) fn found(&self) -> Option<RouteMatch<'t, 'a>> {
        self.found
    }
}
