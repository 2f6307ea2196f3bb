//! The embedded grants file: tokens, Basic users (argon2), groups, the
//! implicit group `all`, denies, unknown credentials, reload.

use std::time::Duration;

use base64ct::Encoding;
use permgate::grants::{hash_password, hash_token};

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
name = "status"
methods = ["GET"]
path = "/status"
require = ["status:read"]
"#;

fn grants_text(viewer_allow: &str) -> String {
    let cheap = argon2::Params::new(8, 1, 1, None).unwrap();
    format!(
        r#"
[[subject]]
name = "viewer"
token_sha256 = "{viewer}"
allow = [{viewer_allow}]

[[subject]]
name = "admin"
token_sha256 = "{admin}"
groups = ["item-admins"]

[[subject]]
name = "ci"
basic_user = "ci"
password_hash = "{ci}"
groups = ["item-admins"]

[[group]]
name = "item-admins"
allow = ["items:item:*"]
deny = ["items:item:delete"]

[[group]]
name = "all"
allow = ["status:read"]
"#,
        viewer = hash_token("viewer-token"),
        admin = hash_token("admin-token"),
        ci = hash_password("ci-password", Some(cheap)).unwrap(),
    )
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64ct::Base64::encode_string(format!("{user}:{pass}").as_bytes())
    )
}

async fn status(gw: &RunningGateway, method: &str, path: &str, auth: Option<&str>) -> u16 {
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
    request(gw.addr, method, path, &headers, "").await.status
}

#[tokio::test]
async fn tokens_basic_users_groups_all_and_denies() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_file(&grants_text("\"items:item:view\""))
        .start();
    let viewer = Some("Bearer viewer-token");
    let admin = Some("Bearer admin-token");
    let ci = basic("ci", "ci-password");
    assert_eq!(status(&gw, "GET", "/items/1", viewer).await, 200);
    assert_eq!(
        backend
            .last()
            .unwrap()
            .header("x-authenticated-subject")
            .as_deref(),
        Some("viewer")
    );
    assert_eq!(status(&gw, "DELETE", "/items/1", viewer).await, 403);
    assert_eq!(
        status(&gw, "GET", "/items/1", admin).await,
        200,
        "through the group"
    );
    assert_eq!(
        status(&gw, "DELETE", "/items/1", admin).await,
        403,
        "the group's deny wins over its wildcard"
    );
    assert_eq!(
        status(&gw, "GET", "/status", viewer).await,
        200,
        "every subject is in `all`"
    );
    assert_eq!(status(&gw, "GET", "/items/1", Some(&ci)).await, 200);
    assert_eq!(
        backend
            .last()
            .unwrap()
            .header("x-authenticated-subject")
            .as_deref(),
        Some("ci")
    );
    assert_eq!(
        status(&gw, "GET", "/items/1", Some(&basic("ci", "wrong"))).await,
        401
    );
    assert_eq!(
        status(
            &gw,
            "GET",
            "/items/1",
            Some(&basic("nobody", "ci-password"))
        )
        .await,
        401
    );
    assert_eq!(
        status(&gw, "GET", "/items/1", Some("Bearer stolen")).await,
        401
    );
    assert_eq!(status(&gw, "GET", "/items/1", None).await, 401);
    assert_eq!(
        status(&gw, "GET", "/status", Some("Bearer stolen")).await,
        401,
        "`all` is for authenticated subjects only"
    );
}

#[tokio::test]
async fn an_edited_grants_file_applies_and_old_answers_do_not_survive() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_file(&grants_text("\"items:item:view\""))
        .start();
    let viewer = Some("Bearer viewer-token");
    assert_eq!(status(&gw, "GET", "/items/1", viewer).await, 200);
    let tmp = gw.dir.join(".grants.swp");
    std::fs::write(&tmp, grants_text("")).unwrap();
    std::fs::rename(&tmp, gw.dir.join("grants.toml")).unwrap();
    let revoked = eventually(Duration::from_secs(5), async || {
        status(&gw, "GET", "/items/1", viewer).await == 403
    })
    .await;
    assert!(
        revoked,
        "a revoked grant stops working without waiting for the cache ttl (60 s)"
    );
    // A broken grants file keeps the last good one serving.
    std::fs::write(&tmp, "[[subject]]\nname = \"x\"\n").unwrap();
    std::fs::rename(&tmp, gw.dir.join("grants.toml")).unwrap();
    let reported = eventually(Duration::from_secs(5), async || {
        let r = get(gw.admin, "/admin/routes", None).await.json();
        r["lastReloadError"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("grants.toml:2:"))
    })
    .await;
    assert!(reported);
    assert_eq!(status(&gw, "GET", "/status", viewer).await, 200);
}

#[tokio::test]
async fn admin_explain_answers_like_permgate_explain() {
    let backend = Backend::echo().await;
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_file(&grants_text("\"items:item:view\""))
        .start();
    let r = get(
        gw.admin,
        "/admin/explain?method=DELETE&path=/items/%2537&grant=items:item:*&deny=items:item:delete",
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(
        j["normalized"], "/items/7",
        "the query value is decoded once, then normalized"
    );
    assert_eq!(j["route"]["name"], "items.delete");
    assert_eq!(j["decision"], "deny");
    assert_eq!(j["status"], 403);
    assert_eq!(
        j["missingPermissions"],
        serde_json::json!(["items:item:delete"])
    );
    assert_eq!(j["requirements"][0]["check"], "denied by items:item:delete");
    let j = get(
        gw.admin,
        "/admin/explain?method=GET&path=/items/1&anonymous",
        None,
    )
    .await
    .json();
    assert_eq!(j["decision"], "unauthenticated");
    let j = get(
        gw.admin,
        "/admin/explain?method=GET&path=/items/..%2Fx",
        None,
    )
    .await
    .json();
    assert_eq!(
        (j["decision"].as_str(), j["status"].as_u64()),
        (Some("bad_request"), Some(400))
    );
    assert_eq!(
        get(gw.admin, "/admin/explain?method=GET", None)
            .await
            .status,
        400
    );
}
