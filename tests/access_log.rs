//! The access log's provenance fields: route, decision, how the grants were
//! found, the missing permissions of a 403, and the W3C trace id (the
//! `traceparent` header itself reaches the backend unchanged).
//!
//! A test binary of its own: it installs a global subscriber.

#[path = "support/mod.rs"]
mod support;

use support::*;

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
"#;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The fields of the JSON access-log event of request `id`.
fn event(text: &str, id: &str) -> serde_json::Value {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["target"] == "permgate::access" && e["fields"]["request_id"] == id)
        .map(|e| e["fields"].clone())
        .unwrap_or_else(|| panic!("no access event for {id}"))
}

#[tokio::test]
async fn access_events_carry_route_decision_cache_missing_and_trace() {
    let capture = logs::capture();
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.grant("viewer", &["items:item:view"]);
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let auth = ("authorization", "Bearer viewer");
    for (id, method, headers) in [
        ("req-first", "GET", vec![auth, ("traceparent", TRACEPARENT)]),
        ("req-again", "GET", vec![auth]),
        ("req-denied", "DELETE", vec![auth]),
        ("req-anon", "GET", vec![]),
    ] {
        let mut h = headers.clone();
        h.push(("x-request-id", id));
        request(gw.addr, method, "/items/7", &h, "").await;
    }
    assert_eq!(
        backend.requests()[0].header("traceparent").as_deref(),
        Some(TRACEPARENT),
        "forwarded unchanged"
    );
    let ok = eventually(std::time::Duration::from_secs(5), async || {
        capture.text().contains("req-anon")
    })
    .await;
    assert!(ok, "the last access event was written");
    let text = capture.text();
    let first = event(&text, "req-first");
    assert_eq!(first["route"], "items.get");
    assert_eq!(first["decision"], "allow");
    assert_eq!(first["cache"], "miss");
    assert_eq!(first["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(first["missing"], "-");
    let again = event(&text, "req-again");
    assert_eq!(again["cache"], "hit");
    assert_eq!(again["trace_id"], "-");
    let denied = event(&text, "req-denied");
    assert_eq!(denied["decision"], "deny");
    assert_eq!(denied["status"], 403);
    assert_eq!(denied["missing"], "items:item:delete");
    let anon = event(&text, "req-anon");
    assert_eq!(anon["decision"], "unauthenticated");
    assert_eq!(anon["cache"], "none", "no lookup without credentials");
}
