//! `/metrics` and `/admin/coverage` move with traffic; the exposition passes
//! `promtool check metrics`; labels never carry ids, subjects or tokens.

use crate::support::*;

const ROUTES: &str = r#"
[[route]]
name = "items.get"
methods = ["GET"]
path = "/items/{id}"
require = ["items:item:view"]

[[route]]
name = "items.delete"
methods = ["DELETE"]
path = "/items/{id}"
require = ["items:item:delete"]

[[route]]
name = "reports.audit"
methods = ["GET"]
path = "/reports/{id}"
require = ["reports:report:view"]
mode = "audit"
"#;

const TOKEN: &str = "tok-metrics-5e1d9c";
const TOKEN_DOWN: &str = "tok-down-8a2b7f";

/// The value of a series, as a float.
fn value(text: &str, series: &str) -> Option<f64> {
    metrics::series(text, series)
}

async fn scrape(gw: &RunningGateway) -> String {
    let r = get(gw.admin, "/metrics", None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        r.header("content-type")
    );
    String::from_utf8(r.body.to_vec()).unwrap()
}

async fn traffic() -> (RunningGateway, Backend, PermissionApi) {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.set(
        &format!("Bearer {TOKEN}"),
        ApiReply::grants("alice-subject", &["items:item:view"], &[]),
    );
    api.set(&format!("Bearer {TOKEN_DOWN}"), ApiReply::raw(500, "{}"));
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let auth = format!("Bearer {TOKEN}");
    let down = format!("Bearer {TOKEN_DOWN}");
    let with = |t: &str| vec![("authorization", t.to_string())];
    for (method, path, headers, status) in [
        ("GET", "/items/4711", with(&auth), 200),
        ("GET", "/items/4712", with(&auth), 200),
        ("DELETE", "/items/4711", with(&auth), 403),
        ("GET", "/items/4711", vec![], 401),
        ("GET", "/items/4711", with(&down), 503),
        ("GET", "/reports/991", with(&auth), 200),
        ("GET", "/nowhere/4711?secret=q", with(&auth), 403),
        ("GET", "/nowhere/4712", with(&auth), 403),
        ("GET", "/a/%2e%2e/b", with(&auth), 400),
    ] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = request(gw.addr, method, path, &h, "").await;
        assert_eq!(r.status, status, "{method} {path}");
    }
    (gw, backend, api)
}

#[tokio::test]
async fn counters_move_with_traffic_and_labels_name_routes_only() {
    let (gw, _backend, _api) = traffic().await;
    let text = scrape(&gw).await;
    let series = |s: &str| value(&text, s);
    assert_eq!(
        series(r#"permgate_requests_total{route="items.get",decision="allow",status="200"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        series(r#"permgate_requests_total{route="items.delete",decision="deny",status="403"}"#),
        Some(1.0)
    );
    assert_eq!(
        series(
            r#"permgate_requests_total{route="items.get",decision="unauthenticated",status="401"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        series(r#"permgate_requests_total{route="items.get",decision="unavailable",status="503"}"#),
        Some(1.0)
    );
    assert_eq!(
        series(
            r#"permgate_requests_total{route="reports.audit",decision="would_deny",status="200"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        series(r#"permgate_requests_total{route="unmatched",decision="deny",status="403"}"#),
        Some(2.0)
    );
    assert_eq!(
        series(r#"permgate_requests_total{route="unmatched",decision="bad_request",status="400"}"#),
        Some(1.0)
    );
    assert_eq!(
        series(r#"permgate_request_duration_seconds_count"#),
        Some(9.0)
    );
    assert!(series(r#"permgate_upstream_duration_seconds_count"#) >= Some(3.0));
    // One call for the good token, one for the failing one; the rest hit.
    assert_eq!(
        series(r#"permgate_permission_api_requests_total{outcome="granted"}"#),
        Some(1.0)
    );
    assert_eq!(
        series(r#"permgate_permission_api_requests_total{outcome="error_status"}"#),
        Some(1.0)
    );
    assert_eq!(
        series(r#"permgate_grants_cache_total{result="miss"}"#),
        Some(2.0),
        "{text}"
    );
    assert!(series(r#"permgate_grants_cache_total{result="hit"}"#) >= Some(3.0));
    assert_eq!(series("permgate_routes"), Some(3.0));
    assert_eq!(
        series("permgate_cached_credentials").map(|v| v >= 0.0),
        Some(true)
    );
    assert!(text.contains("permgate_build_info{version="));
    for secret in [
        "4711",
        "4712",
        "991",
        "alice-subject",
        TOKEN,
        TOKEN_DOWN,
        "secret=q",
        "127.0.0.1",
    ] {
        assert!(
            !text.contains(secret),
            "{secret:?} in the exposition:\n{text}"
        );
    }

    // A reload counts, and counts survive it for unchanged route names.
    std::fs::write(
        gw.dir.join("routes.toml"),
        format!("{ROUTES}\n[[route]]\nname = \"new\"\npath = \"/new\"\n"),
    )
    .unwrap();
    let r = request(gw.admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(r.status, 200);
    let text = scrape(&gw).await;
    assert_eq!(
        value(&text, r#"permgate_config_reloads_total{result="success"}"#),
        Some(1.0)
    );
    assert_eq!(value(&text, "permgate_routes"), Some(4.0));
    assert_eq!(
        value(
            &text,
            r#"permgate_requests_total{route="items.get",decision="allow",status="200"}"#
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn the_exposition_passes_promtool() {
    let Some(promtool) = tool("promtool") else {
        return;
    };
    let (gw, _backend, _api) = traffic().await;
    let text = scrape(&gw).await;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn coverage_counts_routes_and_unmatched_shapes() {
    let (gw, _backend, _api) = traffic().await;
    let j = get(gw.admin, "/admin/coverage", None).await.json();
    assert!(j["since"].is_string());
    let route = |name: &str| {
        j["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {j}"))
    };
    let get_route = route("items.get");
    assert_eq!(
        (
            get_route["allow"].as_u64(),
            get_route["unauthenticated"].as_u64(),
            get_route["deny"].as_u64()
        ),
        (Some(2), Some(1), Some(0))
    );
    assert_eq!(get_route["methods"], "GET");
    assert_eq!(get_route["path"], "/items/{id}");
    assert!(get_route["lastSeen"].is_string());
    assert_eq!(route("items.delete")["deny"], 1);
    assert_eq!(route("reports.audit")["wouldDeny"], 1);
    let unmatched = j["unmatched"].as_array().unwrap();
    assert_eq!(unmatched.len(), 1, "{j}");
    assert_eq!(unmatched[0]["method"], "GET");
    assert_eq!(unmatched[0]["shape"], "/nowhere/{id}");
    assert_eq!(unmatched[0]["count"], 2);
    // One of the two paths (the workers may have seen either first), and
    // never the query string the first one carried.
    let example = unmatched[0]["example"].as_str().unwrap();
    assert!(
        ["/nowhere/4711", "/nowhere/4712"].contains(&example),
        "{example}"
    );

    // The admin token guards coverage; /metrics stays open like the probes.
    drop(gw);
    let token_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // "test"
    let gw = GatewayBuilder::new(ROUTES)
        .admin(&format!("token_sha256 = \"{token_hash}\""))
        .start();
    assert_eq!(get(gw.admin, "/admin/coverage", None).await.status, 401);
    assert_eq!(
        get(gw.admin, "/admin/coverage", Some("test")).await.status,
        200
    );
    assert_eq!(get(gw.admin, "/metrics", None).await.status, 200);
}
