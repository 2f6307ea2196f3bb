//! Hot reload of the routes file: every trigger, broken files, reloads under
//! load, and the grants cache surviving a reload.

use std::path::Path;
use std::time::Duration;

use crate::support::*;

/// `viewer` may GET items.
pub const TABLE_A: &str = r#"
[[route]]
name = "items.get"
methods = ["GET"]
path = "/items/{id}"
require = ["items:item:view"]

[[route]]
name = "stable"
methods = ["GET"]
path = "/stable"
require = ["items:item:view"]
"#;

/// Now GET items needs admin; `/stable` answers the same.
pub const TABLE_B: &str = r#"
[[route]]
name = "items.get"
methods = ["GET"]
path = "/items/{id}"
require = ["items:item:admin"]

[[route]]
name = "stable"
methods = ["GET"]
path = "/stable"
require = ["items:item:view"]
"#;

const BROKEN: &str = "[[route]]\nmethods = [\"GET\"]\npath = \"/items/{id}\"\nrequires = [\"x\"]\n";

/// A SIGHUP reaches every gateway of this test process. Tests that send one
/// hold this for writing; tests that a stray reload would disturb (counted
/// reloads, "nothing reloads on its own") hold it for reading.
static SIGHUP: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

async fn setup(
    b: impl FnOnce(GatewayBuilder) -> GatewayBuilder,
) -> (Backend, PermissionApi, RunningGateway) {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.grant("viewer", &["items:item:view"]);
    let gw = b(GatewayBuilder::new(TABLE_A)
        .backend(backend.addr)
        .grants_url(api.url()))
    .start();
    (backend, api, gw)
}

async fn status(gw: &RunningGateway) -> u16 {
    get(gw.addr, "/items/1", Some("viewer")).await.status
}

/// Polls until `/items/1` answers `want` (5 s deadline).
async fn becomes(gw: &RunningGateway, want: u16) -> bool {
    eventually(Duration::from_secs(5), async || status(gw).await == want).await
}

async fn admin_routes(gw: &RunningGateway) -> serde_json::Value {
    get(gw.admin, "/admin/routes", None).await.json()
}

fn write_via_rename(dir: &Path, text: &str) {
    let tmp = dir.join(".routes.toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("routes.toml")).unwrap();
}

#[tokio::test]
async fn an_in_place_write_is_applied() {
    let (_b, _api, gw) = setup(|b| b).await;
    assert_eq!(status(&gw).await, 200);
    std::fs::write(gw.dir.join("routes.toml"), TABLE_B).unwrap();
    assert!(
        becomes(&gw, 403).await,
        "the new table applies without a restart"
    );
}

#[tokio::test]
async fn a_write_then_rename_is_applied() {
    let (_b, _api, gw) = setup(|b| b).await;
    assert_eq!(status(&gw).await, 200);
    write_via_rename(&gw.dir, TABLE_B);
    assert!(becomes(&gw, 403).await);
    write_via_rename(&gw.dir, TABLE_A);
    assert!(becomes(&gw, 200).await, "and back");
}

#[tokio::test]
async fn a_configmap_symlink_swap_is_applied() {
    let (_b, _api, gw) = setup(|b| b.configmap_layout()).await;
    assert_eq!(status(&gw).await, 200);
    // What the kubelet does: a new timestamped folder, a temp symlink to it,
    // renamed over ..data in one step.
    std::fs::create_dir(gw.dir.join("..v2")).unwrap();
    std::fs::write(gw.dir.join("..v2/routes.toml"), TABLE_B).unwrap();
    std::os::unix::fs::symlink("..v2", gw.dir.join("..data_tmp")).unwrap();
    std::fs::rename(gw.dir.join("..data_tmp"), gw.dir.join("..data")).unwrap();
    std::fs::remove_dir_all(gw.dir.join("..v1")).unwrap();
    assert!(becomes(&gw, 403).await);
}

/// Sends SIGHUP to this process (which runs the gateways under test) and
/// waits until it has arrived.
async fn sighup_self(hup: &mut tokio::signal::unix::Signal) {
    use rustix::process::{Signal, getpid, kill_process};
    kill_process(getpid(), Signal::HUP).unwrap();
    tokio::time::timeout(Duration::from_secs(5), hup.recv())
        .await
        .expect("SIGHUP arrives");
}

/// A SIGHUP listener of the test itself, registered before any SIGHUP is
/// sent, so the signal can never take its default action (ending the test
/// process) whatever the gateway has registered by then.
fn hup_listener() -> tokio::signal::unix::Signal {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap()
}

#[tokio::test]
async fn sighup_reloads() {
    let mut hup = hup_listener();
    let _only_sender = SIGHUP.write().await;
    let (_b, _api, gw) = setup(|b| b.routes("watch = false")).await;
    assert_eq!(status(&gw).await, 200);
    write_via_rename(&gw.dir, TABLE_B);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        status(&gw).await,
        200,
        "watch = false: nothing reloads on its own"
    );
    sighup_self(&mut hup).await;
    assert!(becomes(&gw, 403).await, "SIGHUP applied the new table");
}

/// Changes the main config file without changing what it means.
fn touch_main_config(dir: &Path) -> String {
    let path = dir.join("permgate.toml");
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{original}# edited while running\n")).unwrap();
    original
}

#[tokio::test]
async fn admin_reload_reports_a_main_config_change() {
    let _no_stray_reload = SIGHUP.read().await;
    let (_b, _api, gw) = setup(|b| b.routes("watch = false")).await;
    let reload = async || request(gw.admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(admin_routes(&gw).await["restartNeeded"], false);

    let original = touch_main_config(&gw.dir);
    let r = reload().await;
    assert_eq!(r.status, 200);
    assert_eq!(
        admin_routes(&gw).await["restartNeeded"],
        true,
        "the reload saw the changed main config"
    );
    assert_eq!(r.json()["restartNeeded"], true, "and its answer says so");
    assert_eq!(status(&gw).await, 200, "routes still served");

    write_via_rename(&gw.dir, BROKEN);
    let r = reload().await;
    assert_eq!(
        (r.status, &r.json()["restartNeeded"]),
        (422, &serde_json::Value::Bool(true)),
        "a failed reload says it too"
    );

    std::fs::write(gw.dir.join("permgate.toml"), original).unwrap();
    write_via_rename(&gw.dir, TABLE_A);
    let r = reload().await;
    assert_eq!(r.json()["restartNeeded"], false, "the change was undone");
    assert_eq!(admin_routes(&gw).await["restartNeeded"], false);
}

#[tokio::test]
async fn sighup_reports_a_main_config_change() {
    let mut hup = hup_listener();
    let _only_sender = SIGHUP.write().await;
    let (_b, _api, gw) = setup(|b| b.routes("watch = false")).await;
    assert_eq!(admin_routes(&gw).await["restartNeeded"], false);
    touch_main_config(&gw.dir);
    sighup_self(&mut hup).await;
    let seen = eventually(Duration::from_secs(5), async || {
        admin_routes(&gw).await["restartNeeded"] == true
    })
    .await;
    assert!(seen, "the reload on SIGHUP saw the changed main config");
    assert_eq!(status(&gw).await, 200, "routes still served");
}

#[tokio::test]
async fn admin_reload_and_broken_files() {
    let _no_stray_reload = SIGHUP.read().await;
    let (_b, _api, gw) = setup(|b| b.routes("watch = false")).await;
    let before = admin_routes(&gw).await;
    assert_eq!(before["routes"], 2);
    assert_eq!(before["lastReloadError"], serde_json::Value::Null);
    assert_eq!(before["sha256"].as_str().unwrap().len(), 64);

    write_via_rename(&gw.dir, BROKEN);
    let r = request(gw.admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(r.status, 422);
    let err = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("routes.toml:4:1") && err.contains("unknown field `requires`"),
        "{err}"
    );
    assert_eq!(status(&gw).await, 200, "the old table keeps serving");
    let after = admin_routes(&gw).await;
    assert_eq!(after["lastReloadError"]["line"], 4);
    assert_eq!(
        after["sha256"], before["sha256"],
        "still the old file's table"
    );

    write_via_rename(&gw.dir, TABLE_B);
    let r = request(gw.admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(
        (j["routes"].as_u64(), j["changed"].as_bool()),
        (Some(2), Some(true))
    );
    assert_eq!(status(&gw).await, 403);
    let fixed = admin_routes(&gw).await;
    assert_eq!(
        fixed["lastReloadError"],
        serde_json::Value::Null,
        "fixing the file clears the error"
    );
    assert_ne!(fixed["sha256"], before["sha256"]);
    assert_eq!(fixed["reloads"]["failed"], 1);

    let r = request(gw.admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(
        r.json()["changed"],
        false,
        "an unchanged file is not swapped"
    );
    assert_eq!(
        request(gw.admin, "GET", "/admin/reload", &[], "")
            .await
            .status,
        405
    );
}

/// `TABLE_A` and `n` more routes, each with its own path and permission.
fn large_table(n: usize) -> String {
    let mut out = String::from(TABLE_A);
    for i in 0..n {
        let (svc, res) = (i / 100, i % 100);
        out.push_str(&format!(
            "[[route]]\nname = \"r{i}\"\nmethods = [\"GET\"]\npath = \"/api/s{svc}/r{res}/{{id}}\"\nrequire = [\"s{svc}:r{res}:view\"]\n"
        ));
    }
    out
}

#[tokio::test]
async fn probes_answer_while_a_reload_is_in_progress() {
    use tokio::io::AsyncWriteExt;
    let _no_stray_reload = SIGHUP.read().await;
    let (_b, _api, gw) = setup(|b| b.routes("watch = false")).await;
    // A FIFO in place of the routes file: the reload's read of it ends only
    // when the test closes the write end, so the test knows that a reload
    // is in progress, and holds it there, however fast the machine.
    let routes = gw.dir.join("routes.toml");
    std::fs::remove_file(&routes).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&routes)
        .status()
        .unwrap();
    assert!(made.success());
    let admin = gw.admin;
    let reload =
        tokio::spawn(async move { request(admin, "POST", "/admin/reload", &[], "").await });
    // Opening the write end (without blocking) works once a reader has it open.
    let mut writer = None;
    let opened = eventually(Duration::from_secs(5), async || {
        writer = tokio::net::unix::pipe::OpenOptions::new()
            .open_sender(&routes)
            .ok();
        writer.is_some()
    })
    .await;
    assert!(opened, "the reload opens the routes file");
    let mut writer = writer.unwrap();

    for path in ["/healthz", "/readyz", "/admin/routes"] {
        let r = tokio::time::timeout(Duration::from_secs(3), get(gw.admin, path, None))
            .await
            .unwrap_or_else(|_| panic!("{path} waited for the reload"));
        assert_eq!(r.status, 200, "{path}");
    }
    assert!(
        !reload.is_finished(),
        "the reload was in progress all along"
    );

    writer
        .write_all(large_table(20_000).as_bytes())
        .await
        .unwrap();
    drop(writer);
    let r = reload.await.unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["routes"], 20_002);
    assert_eq!(admin_routes(&gw).await["routes"], 20_002);
    assert_eq!(get(gw.admin, "/healthz", None).await.status, 200);
    // A plain file again, so that nothing else can wait on the FIFO.
    write_via_rename(&gw.dir, TABLE_A);
}

#[tokio::test]
async fn a_broken_file_on_disk_is_reported_until_fixed() {
    let (_b, _api, gw) = setup(|b| b).await;
    write_via_rename(
        &gw.dir,
        "[[route]]\npath = \"/items/{id}\"\nrequire = [\"not a permission\"]\n",
    );
    let reported = eventually(Duration::from_secs(5), async || {
        !admin_routes(&gw).await["lastReloadError"].is_null()
    })
    .await;
    assert!(reported);
    let err = admin_routes(&gw).await["lastReloadError"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(err.contains("routes.toml:3:"), "{err}");
    assert_eq!(status(&gw).await, 200, "old decisions");
    write_via_rename(&gw.dir, TABLE_B);
    assert!(becomes(&gw, 403).await);
    assert!(admin_routes(&gw).await["lastReloadError"].is_null());
}

#[tokio::test]
async fn a_main_config_change_is_reported_not_applied() {
    let (_b, _api, gw) = setup(|b| b).await;
    let path = gw.dir.join("permgate.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("access_log = true", "access_log = false"),
    )
    .unwrap();
    let seen = eventually(Duration::from_secs(5), async || {
        admin_routes(&gw).await["restartNeeded"] == true
    })
    .await;
    assert!(seen, "the change is detected");
    assert_eq!(status(&gw).await, 200);
}

#[tokio::test]
async fn cached_grants_survive_a_reload() {
    let (_b, api, gw) = setup(|b| b.routes("watch = false")).await;
    assert_eq!(get(gw.addr, "/stable", Some("viewer")).await.status, 200);
    assert_eq!(api.calls(), 1);
    write_via_rename(&gw.dir, TABLE_B);
    assert_eq!(
        request(gw.admin, "POST", "/admin/reload", &[], "")
            .await
            .status,
        200
    );
    assert_eq!(status(&gw).await, 403);
    assert_eq!(get(gw.addr, "/stable", Some("viewer")).await.status, 200);
    assert_eq!(
        api.calls(),
        1,
        "no permission API call caused by the reload"
    );
}

#[tokio::test]
async fn admin_token_protects_admin_endpoints() {
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(b"s3cret")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (_b, _api, gw) = setup(|b| b.admin(&format!("token_sha256 = \"{digest}\""))).await;
    let r = get(gw.admin, "/admin/routes", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"permgate-admin\"")
    );
    assert_eq!(
        get(gw.admin, "/admin/routes", Some("wrong")).await.status,
        401
    );
    assert_eq!(
        request(gw.admin, "POST", "/admin/reload", &[], "")
            .await
            .status,
        401
    );
    assert_eq!(
        get(gw.admin, "/admin/routes", Some("s3cret")).await.status,
        200
    );
    assert_eq!(
        get(gw.admin, "/healthz", None).await.status,
        200,
        "health checks need no token"
    );
}

#[tokio::test]
async fn fifty_reloads_under_load_drop_nothing() {
    let (_b, _api, gw) = setup(|b| b.routes("watch = false")).await;
    let addr = gw.addr;
    let clients: Vec<_> = (0..4)
        .map(|_| tokio::spawn(async move { keep_alive_loop(addr, 2000).await }))
        .collect();
    for i in 0..50 {
        write_via_rename(&gw.dir, if i % 2 == 0 { TABLE_B } else { TABLE_A });
        let r = request(gw.admin, "POST", "/admin/reload", &[], "").await;
        assert_eq!(r.status, 200, "reload {i}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut seen = std::collections::BTreeMap::new();
    for c in clients {
        for (status, n) in c.await.unwrap() {
            *seen.entry(status).or_insert(0) += n;
        }
    }
    let total: usize = seen.values().sum();
    assert_eq!(total, 8000, "every request got an answer: {seen:?}");
    assert!(
        seen.keys().all(|s| *s == 200 || *s == 403),
        "only the two tables' answers: {seen:?}"
    );
}

/// Sends `n` GETs for `/items/1` and `/stable` on one keep-alive connection
/// (reconnecting is a failure) and counts the statuses.
async fn keep_alive_loop(addr: std::net::SocketAddr, n: usize) -> Vec<(u16, usize)> {
    let mut conn = client::KeepAlive::connect(addr).await;
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..n {
        let path = if i % 2 == 0 { "/items/1" } else { "/stable" };
        let status = conn.get(path, "viewer").await.status;
        if path == "/stable" {
            assert_eq!(status, 200, "/stable answers the same in both tables");
        }
        *counts.entry(status).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}
