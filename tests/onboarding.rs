//! README "Onboarding an API", end to end through the real binary, on the
//! FlexDeploy-style example (config/flexdeploy with its openapi.yaml) in
//! front of the example credential API: import, check and lint, run in
//! audit mode, watch /admin/, suggest, complete the suggestion, enforce.

#[path = "support/mod.rs"]
mod support;

use support::cli::repo;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use base64ct::Encoding;
use serde_json::Value;
use support::*;

const CREDENTIAL: &str = "/flexdeploy/rest/v2/administration/security/credential";

fn permgate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_permgate"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("permgate runs")
}

/// Runs `permgate` in `dir`, asserts it succeeded, returns its stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = permgate(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "permgate {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `permgate run`, stopped when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn edit(file: &Path, change: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(file).unwrap();
    // Write and rename, as the reload docs advise.
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, change(text)).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

async fn call(addr: SocketAddr, method: &str, path: &str, auth: &str, body: &str) -> u16 {
    let mut headers = vec![("authorization", auth)];
    if !body.is_empty() {
        headers.push(("content-type", "application/json"));
    }
    request(addr, method, path, &headers, body.to_string())
        .await
        .status
}

fn route<'a>(coverage: &'a Value, name: &str) -> &'a Value {
    coverage["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no route {name} in {coverage}"))
}

#[tokio::test]
async fn import_check_audit_suggest_enforce() {
    // The API, as it runs: the example credential API.
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = api_listener.local_addr().unwrap();
    tokio::spawn(
        permgate::demo::api::ExampleApi::new().serve(api_listener, std::future::pending()),
    );

    // The example folder, with its addresses moved to free ports.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for f in ["permgate.toml", "grants.toml", "openapi.yaml"] {
        std::fs::copy(repo(&format!("config/flexdeploy/{f}")), d.join(f)).unwrap();
    }
    let (port, admin_port) = (support::redis::free_port(), support::redis::free_port());
    edit(&d.join("permgate.toml"), |t| {
        t.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
            .replace("127.0.0.1:9090", &format!("127.0.0.1:{admin_port}"))
            .replace("http://127.0.0.1:8081", &format!("http://{api_addr}"))
    });
    let gateway = SocketAddr::from(([127, 0, 0, 1], port));
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_port));

    // 1. Import the API description.
    ok(
        d,
        &["import-openapi", "openapi.yaml", "--output", "routes.toml"],
    );
    // 2. Start in audit mode; check and lint.
    edit(&d.join("routes.toml"), |t| {
        t.replacen(
            "default = \"deny\"\n",
            "default = \"deny\"\nmode = \"audit\"\n",
            1,
        )
    });
    let checked = ok(d, &["check", "--config", "permgate.toml", "--lint=strict"]);
    assert!(checked.starts_with("4 routes, 8 tests passed"), "{checked}");
    assert!(checked.contains("lint: 0 warnings"), "{checked}");

    // 3. Run it.
    let child = Command::new(env!("CARGO_BIN_EXE_permgate"))
        .current_dir(d)
        .args(["run", "--config", "permgate.toml"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);
    let up = eventually(Duration::from_secs(10), async || {
        tokio::net::TcpStream::connect(admin).await.is_ok()
            && tokio::net::TcpStream::connect(gateway).await.is_ok()
    })
    .await;
    assert!(up, "permgate run started");

    // Traffic, as the API's callers send it.
    let reader = "Bearer flex-reader";
    let bot = format!(
        "Basic {}",
        base64ct::Base64::encode_string(b"deploy-bot:deploy-bot-password")
    );
    let item = format!("{CREDENTIAL}/11104");
    let search = format!("{CREDENTIAL}?credentialName=example&credentialScope=ENVINST");
    assert_eq!(call(gateway, "GET", &item, reader, "").await, 200);
    assert_eq!(call(gateway, "GET", &search, reader, "").await, 200);
    // The reader may not patch: in audit mode it is forwarded all the same.
    let patch = r#"{"isActive": false}"#;
    assert_eq!(call(gateway, "PATCH", &item, reader, patch).await, 200);
    assert_eq!(call(gateway, "PATCH", &item, &bot, patch).await, 200);
    let replace = r#"{"credentialName": "renamed", "credentialScope": "ENVINST", "credentialStoreId": 11004, "isActive": true, "credentialInputs": []}"#;
    let replaced = call(gateway, "PUT", &item, reader, replace).await;

    // 4. Watch /admin/: the dashboard and the coverage it shows.
    let page = get(admin, "/admin/", None).await;
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("nmatched"));
    let coverage = get(admin, "/admin/coverage", None).await.json();
    assert_eq!(route(&coverage, "credential.get")["allow"], 1);
    assert_eq!(
        route(&coverage, "credential.replace")["wouldDeny"],
        1,
        "PUT answered {replaced}"
    );
    assert_eq!(
        route(&coverage, "credential.create")["lastSeen"],
        Value::Null
    );
    let unmatched = coverage["unmatched"].as_array().unwrap();
    assert_eq!(unmatched.len(), 1, "{coverage}");
    assert_eq!(unmatched[0]["method"], "PATCH");
    assert_eq!(unmatched[0]["shape"], format!("{CREDENTIAL}/{{id}}"));
    assert_eq!(unmatched[0]["count"], 2);

    // 5. Suggest: PATCH has no PATCH route to copy access from, so it comes
    // commented out, with the same path's routes for comparison.
    let suggested = ok(d, &["suggest", "--config", "permgate.toml"]);
    assert!(suggested.contains("# TODO: no route PATCH "), "{suggested}");
    assert!(
        suggested.contains("\"credential.replace\" (line 28), PUT on this path: require [flexdeploy:credential:update]"),
        "{suggested}"
    );
    assert!(
        suggested.contains("#   \"credential.create\" (line 16): POST "),
        "unused routes are listed: {suggested}"
    );
    // Appended as printed, it changes nothing: still unmatched.
    edit(&d.join("routes.toml"), |t| t + &suggested);
    ok(d, &["check", "--config", "permgate.toml", "--lint=strict"]);
    let reload = request(admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(reload.status, 200);
    assert_eq!(reload.json()["routes"], 4);

    // Completed by hand: the require the TODO asks for, uncommented.
    edit(&d.join("routes.toml"), |t| {
        let start = t.find("# [[route]]").unwrap();
        let (head, tail) = t.split_at(start);
        let tail = tail.replacen(
            "# require = []",
            "# require = [\"flexdeploy:credential:update\"]",
            1,
        );
        let mut out = head.to_string();
        for (i, line) in tail.lines().enumerate() {
            // The five lines of the entry.
            out.push_str(if i < 5 {
                line.strip_prefix("# ").unwrap()
            } else {
                line
            });
            out.push('\n');
        }
        out
    });
    // 6. Enforce.
    edit(&d.join("routes.toml"), |t| {
        t.replacen("mode = \"audit\"\n", "mode = \"enforce\"\n", 1)
    });
    let checked = ok(d, &["check", "--config", "permgate.toml", "--lint=strict"]);
    assert!(checked.starts_with("5 routes, 8 tests passed"), "{checked}");
    let reload = request(admin, "POST", "/admin/reload", &[], "").await;
    assert_eq!(
        reload.status,
        200,
        "{}",
        String::from_utf8_lossy(&reload.body)
    );
    assert_eq!(reload.json()["routes"], 5);

    assert_eq!(call(gateway, "PATCH", &item, reader, patch).await, 403);
    assert_eq!(call(gateway, "PATCH", &item, &bot, patch).await, 200);
    assert_eq!(call(gateway, "PUT", &item, reader, replace).await, 403);
    assert_eq!(call(gateway, "GET", &item, reader, "").await, 200);
    assert_eq!(call(gateway, "DELETE", &item, &bot, "").await, 403);
    let coverage = get(admin, "/admin/coverage", None).await.json();
    let patched = route(&coverage, "credential.patch");
    assert_eq!(
        (patched["allow"].as_u64(), patched["deny"].as_u64()),
        (Some(1), Some(1))
    );
}
