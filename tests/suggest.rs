//! `permgate suggest` against a running gateway in audit mode: its output,
//! appended to the routes file, passes `permgate check`, and after a reload
//! the requests no route matched before match the suggested routes.

#[path = "support/mod.rs"]
mod support;

use support::cli::{run as permgate, text};

use std::net::SocketAddr;
use std::path::Path;

use permgate::grants::hash_token;
use serde_json::Value;
use support::*;

const ROUTES: &str = r#"default = "deny"
mode = "audit"

[[route]]
name = "widgets.list"
methods = ["GET"]
path = "/api/widgets"
require = ["widgets:view"]

[[route]]
name = "widgets.create"
methods = ["POST"]
path = "/api/widgets"
require = ["widgets:add"]

[[route]]
name = "gadgets.list"
methods = ["GET"]
path = "/api/gadgets"
require = ["gadgets:view"]
"#;

fn grants() -> String {
    format!(
        "[[subject]]\nname = \"viewer\"\ntoken_sha256 = \"{}\"\nallow = [\"widgets:view\"]\n",
        hash_token("viewer-token")
    )
}

/// `permgate suggest` against the gateway's admin listener; its stdout.
fn suggest_from(gw: &RunningGateway) -> String {
    let config = gw.dir.join("permgate.toml");
    let admin = gw.admin.to_string();
    let out = permgate(&[
        "suggest",
        "--config",
        config.to_str().unwrap(),
        "--admin",
        &admin,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    stdout
}

async fn send(gw: &RunningGateway, method: &str, path: &str) -> u16 {
    let auth = [("authorization", "Bearer viewer-token")];
    request(gw.addr, method, path, &auth, "").await.status
}

async fn coverage(admin: SocketAddr) -> Value {
    get(admin, "/admin/coverage", None).await.json()
}

fn route_counts(c: &Value, name: &str) -> Option<u64> {
    c["routes"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
        .map(|r| {
            ["allow", "deny", "unauthenticated", "wouldDeny"]
                .iter()
                .map(|k| r[k].as_u64().unwrap_or(0))
                .sum()
        })
}

fn unmatched_count(c: &Value, method: &str, shape: &str) -> u64 {
    c["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["method"] == method && u["shape"] == shape)
        .and_then(|u| u["count"].as_u64())
        .unwrap_or(0)
}

#[tokio::test]
async fn suggested_routes_pass_check_and_match_the_unmatched_traffic_after_a_reload() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_file(&grants())
        .start();
    assert_eq!(send(&gw, "GET", "/api/widgets").await, 200);
    for id in 1..=4 {
        // Audit mode forwards what matches no route.
        assert_eq!(send(&gw, "GET", &format!("/api/widgets/{id}")).await, 200);
    }
    assert_eq!(send(&gw, "GET", "/api/gizmos").await, 200);
    assert_eq!(send(&gw, "DELETE", "/api/widgets/7").await, 200);
    assert_eq!(send(&gw, "GET", "/api/widgets/3/history").await, 200);

    let config = gw.dir.join("permgate.toml");
    let suggested = suggest_from(&gw);

    // The item route takes the access of the route of its parent path;
    // /api/gizmos that of its sibling /api/widgets.
    let item = "[[route]]\nname = \"widget.get\"\nmethods = [\"GET\"]\npath = \"/api/widgets/{widgetId}\"\nrequire = [\"widgets:view\"]\n";
    assert!(suggested.contains(item), "{suggested}");
    assert!(
        suggested.contains(
            "# access copied from \"widgets.list\" (line 7), the GET route of its parent path"
        ),
        "{suggested}"
    );
    let gizmos = "[[route]]\nname = \"gizmos.get\"\nmethods = [\"GET\"]\npath = \"/api/gizmos\"\nrequire = [\"widgets:view\"]\n";
    assert!(suggested.contains(gizmos), "{suggested}");
    // No DELETE route to copy from: printed commented out, with a TODO.
    assert!(
        suggested.contains("# TODO: no route DELETE /api/widgets/… has a require to copy"),
        "{suggested}"
    );
    assert!(
        suggested.contains("# [[route]]\n# name = \"widget.delete\"\n# methods = [\"DELETE\"]\n# path = \"/api/widgets/{widgetId}\"\n# require = []\n"),
        "{suggested}"
    );
    assert!(
        suggested.contains("# path = \"/api/widgets/{widgetId}/history\""),
        "{suggested}"
    );
    assert!(
        suggested.contains("# Routes with no traffic since ")
            && suggested.contains("#   \"gadgets.list\" (line 19): GET /api/gadgets\n"),
        "{suggested}"
    );
    assert!(
        !suggested.contains("\"widgets.list\" (line 7): GET"),
        "it had traffic"
    );

    // Appended to the routes file, it passes check (and lint has no warning).
    let routes = gw.dir.join("routes.toml");
    append(&routes, &suggested);
    let out = permgate(&[
        "check",
        "--config",
        config.to_str().unwrap(),
        "--lint=strict",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).starts_with("5 routes,"),
        "{}",
        text(&out.stdout)
    );

    let r = request(gw.admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["routes"], 5);

    let before = coverage(gw.admin).await;
    assert_eq!(unmatched_count(&before, "GET", "/api/widgets/{id}"), 4);
    assert_eq!(send(&gw, "GET", "/api/widgets/9").await, 200);
    assert_eq!(send(&gw, "GET", "/api/gizmos").await, 200);
    assert_eq!(send(&gw, "DELETE", "/api/widgets/8").await, 200);
    let after = coverage(gw.admin).await;
    assert_eq!(route_counts(&after, "widget.get"), Some(1), "{after}");
    assert_eq!(route_counts(&after, "gizmos.get"), Some(1), "{after}");
    assert_eq!(unmatched_count(&after, "GET", "/api/widgets/{id}"), 4);
    assert_eq!(unmatched_count(&after, "GET", "/api/gizmos"), 1);
    // The commented-out DELETE route changed nothing: still the default.
    assert_eq!(unmatched_count(&after, "DELETE", "/api/widgets/{id}"), 2);

    // Asked again, nothing new to suggest for what now matches.
    let again = suggest_from(&gw);
    assert!(
        again.contains(" is now matched by \"widget.get\""),
        "{again}"
    );
    // The deeper shape now has a parent route to take its access from.
    assert_eq!(again.matches("\n[[route]]").count(), 1, "{again}");
    assert!(
        again.contains("# access copied from \"widget.get\" (line 30), the GET route of its parent path: check it\n[[route]]\nname = \"widget.history.get\""),
        "{again}"
    );
}

#[test]
fn suggest_reads_a_saved_coverage_file_and_says_why_the_admin_listener_failed() {
    // An address nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("permgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"{closed}\"\n\
         [upstreams.default]\nurl = \"http://127.0.0.1:9\"\n\
         [grants]\nsource = \"http\"\nurl = \"http://127.0.0.1:9/grants\"\n\
         [routes]\nfile = \"routes.toml\"\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("routes.toml"), ROUTES).unwrap();
    let saved = dir.path().join("coverage.json");
    std::fs::write(
        &saved,
        r#"{"since": "2025-05-02T09:00:00.000Z", "routes": [],
            "unmatched": [{"method": "PUT", "shape": "/api/widgets/{id}", "count": 2,
                           "example": "/api/widgets/5"}]}"#,
    )
    .unwrap();
    let out = permgate(&[
        "suggest",
        "--config",
        config.to_str().unwrap(),
        "--coverage",
        saved.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("# PUT /api/widgets/{id}: 2 requests, e.g. /api/widgets/5"),
        "{stdout}"
    );
    assert!(
        stdout.contains("# path = \"/api/widgets/{widgetId}\""),
        "{stdout}"
    );

    // Nothing listens on the configured admin address.
    let out = permgate(&["suggest", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!("permgate: GET http://{closed}/admin/coverage: ")),
        "{err}"
    );
}

fn append(file: &Path, more: &str) {
    let mut text = std::fs::read_to_string(file).unwrap();
    text.push_str(more);
    // Write and rename, as the reload docs advise.
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}
