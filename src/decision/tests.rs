use super::*;
use crate::permission::Permission;
use crate::routes::parse;
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

fn decide(t: &RouteTable, method: &str, path: &str, caller: Caller<'_>) -> Decision {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let path = prepare(t, &method, path, &HeaderMap::new()).unwrap();
    authorize(&Target::of(t, &method, &path), caller)
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
    assert_eq!(
        decide(&t, "GET", "/health", Caller::Anonymous),
        Decision::Allow(Allowed::Open)
    );
    assert_eq!(
        decide(&t, "GET", "/health", Caller::Unavailable),
        Decision::Allow(Allowed::Open)
    );
    let target = Target::of(&t, &Method::GET, "/health");
    assert_eq!(target.need(), Need::Nothing);
}

#[test]
fn authenticated_routes_need_accepted_credentials() {
    let t = table(TABLE);
    let g = grants(&[], &[]);
    assert_eq!(
        decide(&t, "GET", "/me", Caller::Known(&g)),
        Decision::Allow(Allowed::Authenticated)
    );
    assert_eq!(
        decide(&t, "GET", "/me", Caller::Anonymous),
        Decision::Unauthenticated
    );
    assert_eq!(
        decide(&t, "GET", "/me", Caller::Rejected),
        Decision::Unauthenticated
    );
    assert_eq!(
        decide(&t, "GET", "/me", Caller::Unavailable),
        Decision::Unavailable
    );
}

#[test]
fn require_needs_every_entry_and_reports_the_missing_ones() {
    let t = table(TABLE);
    let g = grants(&["x:item:view", "x:7:read"], &[]);
    assert_eq!(
        decide(&t, "GET", "/x/7", Caller::Known(&g)),
        Decision::Allow(Allowed::Granted)
    );
    assert_eq!(
        decide(&t, "GET", "/x/8", Caller::Known(&g)),
        Decision::Forbidden(Forbidden::Missing(vec!["x:8:read".into()]))
    );
    let denied = grants(&["x"], &["x:item:view"]);
    assert_eq!(
        decide(&t, "GET", "/x/8", Caller::Known(&denied)),
        Decision::Forbidden(Forbidden::Missing(vec!["x:item:view".into()]))
    );
}

#[test]
fn require_any_needs_one_entry_and_one_deny_does_not_block_another() {
    let t = table(TABLE);
    let g = grants(&["x:7:admin"], &[]);
    assert_eq!(
        decide(&t, "POST", "/x/7", Caller::Known(&g)),
        Decision::Allow(Allowed::Granted)
    );
    assert_eq!(
        decide(&t, "POST", "/x/8", Caller::Known(&g)),
        Decision::Forbidden(Forbidden::Missing(vec![
            "x:item:admin".into(),
            "x:8:admin".into()
        ]))
    );
    let g = grants(&["x:*:admin"], &["x:item:admin"]);
    assert_eq!(
        decide(&t, "POST", "/x/7", Caller::Known(&g)),
        Decision::Allow(Allowed::Granted)
    );
}

#[test]
fn require_and_require_any_together() {
    let t = table(TABLE);
    let g = grants(&["x:item:edit", "x:7:owner"], &[]);
    assert_eq!(
        decide(&t, "PUT", "/x/7", Caller::Known(&g)),
        Decision::Allow(Allowed::Granted)
    );
    assert_eq!(
        decide(&t, "PUT", "/x/8", Caller::Known(&g)),
        Decision::Forbidden(Forbidden::Missing(vec![
            "x:8:owner".into(),
            "x:item:admin".into()
        ]))
    );
    let g = grants(&["x:7:owner"], &[]);
    assert_eq!(
        decide(&t, "PUT", "/x/7", Caller::Known(&g)),
        Decision::Forbidden(Forbidden::Missing(vec!["x:item:edit".into()]))
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
            assert_eq!(
                d,
                Decision::Allow(Allowed::Granted),
                "%37 is the unreserved '7'"
            );
        } else {
            assert!(matches!(d, Decision::Forbidden(_)), "{id}: {d:?}");
        }
    }
    assert!(matches!(
        decide(&t, "GET", "/x/7", Caller::Known(&g)),
        Decision::Allow(_)
    ));
}

#[test]
fn defaults_for_unmatched_paths() {
    let g = grants(&["*"], &[]);
    let deny = table("default = \"deny\"");
    assert_eq!(
        decide(&deny, "GET", "/nope", Caller::Known(&g)),
        Decision::Forbidden(Forbidden::NoRoute)
    );
    assert_eq!(
        Target::of(&deny, &Method::GET, "/nope").need(),
        Need::Nothing
    );
    let auth = table("default = \"authenticate\"");
    assert_eq!(
        decide(&auth, "GET", "/nope", Caller::Known(&g)),
        Decision::Allow(Allowed::Authenticated)
    );
    assert_eq!(
        decide(&auth, "GET", "/nope", Caller::Anonymous),
        Decision::Unauthenticated
    );
    let allow = table("default = \"allow\"");
    assert_eq!(
        decide(&allow, "GET", "/nope", Caller::Anonymous),
        Decision::Allow(Allowed::Open)
    );
}

#[test]
fn audit_mode_permits_and_remembers_the_refusal() {
    let refusal = Decision::Forbidden(Forbidden::Missing(vec!["a:b".into()]));
    let refused = Refused::Forbidden(Forbidden::Missing(vec!["a:b".into()]));
    let permit = refusal.clone().permit(Mode::Audit).unwrap();
    assert_eq!(permit.would_deny(), Some(&refused));
    assert_eq!(refusal.clone().permit(Mode::Enforce).unwrap_err(), refused);
    assert_eq!(
        Decision::Unavailable.permit(Mode::Enforce).unwrap_err(),
        Refused::Unavailable
    );
    assert_eq!(
        Decision::Unauthenticated
            .permit(Mode::Audit)
            .unwrap()
            .would_deny(),
        Some(&Refused::Unauthenticated)
    );
    let allowed = Decision::Allow(Allowed::Granted)
        .permit(Mode::Enforce)
        .unwrap();
    assert!(allowed.would_deny().is_none());
    let t = table(
        "mode = \"audit\"\n[[route]]\npath = \"/e\"\nmode = \"enforce\"\nrequire = [\"a\"]\n",
    );
    assert_eq!(Target::of(&t, &Method::GET, "/e").mode(&t), Mode::Enforce);
    assert_eq!(Target::of(&t, &Method::GET, "/other").mode(&t), Mode::Audit);
}

#[test]
fn prepare_rejects_overrides_lowercase_methods_and_bad_paths() {
    let t = table(TABLE);
    let mut h = HeaderMap::new();
    h.insert("x-http-method-override", "DELETE".parse().unwrap());
    assert_eq!(
        prepare(&t, &Method::POST, "/x/1", &h),
        Err(BadRequest::MethodOverride("x-http-method-override"))
    );
    for spelling in [
        "x_http_method_override",
        "x-http_method-override",
        "x_method_override",
    ] {
        let mut h = HeaderMap::new();
        h.insert(
            http::HeaderName::from_bytes(spelling.as_bytes()).unwrap(),
            "DELETE".parse().unwrap(),
        );
        assert!(
            matches!(
                prepare(&t, &Method::POST, "/x/1", &h),
                Err(BadRequest::MethodOverride(_))
            ),
            "{spelling}"
        );
    }
    let mut h = HeaderMap::new();
    h.insert("x_other_header", "1".parse().unwrap());
    assert!(prepare(&t, &Method::POST, "/x/1", &h).is_ok());
    let lower = Method::from_bytes(b"delete").unwrap();
    assert_eq!(
        prepare(&t, &lower, "/x/1", &HeaderMap::new()),
        Err(BadRequest::MethodCase)
    );
    assert_eq!(
        prepare(&t, &Method::GET, "/x/%2e%2e/admin", &HeaderMap::new()),
        Err(BadRequest::Path(PathRejection::DotSegment))
    );
}

#[test]
fn report_names_what_decided_each_requirement() {
    let t = table(TABLE);
    let g = grants(&["x:item:*"], &["x:7:read"]);
    let target = Target::of(&t, &Method::GET, "/x/7");
    let r = report(&target, &g);
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
            let h = HeaderMap::new();
            if let Ok(normalized) = prepare(&t, &Method::GET, &p, &h) {
                let again = prepare(&t, &Method::GET, &normalized, &h).expect("a normalized path is accepted");
                prop_assert_eq!(&again, &normalized, "normalization is idempotent");
                let first = Target::of(&t, &Method::GET, &routing_path(&t, &normalized)).route_name();
                let second = Target::of(&t, &Method::GET, &routing_path(&t, &again)).route_name();
                prop_assert_eq!(first, second);
                // The path routes were matched on is the forwarded path, or
                // (with allow_semicolon) that path without its `;` parameters.
                let routing = routing_path(&t, &normalized);
                if !semi {
                    prop_assert_eq!(routing.as_ref(), normalized.as_ref());
                }
            }
        }
    }
}
