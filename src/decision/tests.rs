use super::*;
use crate::path::PathRejection;
use crate::permission::Permission;
use crate::routes::RouteTable;
use crate::routes::parse;
use http::{HeaderMap, Method, Uri};
use std::path::Path;

fn table(text: &str) -> RouteTable {
    parse(text, Path::new("routes.toml"), &["default".into()]).unwrap()
}

fn grants(allow: &[&str], deny: &[&str]) -> Grants {
    Grants {
        subject: "alice".into(),
        allow: allow
            .iter()
            .map(|p| Permission::parse(p).unwrap())
            .collect(),
        deny: deny.iter().map(|p| Permission::parse(p).unwrap()).collect(),
    }
}

/// A request head for `method` and `target` over HTTP/1.1 with a Host.
struct Req {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Req {
    fn new(method: &str, target: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "api.example".parse().unwrap());
        Req {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            uri: target.parse().unwrap(),
            headers,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        self
    }

    fn head(&self) -> RequestHead<'_, '_> {
        RequestHead {
            method: &self.method,
            uri: &self.uri,
            version: http::Version::HTTP_11,
            headers: &self.headers,
        }
    }

    fn prepare(&self, t: &RouteTable) -> Result<String, BadRequest> {
        prepare(t, &self.head()).map(|p| p.path().to_string())
    }
}

fn decide(t: &RouteTable, method: &str, path: &str, caller: Caller<'_>) -> Verdict {
    let req = Req::new(method, path);
    let prepared = prepare(t, &req.head()).unwrap();
    prepared
        .route(t, &req.method)
        .decide(caller)
        .verdict()
        .clone()
}

fn need(t: &RouteTable, method: &str, path: &str) -> Need {
    let req = Req::new(method, path);
    let prepared = prepare(t, &req.head()).unwrap();
    prepared.route(t, &req.method).need()
}

const ALLOW_OPEN: Verdict = Verdict::Allow(Allowed::Open);
const ALLOW_AUTHENTICATED: Verdict = Verdict::Allow(Allowed::Authenticated);
const ALLOW_GRANTED: Verdict = Verdict::Allow(Allowed::Granted);
const UNAUTHENTICATED: Verdict = Verdict::Refuse(Refused::Unauthenticated);
const UNAVAILABLE: Verdict = Verdict::Refuse(Refused::Unavailable);

fn forbidden(why: Forbidden) -> Verdict {
    Verdict::Refuse(Refused::Forbidden(why))
}

const TABLE: &str = r#"
[[route]]
name = "pub"
path = "/health"
public = true
[[route]]
name = "me"
methods = ["GET"]
path = "/me"
[[route]]
name = "all"
methods = ["GET"]
path = "/x/{id}"
require = ["x:item:view", "x:{id}:read"]
[[route]]
name = "any"
methods = ["POST"]
path = "/x/{id}"
require_any = ["x:item:admin", "x:{id}:admin"]
[[route]]
name = "both"
methods = ["PUT"]
path = "/x/{id}"
require = ["x:item:edit"]
require_any = ["x:{id}:owner", "x:item:admin"]
"#;

#[test]
fn public_routes_need_nothing_and_ignore_the_caller() {
    let t = table(TABLE);
    assert_eq!(decide(&t, "GET", "/health", Caller::Anonymous), ALLOW_OPEN);
    assert_eq!(
        decide(&t, "GET", "/health", Caller::Unavailable),
        ALLOW_OPEN
    );
    assert_eq!(need(&t, "GET", "/health"), Need::Nothing);
}

#[test]
fn authenticated_routes_need_accepted_credentials() {
    let t = table(TABLE);
    let g = grants(&[], &[]);
    assert_eq!(
        decide(&t, "GET", "/me", Caller::Known(&g)),
        ALLOW_AUTHENTICATED
    );
    assert_eq!(decide(&t, "GET", "/me", Caller::Anonymous), UNAUTHENTICATED);
    assert_eq!(decide(&t, "GET", "/me", Caller::Rejected), UNAUTHENTICATED);
    assert_eq!(decide(&t, "GET", "/me", Caller::Unavailable), UNAVAILABLE);
}

#[test]
fn require_needs_every_entry_and_reports_the_missing_ones() {
    let t = table(TABLE);
    let g = grants(&["x:item:view", "x:7:read"], &[]);
    assert_eq!(decide(&t, "GET", "/x/7", Caller::Known(&g)), ALLOW_GRANTED);
    assert_eq!(
        decide(&t, "GET", "/x/8", Caller::Known(&g)),
        forbidden(Forbidden::Missing(vec!["x:8:read".into()]))
    );
    let denied = grants(&["x"], &["x:item:view"]);
    assert_eq!(
        decide(&t, "GET", "/x/8", Caller::Known(&denied)),
        forbidden(Forbidden::Missing(vec!["x:item:view".into()]))
    );
}

#[test]
fn require_any_needs_one_entry_and_one_deny_does_not_block_another() {
    let t = table(TABLE);
    let g = grants(&["x:7:admin"], &[]);
    assert_eq!(decide(&t, "POST", "/x/7", Caller::Known(&g)), ALLOW_GRANTED);
    assert_eq!(
        decide(&t, "POST", "/x/8", Caller::Known(&g)),
        forbidden(Forbidden::Missing(vec![
            "x:item:admin".into(),
            "x:8:admin".into()
        ]))
    );
    let g = grants(&["x:*:admin"], &["x:item:admin"]);
    assert_eq!(decide(&t, "POST", "/x/7", Caller::Known(&g)), ALLOW_GRANTED);
}

#[test]
fn require_and_require_any_together() {
    let t = table(TABLE);
    let g = grants(&["x:item:edit", "x:7:owner"], &[]);
    assert_eq!(decide(&t, "PUT", "/x/7", Caller::Known(&g)), ALLOW_GRANTED);
    assert_eq!(
        decide(&t, "PUT", "/x/8", Caller::Known(&g)),
        forbidden(Forbidden::Missing(vec![
            "x:8:owner".into(),
            "x:item:admin".into()
        ]))
    );
    let g = grants(&["x:7:owner"], &[]);
    assert_eq!(
        decide(&t, "PUT", "/x/7", Caller::Known(&g)),
        forbidden(Forbidden::Missing(vec!["x:item:edit".into()]))
    );
}

#[test]
fn injected_ids_never_widen_a_grant() {
    let t = table(TABLE);
    let g = grants(&["x:item:admin,view", "x:7:*"], &[]);
    // POST needs x:item:admin OR x:{id}:admin; drop the first to test the template alone.
    let g_scoped = grants(&["x:7:admin"], &[]);
    for id in ["*", "7,8", "7:admin", "%2A", "7%2C8", "%37"] {
        let d = decide(&t, "POST", &format!("/x/{id}"), Caller::Known(&g_scoped));
        if id == "%37" {
            assert_eq!(d, ALLOW_GRANTED, "%37 is the unreserved '7'");
        } else {
            assert!(
                matches!(d, Verdict::Refuse(Refused::Forbidden(_))),
                "{id}: {d:?}"
            );
        }
    }
    assert!(matches!(
        decide(&t, "GET", "/x/7", Caller::Known(&g)),
        Verdict::Allow(_)
    ));
}

#[test]
fn defaults_for_unmatched_paths() {
    let g = grants(&["*"], &[]);
    let deny = table("default = \"deny\"");
    assert_eq!(
        decide(&deny, "GET", "/nope", Caller::Known(&g)),
        forbidden(Forbidden::NoRoute)
    );
    assert_eq!(need(&deny, "GET", "/nope"), Need::Nothing);
    let auth = table("default = \"authenticate\"");
    assert_eq!(
        decide(&auth, "GET", "/nope", Caller::Known(&g)),
        ALLOW_AUTHENTICATED
    );
    assert_eq!(
        decide(&auth, "GET", "/nope", Caller::Anonymous),
        UNAUTHENTICATED
    );
    let allow = table("default = \"allow\"");
    assert_eq!(
        decide(&allow, "GET", "/nope", Caller::Anonymous),
        ALLOW_OPEN
    );
}

#[test]
fn audit_mode_permits_and_remembers_the_refusal() {
    let t = table(
        "mode = \"audit\"\n[[route]]\nname = \"e\"\npath = \"/e\"\nmode = \"enforce\"\nrequire = [\"a\"]\n\
         [[route]]\nname = \"o\"\npath = \"/o\"\nrequire = [\"a\"]\n",
    );
    let g = grants(&["b"], &[]);
    let permit_for = |path: &str, caller: Caller<'_>| {
        let req = Req::new("GET", path);
        let prepared = prepare(&t, &req.head()).unwrap();
        let routed = prepared.route(&t, &req.method);
        routed
            .decide(caller)
            .into_permit()
            .map(|p| p.would_deny().cloned())
    };
    let missing = Refused::Forbidden(Forbidden::Missing(vec!["a".into()]));
    assert_eq!(
        permit_for("/e", Caller::Known(&g)),
        Err(missing.clone()),
        "a route can enforce"
    );
    assert_eq!(permit_for("/o", Caller::Known(&g)), Ok(Some(missing)));
    assert_eq!(
        permit_for("/o", Caller::Anonymous),
        Ok(Some(Refused::Unauthenticated))
    );
    assert_eq!(
        permit_for("/nowhere", Caller::Known(&g)),
        Ok(Some(Refused::Forbidden(Forbidden::NoRoute))),
        "the table's mode applies to the default"
    );
    let ok = grants(&["a"], &[]);
    assert_eq!(permit_for("/o", Caller::Known(&ok)), Ok(None));
}

#[test]
fn a_permit_carries_the_path_the_subject_and_the_upstream() {
    let t = parse(
        "default = \"allow\"\n[[route]]\npath = \"/api/{id}\"\nupstream = \"api\"\nrequire = [\"a\"]\n",
        Path::new("routes.toml"),
        // Upstreams are sorted by name: "api" is index 0, "default" 1.
        &["api".into(), "default".into()],
    )
    .unwrap();
    let g = grants(&["a"], &[]);
    let req = Req::new("GET", "/api//7?q=1");
    let prepared = prepare(&t, &req.head()).unwrap();
    let permit = prepared
        .route(&t, &req.method)
        .decide(Caller::Known(&g))
        .into_permit()
        .unwrap();
    assert_eq!(permit.path(), "/api/7");
    assert_eq!(permit.subject(), Some("alice"));
    assert_eq!(permit.upstream(), 0);
    assert_eq!(permit.route().map(|r| &*r.upstream_name), Some("api"));

    // A request no route matches goes to the upstream named "default",
    // wherever it sorts.
    let req = Req::new("GET", "/elsewhere");
    let prepared = prepare(&t, &req.head()).unwrap();
    let permit = prepared
        .route(&t, &req.method)
        .decide(Caller::Anonymous)
        .into_permit()
        .unwrap();
    assert_eq!(permit.upstream(), 1);
    assert!(permit.route().is_none());
    assert_eq!(permit.subject(), None);
}

#[test]
fn prepare_rejects_overrides_lowercase_methods_and_bad_paths() {
    let t = table(TABLE);
    assert_eq!(
        Req::new("POST", "/x/1")
            .header("x-http-method-override", "DELETE")
            .prepare(&t),
        Err(BadRequest::MethodOverride("x-http-method-override"))
    );
    for spelling in [
        "x_http_method_override",
        "x-http_method-override",
        "x_method_override",
        "x_http_method",
    ] {
        assert!(
            matches!(
                Req::new("POST", "/x/1")
                    .header(spelling, "DELETE")
                    .prepare(&t),
                Err(BadRequest::MethodOverride(_))
            ),
            "{spelling}"
        );
    }
    assert!(
        Req::new("POST", "/x/1")
            .header("x_other_header", "1")
            .prepare(&t)
            .is_ok()
    );
    assert_eq!(
        Req::new("delete", "/x/1").prepare(&t),
        Err(BadRequest::MethodCase)
    );
    assert_eq!(
        Req::new("GET", "/x/%2e%2e/admin").prepare(&t),
        Err(BadRequest::Path(PathRejection::DotSegment))
    );
}

#[test]
fn rerouting_headers_in_any_spelling_are_rejected() {
    let t = table(TABLE);
    for (spelling, canonical) in [
        ("x-original-url", "x-original-url"),
        ("x_original_url", "x-original-url"),
        ("x-rewrite-url", "x-rewrite-url"),
        ("x_rewrite-url", "x-rewrite-url"),
        ("x-original-method", "x-original-method"),
        ("x_original_method", "x-original-method"),
    ] {
        assert_eq!(
            Req::new("GET", "/x/1")
                .header(spelling, "/admin")
                .prepare(&t),
            Err(BadRequest::Rerouting(canonical)),
            "{spelling}"
        );
    }
    assert!(
        Req::new("GET", "/x/1")
            .header("x-original-urls", "/admin")
            .prepare(&t)
            .is_ok()
    );
}

#[test]
fn host_must_be_one_valid_host_and_port() {
    let t = table(TABLE);
    let host = |value: &str| {
        let mut r = Req::new("GET", "/x/1");
        r.headers.insert(http::header::HOST, value.parse().unwrap());
        r.prepare(&t)
    };
    for ok in [
        "api.example",
        "api.example:8080",
        "127.0.0.1:1",
        "[::1]:8080",
        "[::1]",
        "under_score.internal",
    ] {
        assert!(host(ok).is_ok(), "{ok}");
    }
    for bad in [
        "user:pw@api.example",
        "api.example/admin",
        "api example",
        "a.example,b.example",
        "api.example:",
        "api.example:123456",
        "api.example:80:80",
        "",
        "%61pi.example",
        "[::1",
        "[]",
    ] {
        assert_eq!(
            host(bad),
            Err(BadRequest::Host(HostProblem::Invalid)),
            "{bad:?}"
        );
    }
    let twice = Req::new("GET", "/x/1").header("host", "other.example");
    assert_eq!(
        twice.prepare(&t),
        Err(BadRequest::Host(HostProblem::Repeated))
    );
    let mut missing = Req::new("GET", "/x/1");
    missing.headers.remove(http::header::HOST);
    assert_eq!(
        missing.prepare(&t),
        Err(BadRequest::Host(HostProblem::Missing))
    );
    let head = RequestHead {
        version: http::Version::HTTP_10,
        ..missing.head()
    };
    assert!(prepare(&t, &head).is_ok(), "HTTP/1.0 may omit Host");
    let userinfo = Req::new("GET", "http://user:pw@api.example/x/1");
    assert_eq!(
        userinfo.prepare(&t),
        Err(BadRequest::Host(HostProblem::Userinfo))
    );
    assert!(
        Req::new("GET", "http://api.example/x/1")
            .prepare(&t)
            .is_ok(),
        "absolute form without user information"
    );
}

#[test]
fn header_names_compare_with_underscores_read_as_dashes() {
    assert!(same_header_name(
        "x_authenticated_subject",
        "x-authenticated-subject"
    ));
    assert!(same_header_name(
        "X_Authenticated-Subject",
        "x-authenticated-subject"
    ));
    assert!(same_header_name("x-subject", "x_subject"));
    assert!(!same_header_name(
        "x-authenticated-subjects",
        "x-authenticated-subject"
    ));
    assert!(!same_header_name(
        "x.authenticated.subject",
        "x-authenticated-subject"
    ));
}

#[test]
fn explain_reports_what_the_proxy_does_in_audit_mode() {
    let t = table(
        "mode = \"audit\"\n[[route]]\nname = \"del\"\nmethods = [\"DELETE\"]\npath = \"/x/{id}\"\nrequire = [\"x:item:delete\"]\n",
    );
    let g = grants(&["x:item:view"], &[]);
    let request = ExplainRequest::parse("DELETE", "/x/7", []).unwrap();
    let e = explain(&t, &request, Some(&g));
    assert_eq!(e.word(), "deny");
    assert_eq!(e.forwarded_to, Some("default"), "audit mode forwards");
    assert_eq!(e.status(), None, "the upstream answers, not the gateway");
    assert_eq!(e.missing(), Some(&["x:item:delete".to_string()][..]));

    let enforce = table(
        "[[route]]\nname = \"del\"\nmethods = [\"DELETE\"]\npath = \"/x/{id}\"\nrequire = [\"x:item:delete\"]\n",
    );
    let e = explain(&enforce, &request, Some(&g));
    assert_eq!(e.forwarded_to, None);
    assert_eq!(e.status(), Some(403));
}

#[test]
fn explain_reads_the_request_headers_like_the_proxy() {
    let t = table(TABLE);
    let g = grants(&["x:item:view", "x:7:read"], &[]);
    let plain = ExplainRequest::parse("GET", "/x/7", []).unwrap();
    assert_eq!(explain(&t, &plain, Some(&g)).word(), "allow");
    let overridden =
        ExplainRequest::parse("GET", "/x/7", [Some(("X-HTTP-Method-Override", "DELETE"))]).unwrap();
    let e = explain(&t, &overridden, Some(&g));
    assert_eq!(
        e.path,
        Err(BadRequest::MethodOverride("x-http-method-override"))
    );
    assert_eq!(e.status(), Some(400));
    let rerouted =
        ExplainRequest::parse("GET", "/x/7", [Some(("X_Original_URL", "/admin"))]).unwrap();
    assert_eq!(
        explain(&t, &rerouted, Some(&g)).path,
        Err(BadRequest::Rerouting("x-original-url"))
    );
    let two_hosts = ExplainRequest::parse(
        "GET",
        "/x/7",
        [Some(("Host", "a.example")), Some(("Host", "b.example"))],
    )
    .unwrap();
    assert_eq!(
        explain(&t, &two_hosts, Some(&g)).path,
        Err(BadRequest::Host(HostProblem::Repeated))
    );
}

#[test]
fn report_names_what_decided_each_requirement() {
    let t = table(TABLE);
    let g = grants(&["x:item:*"], &["x:7:read"]);
    let request = ExplainRequest::parse("GET", "/x/7", []).unwrap();
    let r = explain(&t, &request, Some(&g)).requirements;
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].concrete, "x:item:view");
    assert_eq!(r[0].check, "satisfied by grant x:item:*");
    assert_eq!(r[1].concrete, "x:7:read");
    assert_eq!(r[1].check, "denied by x:7:read");
}

// ---- properties over generated requests ----

mod properties {
    use super::*;
    use proptest::prelude::*;

    const ROUTES: &str = r#"
[[route]]
methods = ["GET"]
path = "/api/v2/items/{id}"
require = ["items:{id}:view"]
[[route]]
methods = ["GET"]
path = "/api/v2/items/special"
[[route]]
methods = ["GET"]
path = "/api/{*rest}"
[[route]]
path = "/files/{name}/raw"
public = true
"#;

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec!["api", "v2", "items", "special", "files", "raw", "x"]).prop_map(String::from),
            2 => "[a-zA-Z0-9_~.-]{1,5}",
            1 => "%[0-9a-fA-F]{2}",
            1 => prop::sample::select(vec![".", "..", "", "%2e", "%2F", ";a", "a;b", "%3B", "\\", "\u{e9}", "*", "{x}"]).prop_map(String::from),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        prop::collection::vec(segment(), 0..6).prop_map(|s| format!("/{}", s.join("/")))
    }

    fn table_with(allow_semicolon: bool, case_insensitive: bool, ignore: bool) -> RouteTable {
        table(&format!(
            "[normalize]\nallow_semicolon = {allow_semicolon}\ncase_insensitive = {case_insensitive}\ntrailing_slash = \"{}\"\n{ROUTES}",
            if ignore { "ignore" } else { "strict" }
        ))
    }

    proptest! {
        #[test]
        fn an_accepted_path_resent_matches_the_same_route(
            p in path(), semi in any::<bool>(), ci in any::<bool>(), ignore in any::<bool>(),
        ) {
            let t = table_with(semi, ci, ignore);
            let Ok(uri) = p.parse::<Uri>() else { return Ok(()) };
            let mut headers = HeaderMap::new();
            headers.insert(http::header::HOST, "api.example".parse().unwrap());
            let head = RequestHead { method: &Method::GET, uri: &uri, version: http::Version::HTTP_11, headers: &headers };
            if let Ok(first) = prepare(&t, &head) {
                let again_uri: Uri = first.path().parse().expect("a normalized path is a URI");
                let again = prepare(&t, &RequestHead { uri: &again_uri, ..head }).expect("a normalized path is accepted");
                prop_assert_eq!(again.path(), first.path(), "normalization is idempotent");
                let first_route = first.route(&t, &Method::GET).route_name();
                let second_route = again.route(&t, &Method::GET).route_name();
                prop_assert_eq!(first_route, second_route);
                // The path routes were matched on is the forwarded path, or
                // (with allow_semicolon) that path without its `;` parameters.
                if !semi {
                    prop_assert_eq!(first.routing_path(), first.path());
                }
            }
        }
    }
}
