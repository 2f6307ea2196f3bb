//! `permgate import-openapi` on real API descriptions: GitHub's REST API
//! (OpenAPI 3.0, fetched by tests/data/fetch-github-openapi.sh) and a
//! Swagger 2.0 document of Genesys Cloud's operations with the vendor's
//! permission extension, decided request by request against the
//! hand-made tests/data/genesys-routes.toml.

#[path = "support/mod.rs"]
mod support;

use support::cli::{repo, run as permgate, text};

use support::config_with_routes;

use std::path::Path;

use permgate::cli::failing_tests;
use permgate::decision::{ExplainRequest, Grants, explain};
use permgate::openapi::{PermissionSource, import};
use permgate::routes::{Access, RouteTable};

const GITHUB: &str = "tests/data/cache/api.github.com-23.0.2.json";
const GITHUB_SCRIPT: &str = "tests/data/fetch-github-openapi.sh";
const GITHUB_TEMPLATE: &str = "template:github:{tag}:{resource}:{action}";

fn parse_routes(text: &str, file: &Path) -> RouteTable {
    permgate::routes::parse(text, file, &["default".to_string()])
        .unwrap_or_else(|e| panic!("routes do not load: {e}"))
}

/// The full decision for one request: the rules' answer, the route (by
/// methods and path pattern, so tables with different names compare) and
/// what a 403 lists as missing, as a set: a vendor list that names one
/// permission twice is imported with it once.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    word: &'static str,
    route: Option<String>,
    missing: Vec<String>,
}

fn decide(table: &RouteTable, method: &str, path: &str, grants: Option<&[String]>) -> Outcome {
    let grants = grants.map(|g| Grants::from_lists("caller", g, &[]).expect("valid grants"));
    let request = ExplainRequest::parse(method, path, []).expect("valid request");
    let e = explain(table, &request, grants.as_ref());
    Outcome {
        word: e.word(),
        route: e.route.map(|r| format!("{} {}", r.methods_label(), r.path)),
        missing: e
            .missing()
            .map(|m| {
                let mut m = m.to_vec();
                m.sort();
                m.dedup();
                m
            })
            .unwrap_or_default(),
    }
}

/// Requirements of a route rendered with `values`, holding alternative
/// `pick` of `require_any`.
fn needed(access: &Access, values: &[&str], pick: usize) -> Vec<String> {
    match access {
        Access::Permissions { all, any } => {
            let mut held: Vec<String> = all.iter().map(|r| r.render(values)).collect();
            if !any.is_empty() {
                held.push(any[pick % any.len()].render(values));
            }
            held
        }
        _ => Vec::new(),
    }
}

const SAMPLE_VALUES: [&str; 4] = [
    "42",
    "c0ffee12-3456-4789-abcd-0123456789ab",
    "abc_DEF-1",
    "v1.2",
];

#[test]
fn genesys_swagger_import_decides_every_request_like_the_hand_made_table() {
    let swagger_file = repo("tests/data/genesys-swagger.json");
    let swagger = std::fs::read_to_string(&swagger_file).unwrap();
    let source: PermissionSource = "extension:x-inin-requires-permissions".parse().unwrap();
    let imported = import(&swagger, &swagger_file, &source).unwrap();
    let r = &imported.report;
    assert_eq!(r.operations, 3265);
    assert_eq!(r.routes, 3265);
    assert!(r.left_out.is_empty() && r.conflicts.is_empty() && r.warnings.is_empty());
    let ours = parse_routes(&imported.text, Path::new("imported.toml"));
    assert_eq!(failing_tests(&ours), Vec::<String>::new());
    assert_eq!(ours.tests.len(), 2 * 3265);

    let hand_file = repo("tests/data/genesys-routes.toml");
    let hand = parse_routes(&std::fs::read_to_string(&hand_file).unwrap(), &hand_file);
    assert_eq!(hand.routes().len(), ours.routes().len());

    let mut requests = 0;
    let mut differences = Vec::new();
    let mut compare = |method: &str, path: &str, grants: Option<&[String]>| {
        requests += 1;
        let (a, b) = (
            decide(&hand, method, path, grants),
            decide(&ours, method, path, grants),
        );
        if a != b {
            differences.push(format!("{method} {path} {grants:?}: {a:?} vs {b:?}"));
        }
    };
    let mut words = std::collections::BTreeMap::<&str, usize>::new();
    for (i, route) in hand.routes().iter().enumerate() {
        let method = route.methods_label();
        let values: Vec<&str> = (0..route.params.len())
            .map(|k| SAMPLE_VALUES[(i + k) % SAMPLE_VALUES.len()])
            .collect();
        let mut path = route.path.to_string();
        for (name, value) in route.params.iter().zip(&values) {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        let held = needed(&route.access, &values, i);
        *words
            .entry(decide(&hand, &method, &path, Some(&held)).word)
            .or_default() += 1;
        compare(&method, &path, Some(&held));
        compare(&method, &path, Some(&[]));
        compare(&method, &path, None);
        if let Some(first) = held.first() {
            // A grant of the whole domain (`alerting` implies `alerting:…`).
            let domain = first.split(':').next().unwrap().to_string();
            compare(&method, &path, Some(&[domain]));
        }
        let other = if method == "GET" { "PUT" } else { "GET" };
        compare(other, &path, Some(&held));
        compare(&method, &format!("{path}/not-an-operation"), Some(&held));
    }
    compare("GET", "/api/v2", Some(&["*".to_string()]));
    compare("GET", "/api/v3/users", Some(&["*".to_string()]));
    println!(
        "genesys differential: {requests} requests, {} differences ({} routes; needed grants: {words:?})",
        differences.len(),
        hand.routes().len()
    );
    assert!(requests >= 1500);
    assert_eq!(
        words.get("allow"),
        Some(&hand.routes().len()),
        "every route allows a caller holding what it needs (the comparison is not all denials)"
    );
    assert!(
        differences.is_empty(),
        "{} differences, first: {:?}",
        differences.len(),
        differences.first()
    );
}

#[test]
fn github_import_loads_passes_check_and_routes_known_paths() {
    let Some(file) = support::fetched_data(GITHUB, GITHUB_SCRIPT) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("github-routes.toml");
    let run = permgate(&[
        "import-openapi",
        file.to_str().unwrap(),
        "--permissions",
        GITHUB_TEMPLATE,
        "--output",
        out.to_str().unwrap(),
    ]);
    let report = text(&run.stderr);
    assert!(run.status.success(), "{report}");
    let summary = report.lines().last().unwrap_or_default().to_string();
    println!("github import: {summary}");
    let written = std::fs::read_to_string(&out).unwrap();
    let again = permgate(&[
        "import-openapi",
        file.to_str().unwrap(),
        "--permissions",
        GITHUB_TEMPLATE,
    ]);
    assert_eq!(text(&again.stdout), written, "same input, same bytes");

    // The numbers, from the library (the CLI printed the same summary).
    let source: PermissionSource = GITHUB_TEMPLATE.parse().unwrap();
    let doc = std::fs::read_to_string(&file).unwrap();
    let r = import(&doc, &file, &source).unwrap().report;
    assert!(r.operations > 1000, "{summary}");
    assert!(r.routes + r.left_out.len() + 1 >= r.operations, "{summary}");
    assert!(summary.contains(&format!("{} operations: {} routes", r.operations, r.routes)));
    assert!(
        r.left_out
            .iter()
            .any(|(op, why)| op == "repos/compare-commits" && why.contains("inside")),
        "{{base}}...{{head}} cannot be a route: {:?}",
        r.left_out
    );

    let table = parse_routes(&written, &out);
    assert_eq!(table.routes().len(), r.routes);
    assert_eq!(failing_tests(&table), Vec::<String>::new());
    assert_eq!(table.tests.len(), r.tests);

    let checked = config_with_routes(&written);
    let check = permgate(&[
        "check",
        "--config",
        checked.path().join("permgate.toml").to_str().unwrap(),
    ]);
    assert!(
        check.status.success(),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    assert!(
        text(&check.stdout).starts_with(&format!("{} routes, {} tests passed", r.routes, r.tests)),
        "{}",
        text(&check.stdout)
    );

    let grant = |p: &str| vec![p.to_string()];
    for (method, path, route, need) in [
        (
            "GET",
            "/repos/octocat/hello-world/issues/42",
            "issues/get",
            "github:issues:issues:view",
        ),
        (
            "PATCH",
            "/repos/octocat/hello-world/issues/42",
            "issues/update",
            "github:issues:issues:edit",
        ),
        (
            "GET",
            "/repos/octocat/hello-world/pulls/7",
            "pulls/get",
            "github:pulls:pulls:view",
        ),
        (
            "DELETE",
            "/repos/octocat/hello-world",
            "repos/delete",
            "github:repos:repos:delete",
        ),
        (
            "GET",
            "/user",
            "users/get-authenticated",
            "github:users:user:view",
        ),
        (
            "GET",
            "/orgs/github/teams/justice-league",
            "teams/get-by-name",
            "github:teams:teams:view",
        ),
        (
            "GET",
            "/repos/octocat/hello-world/compare/main...dev",
            "repos/compare-commits-with-basehead",
            "github:repos:compare:view",
        ),
        (
            "GET",
            "/enterprises/acme/teams/core/memberships",
            "enterprise-team-memberships/list",
            "github:enterprise-team-memberships:memberships:view",
        ),
    ] {
        let e = |grants: Option<&[String]>| {
            let grants = grants.map(|g| Grants::from_lists("c", g, &[]).unwrap());
            let request = ExplainRequest::parse(method, path, []).unwrap();
            let x = explain(&table, &request, grants.as_ref());
            (
                x.route.map(|r| r.name.to_string()),
                x.word(),
                x.missing().map(<[String]>::to_vec),
            )
        };
        assert_eq!(
            e(Some(&grant(need))),
            (Some(route.to_string()), "allow", None),
            "{method} {path}"
        );
        assert_eq!(
            e(Some(&grant("github:gists:gists:view,edit,delete,add"))),
            (
                Some(route.to_string()),
                "deny",
                Some(vec![need.to_string()])
            ),
            "{method} {path}: another permission is not enough"
        );
        assert_eq!(e(None).1, "unauthenticated", "{method} {path}");
    }
    let everything = grant("*");
    for (method, path) in [
        ("GET", "/"), // left out: no static segment for {resource}
        ("GET", "/repos/octocat/hello-world/contents/a/b.txt"), // {path} is one segment
        ("PUT", "/repos/octocat/hello-world/issues/42"), // no such operation
        ("GET", "/no/such/api"),
    ] {
        assert_eq!(
            decide(&table, method, path, Some(&everything)),
            Outcome {
                word: "deny",
                route: None,
                missing: Vec::new()
            },
            "{method} {path}: default deny"
        );
    }
}

#[test]
fn a_failed_import_leaves_the_output_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("routes.toml");
    std::fs::write(&out, "# the routes in service\n").unwrap();
    let bad = dir.path().join("api.yaml");
    std::fs::write(
        &bad,
        "openapi: 3.0.0\ninfo: {title: t}\npaths:\n  /a: [get\n",
    )
    .unwrap();
    let run = permgate(&[
        "import-openapi",
        bad.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    let err = text(&run.stderr);
    assert!(err.contains(&format!("{}:", bad.display())), "{err}");
    assert!(err.contains("invalid YAML"), "{err}");
    assert!(
        err.split(&format!("{}:", bad.display()))
            .nth(1)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit())),
        "line number after the file name: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "# the routes in service\n"
    );

    let run = permgate(&[
        "import-openapi",
        bad.to_str().unwrap(),
        "--permissions",
        "tags",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(1));
    assert!(text(&run.stderr).contains("--permissions"));

    let good = dir.path().join("api.yaml");
    std::fs::write(
        &good,
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\nservers: [{url: 'https://x.example/v1'}]\npaths:\n  /items/{id}:\n    get:\n      operationId: item\n      x-permissions: {type: ALL, permissions: ['items:{id}:view']}\n    delete:\n      operationId: drop\n",
    )
    .unwrap();
    let run = permgate(&[
        "import-openapi",
        good.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stdout).is_empty(),
        "the file gets the routes, stdout nothing"
    );
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(
        written.contains("path = \"/v1/items/{id}\"\nrequire = [\"items:{id}:view\"]"),
        "{written}"
    );
    assert!(
        text(&run.stderr).contains("2 operations: 2 routes (1 authenticated only)"),
        "{}",
        text(&run.stderr)
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temporary file left: {leftovers:?}");
    let table = parse_routes(&written, &out);
    assert_eq!(failing_tests(&table), Vec::<String>::new());
    assert_eq!(
        decide(
            &table,
            "GET",
            "/v1/items/7",
            Some(&["items:7:view".to_string()])
        )
        .word,
        "allow"
    );
    assert_eq!(
        decide(
            &table,
            "GET",
            "/v1/items/7",
            Some(&["items:8:view".to_string()])
        )
        .word,
        "deny"
    );
}
