//! No secrets in logs (README, "Requests and responses"): credential headers, cookies and
//! bodies never appear in the log output, at any level, whatever the outcome.
//!
//! A test binary of its own: it installs a global `trace`-level subscriber
//! (text and JSON) writing into memory, which must not affect other tests.

#[path = "support/mod.rs"]
mod support;

use base64_free::encode_basic;
use support::*;

/// Base64 for a Basic credential, written out here so the test needs no
/// extra dependency.
mod base64_free {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode_basic(user: &str, password: &str) -> String {
        let input = format!("{user}:{password}");
        let mut out = String::new();
        for chunk in input.as_bytes().chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

const ROUTES: &str = r#"
default = "deny"

[[route]]
name = "items.create"
methods = ["POST"]
path = "/items"
require = ["items:item:add"]

[[route]]
name = "dead.create"
methods = ["POST"]
path = "/dead/{*rest}"
require = ["items:item:add"]
upstream = "dead"
"#;

const TOKEN_OK: &str = "tok-allow-9f2c1e7a5b3d4c6e";
const TOKEN_DENY: &str = "tok-deny-4b1c8d2e6f0a7c3b";
const TOKEN_UNKNOWN: &str = "tok-unknown-7e5d3c1b9a8f6e4d";
const TOKEN_DOWN: &str = "tok-down-2a4c6e8f0b1d3f5a";
const BASIC_USER: &str = "svc-robot";
const BASIC_PASSWORD: &str = "Pa55w0rd-basic-7Qx2";
const COOKIE_VALUE: &str = "ck-session-31a9f2e8d7c6";
const BODY_PASSWORD: &str = "body-pw-8c7d6e5f4a3b";

#[tokio::test]
async fn secrets_never_appear_in_logs() {
    let capture = support::logs::capture();

    let basic = encode_basic(BASIC_USER, BASIC_PASSWORD);
    assert_eq!(
        encode_basic("Aladdin", "open sesame"),
        "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );

    let backend = Backend::echo().await;
    let dead = support::backend::refused_addr().await;
    let api = PermissionApi::start().await;
    // Subjects are logged by design; they are names, not secrets.
    api.set(
        &format!("Bearer {TOKEN_OK}"),
        ApiReply::grants("alice", &["items"], &[]),
    );
    api.set(
        &format!("Bearer {TOKEN_DENY}"),
        ApiReply::grants("bob", &["items:item:view"], &[]),
    );
    api.set(&format!("Bearer {TOKEN_DOWN}"), ApiReply::raw(500, "{}"));
    api.set(
        &format!("Basic {basic}"),
        ApiReply::grants("robot", &["items"], &[]),
    );
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .more(&format!(
            "[upstreams.dead]\nurl = \"http://{dead}\"\nconnect_timeout = \"1s\"\n"
        ))
        .start();

    let cookie = format!("session={COOKIE_VALUE}; theme=dark");
    let body = format!(
        r#"{{"name":"db","type":"basic","credentialFields":{{"userName":"u","password":"{BODY_PASSWORD}"}},"sensitive":true}}"#
    );
    let bearer = |t: &str| format!("Bearer {t}");
    let basic_header = format!("Basic {basic}");
    let cases: [(&str, String, u16); 6] = [
        ("/items", bearer(TOKEN_OK), 200),
        ("/items", basic_header.clone(), 200),
        ("/items", bearer(TOKEN_DENY), 403),
        ("/items", bearer(TOKEN_UNKNOWN), 401),
        ("/items", bearer(TOKEN_DOWN), 503),
        ("/dead/x", bearer(TOKEN_OK), 502),
    ];
    let mut answers = Vec::new();
    for (path, authorization, want) in &cases {
        let headers = [
            ("authorization", authorization.as_str()),
            ("cookie", cookie.as_str()),
            ("content-type", "application/json"),
        ];
        let r = request(gw.addr, "POST", path, &headers, body.clone()).await;
        assert_eq!(r.status, *want, "{path} with {authorization}");
        answers.push(String::from_utf8_lossy(&r.body).into_owned());
    }
    // The allowed requests really carried the secrets through the gateway.
    let forwarded = backend.requests();
    assert_eq!(forwarded.len(), 2);
    assert!(forwarded.iter().all(|r| r.body == body.as_bytes()));
    assert_eq!(
        forwarded[0].header("cookie").as_deref(),
        Some(cookie.as_str())
    );

    let mut gw = gw;
    gw.stop().unwrap();
    let logs = capture.text();

    // The capture is not empty: every outcome was logged by the access log.
    assert!(logs.contains("permgate::access"), "no access log:\n{logs}");
    for status in [200, 401, 403, 502, 503] {
        assert!(
            logs.contains(&format!("status={status}"))
                && logs.contains(&format!("\"status\":{status}")),
            "no access log line with status {status}:\n{logs}"
        );
    }

    // The error paths logged their warnings too (where a leak would hide).
    for warning in ["grants could not be resolved", "upstream failed"] {
        assert!(logs.contains(warning), "no {warning:?} line:\n{logs}");
    }

    let secrets = [
        TOKEN_OK,
        TOKEN_DENY,
        TOKEN_UNKNOWN,
        TOKEN_DOWN,
        basic.as_str(),
        BASIC_PASSWORD,
        COOKIE_VALUE,
        BODY_PASSWORD,
    ];
    for secret in secrets {
        assert!(
            !logs.contains(secret),
            "secret {secret:?} appears in the logs:\n{}",
            logs.lines()
                .filter(|l| l.contains(secret))
                .collect::<Vec<_>>()
                .join("\n")
        );
        for (answer, (path, _, status)) in answers.iter().zip(&cases) {
            if *status != 200 {
                assert!(
                    !answer.contains(secret),
                    "secret {secret:?} in the {status} answer for {path}: {answer}"
                );
            }
        }
    }
    println!(
        "secrets_in_logs: {} bytes of logs, {} lines, no secrets",
        logs.len(),
        logs.lines().count()
    );
}
