//! Test support: real servers on 127.0.0.1:0 and a client.
//!
//! * [`Backend`]: a recording upstream with a scripted reply, and
//!   [`FaultyBackend`], one that misbehaves on purpose;
//! * [`PermissionApi`]: a scripted permission API that counts its calls
//!   and can be stopped and restarted, and [`RawPermissionApi`] for broken
//!   answers;
//! * [`GatewayBuilder`]: writes config and routes files to a temp dir and
//!   runs the gateway on its own threads until stopped, or as a process
//!   ([`GatewayProcess`]);
//! * [`client`]: one-request HTTP/1.1 and HTTP/2 clients and raw TCP;
//! * [`corpus`]: the bypass corpus of hostile request targets;
//! * [`logs`]: log capture into memory;
//! * [`metrics`]: scraping `/metrics` and reading a series;
//! * [`redis`]: a real `redis-server` on a free port, for the shared cache;
//! * [`tls_backend`]: a test CA (rcgen) and a recording server over TLS.
// Each test crate uses a different part of this module.
#![allow(dead_code, unused_imports)]

pub mod backend;
pub mod cli;
pub mod client;
pub mod corpus;
pub mod gateway;
pub mod logs;
pub mod metrics;
pub mod permission_api;
pub mod redis;
pub mod tls_backend;

pub use backend::{BIG_BODY, Backend, FaultyBackend, Received, Recorded, Reply};
pub use client::{Resp, get, raw, request, request_h2};
pub use gateway::{GatewayBuilder, GatewayProcess, RunningGateway};
pub use permission_api::{ApiReply, PermissionApi, RawPermissionApi};
pub use tls_backend::{TestCa, TlsBackend};

use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The path of an external program a test runs (promtool, curl, …). Under
/// `CI=true` a missing program fails the test; elsewhere the test is
/// skipped with a message on stderr.
pub fn tool(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is not installed; .ci/run installs it"
        );
        eprintln!("SKIPPED: {name} is not installed");
    }
    found
}

/// A test data file that a script fetches (e.g.
/// `tests/data/fetch-github-openapi.sh`), relative to the repository. Under
/// `CI=true` a missing file fails the test; elsewhere the test is skipped
/// with a message on stderr naming the script.
pub fn fetched_data(path: &str, script: &str) -> Option<std::path::PathBuf> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if file.is_file() {
        return Some(file);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{path} is missing; .ci/run fetches it with {script}"
    );
    eprintln!("SKIPPED: {path} is missing; run {script} to fetch it");
    None
}

/// A config folder with the example config (`config/permgate.toml`) and
/// `routes` as its routes file, for `permgate check`.
pub fn config_with_routes(routes: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/permgate.toml"),
        dir.path().join("permgate.toml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("routes.toml"), routes).unwrap();
    dir
}
