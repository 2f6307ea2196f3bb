use super::*;
use std::path::Path;

fn lint_of(text: &str) -> Vec<Finding> {
    let table = crate::routes::parse(text, Path::new("routes.toml"), &["default".into()])
        .unwrap_or_else(|e| panic!("{e}"));
    lint(&table)
}

fn of_kind(findings: &[Finding], kind: Kind) -> Vec<&Finding> {
    findings.iter().filter(|f| f.kind == kind).collect()
}

fn route(name: &str, methods: &str, path: &str, access: &str) -> String {
    let methods = if methods == "*" {
        String::new()
    } else {
        format!("methods = [{}]\n", methods)
    };
    format!("[[route]]\nname = \"{name}\"\n{methods}path = \"{path}\"\n{access}\n\n")
}

const CLEAN: &str = r#"
default = "deny"

[[route]]
name = "credentials.list"
methods = ["GET", "HEAD"]
path = "/api/v2/integrations/credentials"
require = ["integrations:integration:view"]

[[route]]
name = "credentials.types"
methods = ["GET", "HEAD"]
path = "/api/v2/integrations/credentials/types"
require = ["integrations:integration:view"]

[[route]]
name = "credentials.get"
methods = ["GET", "HEAD"]
path = "/api/v2/integrations/credentials/{credentialId}"
require = ["integrations:integration:view"]

[[route]]
name = "credentials.create"
methods = ["POST"]
path = "/api/v2/integrations/credentials"
require = ["integrations:integration:add"]

[[route]]
name = "credentials.delete"
methods = ["DELETE"]
path = "/api/v2/integrations/credentials/{credentialId}"
require = ["integrations:integration:delete"]

[[route]]
name = "health"
methods = ["GET"]
path = "/health"
public = true

[[route]]
name = "roles.compare"
methods = ["GET"]
path = "/roles/{leftRoleId}/compare/{rightRoleId}"
require = ["roles:role:view"]

[[route]]
name = "roles.get"
methods = ["GET"]
path = "/roles/{roleId}"
require = ["roles:role:view"]
"#;

#[test]
fn a_clean_table_has_no_warnings() {
    let findings = lint_of(CLEAN);
    let warnings: Vec<_> = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
    // `types` beside `{credentialId}` with the same permission: a note that
    // says who wins, nothing more.
    let notes = of_kind(&findings, Kind::StaticOverParam);
    assert_eq!(notes.len(), 1, "{findings:#?}");
    assert_eq!(notes[0].severity, Severity::Note);
    assert!(
        notes[0].message.contains("\"credentials.types\" wins"),
        "{}",
        notes[0].message
    );
    assert!(
        notes[0].message.contains("for GET, HEAD"),
        "{}",
        notes[0].message
    );
    assert_eq!(findings.len(), 1, "{findings:#?}");
}

#[test]
fn a_static_route_asking_less_than_the_parameter_route_is_a_note() {
    let text = route("a.get", "\"GET\"", "/a/{id}", "require = [\"a:view\"]")
        + &route("a.export", "\"GET\"", "/a/export", "");
    let findings = lint_of(&text);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(
        (f.kind, f.severity),
        (Kind::StaticOverParam, Severity::Note)
    );
    assert_eq!(f.routes, [0, 1], "reported at the losing route");
    assert_eq!(f.line, 4);
    let m = &f.message;
    assert!(m.starts_with("/a/export matches both"), "{m}");
    assert!(
        m.contains("\"a.export\" (line 10)") && m.contains("\"a.get\" (line 4)"),
        "{m}"
    );
    assert!(m.contains("for GET, \"a.export\" wins"), "{m}");
    assert!(
        m.contains("asks less (authentication only)") && m.contains("a:view"),
        "{m}"
    );
}

#[test]
fn a_public_static_route_beating_a_protected_parameter_route_is_a_warning() {
    let text = route("a.get", "\"GET\"", "/a/{id}", "require = [\"a:view\"]")
        + &route("a.status", "\"GET\"", "/a/status", "public = true");
    let findings = lint_of(&text);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(
        (f.kind, f.severity),
        (Kind::PublicOverlap, Severity::Warning)
    );
    assert!(
        f.message.contains("\"a.status\" wins") && f.message.contains("public"),
        "{}",
        f.message
    );

    // The other way round the protected static route wins: nothing widens.
    let text = route("a.get", "\"GET\"", "/a/{id}", "public = true")
        + &route(
            "a.secret",
            "\"GET\"",
            "/a/secret",
            "require = [\"a:admin\"]",
        );
    let findings = lint_of(&text);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].severity, Severity::Note);
}

#[test]
fn different_methods_never_make_a_static_over_param_finding() {
    let text = route("a.get", "\"GET\"", "/a/{id}", "require = [\"a:view\"]")
        + &route("a.export", "\"POST\"", "/a/export", "require = [\"a:add\"]");
    assert_eq!(lint_of(&text), []);
}

#[test]
fn a_catch_all_covered_by_parameter_routes_is_unreachable() {
    let text = r#"
[normalize]
trailing_slash = "ignore"

[[route]]
name = "files.any"
methods = ["GET"]
path = "/files/{*rest}"
require = ["files:read"]

[[route]]
name = "files.one"
methods = ["GET"]
path = "/files/{name}"
require = ["files:read"]

[[route]]
name = "files.deep"
methods = ["GET"]
path = "/files/{dir}/{*rest}"
require = ["files:read"]
"#;
    let findings = lint_of(text);
    let f = of_kind(&findings, Kind::Unreachable);
    assert_eq!(f.len(), 1, "{findings:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].routes, [0, 1, 2]);
    assert!(
        f[0].message
            .contains("\"files.any\" (line 8) can never match"),
        "{}",
        f[0].message
    );
    assert!(
        f[0].message.contains("\"files.one\" (line 14)"),
        "{}",
        f[0].message
    );

    // With significant trailing slashes, "/files/a/" still reaches it.
    let strict = text.replace("trailing_slash = \"ignore\"", "trailing_slash = \"strict\"");
    assert!(of_kind(&lint_of(&strict), Kind::Unreachable).is_empty());
    // Without the deeper catch-all, "/files/a/b" reaches it.
    let shallow = text.replace("/files/{dir}/{*rest}", "/files/{dir}/x");
    assert!(of_kind(&lint_of(&shallow), Kind::Unreachable).is_empty());
    // Empty segments reach it when slashes are not merged.
    let unmerged = text.replace("[normalize]", "[normalize]\nmerge_slashes = false");
    assert!(of_kind(&lint_of(&unmerged), Kind::Unreachable).is_empty());
}

#[test]
fn a_catch_all_covered_for_one_method_only_says_which() {
    let text = "[normalize]\ntrailing_slash = \"ignore\"\n\n".to_string()
        + &route("any", "\"GET\", \"HEAD\"", "/f/{*rest}", "")
        + &route("one", "\"GET\"", "/f/{a}", "")
        + &route("deep", "\"GET\"", "/f/{a}/{*rest}", "");
    let findings = lint_of(&text);
    let f = of_kind(&findings, Kind::Unreachable);
    assert_eq!(f.len(), 1, "{findings:#?}");
    assert!(
        f[0].message.contains("never matches for GET:"),
        "{}",
        f[0].message
    );
}

#[test]
fn a_catch_all_wider_than_its_sibling_is_a_warning_and_a_narrower_one_a_note() {
    let wide = route("api.rest", "\"GET\"", "/api/{*rest}", "")
        + &route(
            "admin.get",
            "\"GET\"",
            "/api/admin/{id}",
            "require = [\"admin\"]",
        );
    let findings = lint_of(&wide);
    let f = of_kind(&findings, Kind::CatchAllSibling);
    assert_eq!(f.len(), 1, "{findings:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].routes, [0, 1]);
    let m = &f[0].message;
    assert!(m.contains("e.g. /api/admin/x0/x0"), "{m}");
    assert!(m.contains("is wider than"), "{m}");

    let narrow = route(
        "api.rest",
        "\"GET\"",
        "/api/{*rest}",
        "require = [\"admin\"]",
    ) + &route("status", "\"GET\"", "/api/status", "");
    let f = lint_of(&narrow);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].kind, f[0].severity),
        (Kind::CatchAllSibling, Severity::Note)
    );

    let same = route("api.rest", "\"GET\"", "/api/{*rest}", "require = [\"x\"]")
        + &route("status", "\"GET\"", "/api/status", "require = [\"x\"]");
    assert_eq!(lint_of(&same), []);
}

#[test]
fn a_catch_all_taking_paths_of_other_methods_is_a_note() {
    let text = route(
        "files.read",
        "\"GET\"",
        "/files/{*path}",
        "require = [\"files:read\"]",
    ) + &route(
        "files.delete",
        "\"DELETE\"",
        "/files/{id}",
        "require = [\"files:delete\"]",
    );
    let findings = lint_of(&text);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!(
        (f.kind, f.severity),
        (Kind::CatchAllOtherMethods, Severity::Note)
    );
    assert_eq!(f.routes, [0, 1]);
    assert!(f.message.contains("for GET"), "{}", f.message);
    assert!(f.message.contains("e.g. /files/x0"), "{}", f.message);
}

#[test]
fn a_public_route_beside_protected_paths_is_a_warning() {
    // Overlap through a catch-all: easy to miss.
    let text = route("docs", "\"GET\"", "/docs/{*page}", "public = true")
        + &route(
            "docs.edit",
            "\"PUT\"",
            "/docs/{id}",
            "require = [\"docs:edit\"]",
        );
    let findings = lint_of(&text);
    let f = of_kind(&findings, Kind::PublicOverlap);
    assert_eq!(f.len(), 1, "{findings:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(
        f[0].message.contains("\"docs.edit\" (line 10)"),
        "{}",
        f[0].message
    );

    // Any method public: DELETE on the protected path is public too.
    let text = route("ping", "*", "/items/{id}", "public = true")
        + &route(
            "items.get",
            "\"GET\"",
            "/items/{id}",
            "require = [\"items:view\"]",
        );
    let f = lint_of(&text);
    let f = of_kind(&f, Kind::PublicOverlap);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Warning);

    // A public read of the very path others write: usual, a note.
    let text = route(
        "items.get",
        "\"GET\", \"HEAD\"",
        "/items/{id}",
        "public = true",
    ) + &route(
        "items.delete",
        "\"DELETE\"",
        "/items/{id}",
        "require = [\"items:delete\"]",
    );
    let f = lint_of(&text);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].kind, f[0].severity),
        (Kind::PublicOverlap, Severity::Note)
    );
}

#[test]
fn methods_no_route_covers_are_reported_only_when_the_default_lets_them_through() {
    let routes = route(
        "items.get",
        "\"GET\", \"HEAD\"",
        "/items/{id}",
        "require = [\"items:view\"]",
    ) + &route(
        "items.put",
        "\"PUT\"",
        "/items/{id}",
        "require = [\"items:edit\"]",
    );
    assert_eq!(lint_of(&format!("default = \"deny\"\n{routes}")), []);
    let findings = lint_of(&format!("default = \"allow\"\n{routes}"));
    assert_eq!(findings.len(), 1, "{findings:#?}");
    let f = &findings[0];
    assert_eq!((f.kind, f.severity), (Kind::MethodGap, Severity::Warning));
    assert!(
        f.message
            .starts_with("POST, PATCH, DELETE /items/x0 matches no route"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("forwarded without a check"),
        "{}",
        f.message
    );

    // "authenticate" is no weaker than an authenticated-only path.
    let open = route("items.get", "\"GET\"", "/items/{id}", "");
    assert_eq!(lint_of(&format!("default = \"authenticate\"\n{open}")), []);
    assert_eq!(
        of_kind(
            &lint_of(&format!("default = \"allow\"\n{open}")),
            Kind::MethodGap
        )
        .len(),
        1
    );
}

#[test]
fn audit_mode_counts_as_asking_nothing() {
    let text = route("a.get", "\"GET\"", "/a/{id}", "require = [\"a:view\"]")
        + &route(
            "a.export",
            "\"GET\"",
            "/a/export",
            "require = [\"a:view\"]\nmode = \"audit\"",
        );
    let f = lint_of(&text);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].severity, Severity::Warning);
    assert!(f[0].message.contains("audit mode"), "{}", f[0].message);
}

#[test]
fn duplicates_after_normalization_are_load_errors_not_findings() {
    let load = |text: &str| {
        crate::routes::parse(text, Path::new("routes.toml"), &["default".into()]).map(|_| ())
    };
    let ci = "[normalize]\ncase_insensitive = true\n\n".to_string()
        + &route("a", "\"GET\"", "/Items/{id}", "")
        + &route("b", "\"GET\"", "/items/{itemId}", "");
    let err = load(&ci).unwrap_err().to_string();
    assert!(err.contains("conflicts with route \"a\""), "{err}");
    let slash = "[normalize]\ntrailing_slash = \"ignore\"\n\n".to_string()
        + &route("a", "\"GET\"", "/items/", "")
        + &route("b", "\"GET\"", "/items", "");
    assert!(load(&slash).is_err());
    // Strict trailing slashes: two different paths, no finding either.
    let strict = route("a", "\"GET\"", "/items/", "") + &route("b", "\"GET\"", "/items", "");
    assert_eq!(lint_of(&strict), []);
}

#[test]
fn an_any_method_pair_says_every_method() {
    let text = route("all", "*", "/a/{id}", "require = [\"a:view\"]")
        + &route("export", "*", "/a/export", "require = [\"a:export\"]")
        + &route("other", "\"GET\"", "/b", "require = [\"b\"]");
    let findings = lint_of(&text);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(
        findings[0]
            .message
            .contains("for every method, \"export\" wins"),
        "{}",
        findings[0].message
    );
}
