//! The route table and the callers of the soak, written twice: as the
//! files the gateway loads (two equivalent variants of each, and a broken
//! routes file), and as a hand-written oracle that says, independently of
//! the gateway's matcher and permission grammar, which caller may use which
//! method and path.

/// A caller: its bearer token (also its subject name) and two equivalent
/// spellings of its grants, as `(allow, deny)`.
pub struct Caller {
    /// Token and subject.
    pub name: &'static str,
    /// The permission API's answer, by grants variant.
    pub variants: [(&'static [&'static str], &'static [&'static str]); 2],
}

/// The callers the permission API knows. Any other token gets 401.
pub const CALLERS: &[Caller] = &[
    Caller {
        name: "viewer",
        variants: [
            (&["integrations:integration:view"], &[]),
            (
                &["INTEGRATIONS:Integration:VIEW", "reports:report:view"],
                &["integrations:integration:delete"],
            ),
        ],
    },
    Caller {
        name: "editor",
        variants: [
            (
                &[
                    "integrations:integration:view",
                    "integrations:integration:add",
                    "integrations:integration:edit",
                    "integration:7:admin",
                ],
                &[],
            ),
            (
                &[
                    "integrations:integration:view,add,edit",
                    "integration:7:admin,view",
                ],
                &[],
            ),
        ],
    },
    Caller {
        name: "admin",
        variants: [
            (
                &["integrations", "admin"],
                &["integrations:integration:delete"],
            ),
            (
                &["integrations:*", "admin:*:*"],
                &["integrations:integration:delete"],
            ),
        ],
    },
    Caller {
        name: "deleter",
        variants: [
            (&["integrations:integration:*"], &[]),
            (&["integrations:integration"], &["reports"]),
        ],
    },
];

/// Routes of the table, as the oracle knows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    List,
    Create,
    Get,
    Update,
    Delete,
    Secret,
    /// `POST /api/integrations/{integrationId}/permissions`, needing
    /// `integration:{integrationId}:admin`; carries whether the id is 7.
    Permissions(bool),
    Admin,
    Public,
}

/// What the route table says for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forwarded.
    Allow,
    /// 403.
    Deny,
    /// 401.
    Unauthenticated,
}

/// Which route an already canonical path and method take (`None`: no
/// route; the table's default is deny).
pub fn route_of(method: &str, path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let id_ok = |s: &str| !s.is_empty();
    // `{*rest}`: one segment or more; only the last may be empty (a
    // trailing slash).
    let rest_ok = |r: &[&str]| {
        r.first().is_some_and(|s| id_ok(s)) && r[..r.len() - 1].iter().all(|s| id_ok(s))
    };
    match (method, segs.as_slice()) {
        (_, ["public", rest @ ..]) if rest_ok(rest) => Some(Route::Public),
        ("GET", ["api", "v2", "admin", rest @ ..]) if rest_ok(rest) => Some(Route::Admin),
        ("GET", ["api", "v2", "integrations", "credentials"]) => Some(Route::List),
        ("POST", ["api", "v2", "integrations", "credentials"]) => Some(Route::Create),
        ("GET", ["api", "v2", "integrations", "credentials", id]) if id_ok(id) => Some(Route::Get),
        ("PUT", ["api", "v2", "integrations", "credentials", id]) if id_ok(id) => {
            Some(Route::Update)
        }
        ("DELETE", ["api", "v2", "integrations", "credentials", id]) if id_ok(id) => {
            Some(Route::Delete)
        }
        ("GET", ["api", "v2", "integrations", "credentials", id, "secret"]) if id_ok(id) => {
            Some(Route::Secret)
        }
        ("POST", ["api", "integrations", id, "permissions"]) if id_ok(id) => {
            Some(Route::Permissions(*id == "7"))
        }
        _ => None,
    }
}

/// Whether `caller` may use `route`: the table below is the intent the
/// grants files spell, written out by hand.
fn may(caller: &str, route: Route) -> bool {
    use Route::*;
    match caller {
        "viewer" => matches!(route, List | Get),
        "editor" => matches!(route, List | Create | Get | Update | Permissions(true)),
        "admin" => matches!(route, List | Create | Get | Update | Secret | Admin),
        "deleter" => matches!(route, List | Create | Get | Update | Delete),
        _ => false,
    }
}

/// The decision for a canonical path: `caller` is the token (`None`: no
/// credentials); an unknown token is unauthenticated on a route.
pub fn verdict(caller: Option<&str>, method: &str, path: &str) -> Verdict {
    let route = route_of(method, path);
    if route == Some(Route::Public) {
        return Verdict::Allow;
    }
    let known = caller.filter(|c| CALLERS.iter().any(|k| k.name == *c));
    match (known, route) {
        // No route: the default (deny) applies before any grant lookup.
        (_, None) => Verdict::Deny,
        (None, Some(_)) => Verdict::Unauthenticated,
        (Some(c), Some(r)) if may(c, r) => Verdict::Allow,
        (Some(_), Some(_)) => Verdict::Deny,
    }
}

/// One route of the routes file: name, methods, path, requirement.
type FileRoute = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

const FILE_ROUTES: &[FileRoute] = &[
    (
        "credentials.list",
        "GET",
        "/api/v2/integrations/credentials",
        Some("integrations:integration:view"),
    ),
    (
        "credentials.create",
        "POST",
        "/api/v2/integrations/credentials",
        Some("integrations:integration:add"),
    ),
    (
        "credentials.get",
        "GET",
        "/api/v2/integrations/credentials/{credentialId}",
        Some("integrations:integration:view"),
    ),
    (
        "credentials.update",
        "PUT",
        "/api/v2/integrations/credentials/{credentialId}",
        Some("integrations:integration:edit"),
    ),
    (
        "credentials.delete",
        "DELETE",
        "/api/v2/integrations/credentials/{credentialId}",
        Some("integrations:integration:delete"),
    ),
    (
        "credentials.secret",
        "GET",
        "/api/v2/integrations/credentials/{credentialId}/secret",
        Some("integrations:secret:view"),
    ),
    (
        "integration.permissions",
        "POST",
        "/api/integrations/{integrationId}/permissions",
        Some("integration:{integrationId}:admin"),
    ),
    (
        "admin",
        "GET",
        "/api/v2/admin/{*rest}",
        Some("admin:all:view"),
    ),
    ("public", "*", "/public/{*rest}", None),
];

/// Requests whose decision every variant must agree on, checked with
/// `permgate check` against the oracle before the soak starts.
pub const PROBES: &[(&str, &str)] = &[
    ("GET", "/api/v2/integrations/credentials"),
    ("POST", "/api/v2/integrations/credentials"),
    ("GET", "/api/v2/integrations/credentials/42"),
    ("PUT", "/api/v2/integrations/credentials/42"),
    ("DELETE", "/api/v2/integrations/credentials/42"),
    ("GET", "/api/v2/integrations/credentials/42/secret"),
    ("POST", "/api/integrations/7/permissions"),
    ("POST", "/api/integrations/8/permissions"),
    ("GET", "/api/v2/admin/users/1"),
    ("GET", "/public/status"),
    ("GET", "/api/v3/unknown/1"),
    ("PATCH", "/api/v2/integrations/credentials/42"),
];

/// The routes file, variant 0 or 1: the same table in another order, with
/// permissions in another case and single requirements as `require_any`.
/// Each carries `[[test]]` cases for every caller, grants variant and probe.
pub fn routes_file(variant: usize) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# soak routes, variant {variant}\ndefault = \"deny\"\n\n"
    ));
    let mut routes: Vec<&FileRoute> = FILE_ROUTES.iter().collect();
    if variant == 1 {
        routes.reverse();
    }
    for (name, method, path, require) in routes {
        out.push_str(&format!("[[route]]\nname = \"{name}\"\n"));
        if *method != "*" {
            out.push_str(&format!("methods = [\"{method}\"]\n"));
        }
        out.push_str(&format!("path = \"{path}\"\n"));
        match (require, variant) {
            (None, _) => out.push_str("public = true\n"),
            (Some(p), 0) => out.push_str(&format!("require = [\"{p}\"]\n")),
            (Some(p), _) => out.push_str(&format!("require_any = [\"{}\"]\n", upper_first(p))),
        }
        out.push('\n');
    }
    for caller in CALLERS {
        for (allow, deny) in &caller.variants {
            for (method, path) in PROBES {
                let expect = match verdict(Some(caller.name), method, path) {
                    Verdict::Allow => "allow",
                    Verdict::Deny => "deny",
                    Verdict::Unauthenticated => "unauthenticated",
                };
                out.push_str(&format!(
                    "[[test]]\nmethod = \"{method}\"\npath = \"{path}\"\ngrants = {}\ndeny = {}\nexpect = \"{expect}\"\n\n",
                    toml_list(allow),
                    toml_list(deny)
                ));
            }
        }
    }
    for (method, path) in PROBES {
        let expect = match verdict(None, method, path) {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::Unauthenticated => "unauthenticated",
        };
        out.push_str(&format!(
            "[[test]]\nmethod = \"{method}\"\npath = \"{path}\"\nexpect = \"{expect}\"\n\n"
        ));
    }
    out
}

/// A routes file that does not load (a misspelt key): a reload must keep
/// the table that serves.
pub fn broken_routes_file() -> String {
    routes_file(0).replacen("require = [", "requires = [", 1)
}

fn upper_first(p: &str) -> String {
    let mut c = p.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oracle_reads_the_table_as_written() {
        assert_eq!(
            verdict(Some("viewer"), "GET", "/api/v2/integrations/credentials/1"),
            Verdict::Allow
        );
        assert_eq!(
            verdict(
                Some("viewer"),
                "DELETE",
                "/api/v2/integrations/credentials/1"
            ),
            Verdict::Deny
        );
        assert_eq!(
            verdict(Some("editor"), "POST", "/api/integrations/7/permissions"),
            Verdict::Allow
        );
        assert_eq!(
            verdict(Some("editor"), "POST", "/api/integrations/8/permissions"),
            Verdict::Deny
        );
        assert_eq!(
            verdict(Some("stranger"), "GET", "/api/v2/integrations/credentials"),
            Verdict::Unauthenticated
        );
        assert_eq!(verdict(None, "GET", "/public/x"), Verdict::Allow);
        assert_eq!(verdict(Some("admin"), "GET", "/api/v3/x"), Verdict::Deny);
        assert_eq!(verdict(None, "GET", "/api/v3/x"), Verdict::Deny);
    }

    #[test]
    fn the_broken_variant_differs() {
        assert_ne!(broken_routes_file(), routes_file(0));
    }
}
