//! `explain`: one request decided by the same steps the proxy takes, with
//! the detail of how. `permgate explain`, `permgate check` and
//! `/admin/explain` all use it.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version, header};

use super::Grants;
use super::head::{BadRequest, RequestHead, prepare};
use super::routed::{Caller, Forbidden, Refused, Routed, Verdict};
use crate::permission::{Check, check};
use crate::routes::{Access, DefaultPolicy, Mode, Route, RouteTable};

/// How each requirement of a route fared.
#[derive(Clone, Debug)]
pub struct RequirementReport {
    /// The requirement with parameters substituted.
    pub concrete: String,
    /// Whether it is in `require_any` (else `require`).
    pub any_of: bool,
    /// The outcome, naming the grant or deny that decided it.
    pub check: String,
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
    /// What the rules say; `None` on 400.
    pub verdict: Option<Verdict>,
    /// The upstream the request is forwarded to (allowed, or audit mode);
    /// `None` when the gateway answers itself.
    pub forwarded_to: Option<&'t str>,
    /// Each requirement with what decided it (known grants only).
    pub requirements: Vec<RequirementReport>,
}

/// One request to explain: method, target (path and optional query) and
/// header fields, sent over HTTP/1.1. Without a `Host` field, `localhost`
/// is assumed, as a client would send.
#[derive(Clone, Debug)]
pub struct ExplainRequest {
    /// The method.
    pub method: Method,
    /// The request target.
    pub target: String,
    /// Header fields.
    pub headers: HeaderMap,
}

impl ExplainRequest {
    /// A request from a method, a target and `name: value` pairs (`None`
    /// for a header given without a colon), as the command line and
    /// `/admin/explain` take them.
    pub fn parse<'a>(
        method: &str,
        target: &str,
        headers: impl IntoIterator<Item = Option<(&'a str, &'a str)>>,
    ) -> Result<ExplainRequest, String> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("invalid method {method:?}"))?;
        let mut map = HeaderMap::new();
        for pair in headers {
            let (name, value) = pair.ok_or("a header is given as \"Name: value\"")?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("invalid value for header {name}"))?;
            map.append(name, value);
        }
        Ok(ExplainRequest {
            method,
            target: target.to_string(),
            headers: map,
        })
    }
}

/// Decides `request` the way the proxy does, for a caller with `grants`
/// (`None`: no credentials), and reports how.
pub fn explain<'t>(
    table: &'t RouteTable,
    request: &ExplainRequest,
    grants: Option<&Grants>,
) -> Explanation<'t> {
    let mut headers = request.headers.clone();
    if !headers.contains_key(header::HOST) {
        headers.insert(header::HOST, HeaderValue::from_static("localhost"));
    }
    // A fragment never reaches the gateway: clients drop it.
    let target = request.target.split('#').next().unwrap_or("");
    let uri: Result<Uri, _> = target.parse();
    let prepared = match &uri {
        Ok(uri) => prepare(
            table,
            &RequestHead {
                method: &request.method,
                uri,
                version: Version::HTTP_11,
                headers: &headers,
            },
        ),
        Err(_) => Err(BadRequest::Target),
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(bad) => {
            return Explanation {
                path: Err(bad),
                routing_path: None,
                route: None,
                params: Vec::new(),
                mode: table.mode,
                default: table.default,
                verdict: None,
                forwarded_to: None,
                requirements: Vec::new(),
            };
        }
    };
    let routed = prepared.route(table, &request.method);
    let decision = routed.decide(grants.map_or(Caller::Anonymous, Caller::Known));
    Explanation {
        path: Ok(prepared.path().to_string()),
        routing_path: (prepared.routing_path() != prepared.path())
            .then(|| prepared.routing_path().to_string()),
        route: routed.route(),
        params: routed
            .params()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        mode: decision.mode(),
        default: table.default,
        forwarded_to: decision.forwards().then(|| decision.upstream_name()),
        verdict: Some(decision.verdict().clone()),
        requirements: grants.map(|g| report(&routed, g)).unwrap_or_default(),
    }
}

/// Explains each requirement of the route for `grants`. The verdict itself
/// always comes from [`Routed::decide`]; this only adds the detail.
fn report(routed: &Routed<'_, '_>, grants: &Grants) -> Vec<RequirementReport> {
    let Some(m) = routed.found() else {
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

impl Explanation<'_> {
    /// One word for the rules' answer: `allow`, `deny`, `unauthenticated`,
    /// `unavailable`, or `bad_request`.
    pub fn word(&self) -> &'static str {
        match &self.verdict {
            None => "bad_request",
            Some(Verdict::Allow(_)) => "allow",
            Some(Verdict::Refuse(r)) => r.label(),
        }
    }

    /// The status the gateway answers itself; `None` when it forwards
    /// (allowed, or refused in audit mode).
    pub fn status(&self) -> Option<u16> {
        match &self.verdict {
            _ if self.forwarded_to.is_some() => None,
            None => Some(400),
            Some(Verdict::Refuse(r)) => Some(r.status()),
            // An allowed request is always forwarded.
            Some(Verdict::Allow(_)) => None,
        }
    }

    /// The requirements a 403 lists.
    pub fn missing(&self) -> Option<&[String]> {
        match &self.verdict {
            Some(Verdict::Refuse(Refused::Forbidden(Forbidden::Missing(m)))) => Some(m),
            _ => None,
        }
    }
}
