//! The `permgate` binary: check, explain, hash-token, hash-password, demo.

#[path = "support/mod.rs"]
mod support;

use support::cli::{permgate, repo, run, text};
use support::config_with_routes;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[test]
fn check_passes_every_example_config() {
    let mut configs = vec![repo("config/permgate.toml")];
    for entry in std::fs::read_dir(repo("config")).unwrap() {
        let p = entry.unwrap().path().join("permgate.toml");
        // config/tls needs certificates made first: its own test below.
        if p.exists() && !p.starts_with(repo("config/tls")) {
            configs.push(p);
        }
    }
    assert!(configs.len() >= 5, "{configs:?}");
    for c in configs {
        let out = run(&["check", "--config", c.to_str().unwrap()]);
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {stdout}{}",
            c.display(),
            text(&out.stderr)
        );
        assert!(stdout.contains(" tests passed"), "{stdout}");
        assert!(!stdout.contains("FAIL"), "{stdout}");
    }
    let out = run(&[
        "check",
        "--config",
        repo("config/permgate.toml").to_str().unwrap(),
    ]);
    assert_eq!(text(&out.stdout).trim(), "6 routes, 5 tests passed");
}

/// `config/tls` copied to a temp dir, with a certificate made by rcgen at
/// the paths it names when `with_certificate`.
fn tls_example(with_certificate: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["permgate.toml", "routes.toml", "grants.toml"] {
        std::fs::copy(repo(&format!("config/tls/{f}")), dir.path().join(f)).unwrap();
    }
    if with_certificate {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::create_dir(dir.path().join("certs")).unwrap();
        std::fs::write(dir.path().join("certs/server.crt"), certified.cert.pem()).unwrap();
        std::fs::write(
            dir.path().join("certs/server.key"),
            certified.signing_key.serialize_pem(),
        )
        .unwrap();
    }
    dir
}

#[test]
fn check_passes_the_tls_example_once_its_certificate_exists() {
    let dir = tls_example(true);
    let config = dir.path().join("permgate.toml");
    let out = run(&["check", "--config", config.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("3 routes, 3 tests passed"));

    // Without it, check (like run) names the config line and the file.
    let dir = tls_example(false);
    let config = dir.path().join("permgate.toml");
    let out = run(&["check", "--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    let line = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("tls_cert"))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("permgate.toml:{line}:")), "{err}");
    assert!(err.contains("server.tls_cert"), "{err}");
    assert!(err.contains("certs/server.crt: cannot read"), "{err}");
}

#[test]
fn check_reports_a_syntax_error_with_its_line() {
    let dir = config_with_routes("[[route]]\npath = \"/a\"\nrequire = [\"x\"\n");
    let out = run(&[
        "check",
        "--config",
        dir.path().join("permgate.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.starts_with("permgate: "), "{err}");
    assert!(
        err.contains("routes.toml:3:") || err.contains("routes.toml:4:"),
        "names the line: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn check_reports_a_failing_test_in_full() {
    let routes = r#"
[[route]]
name = "credentials.delete"
methods = ["DELETE"]
path = "/api/v2/integrations/credentials/{credentialId}"
require = ["integrations:integration:delete"]

[[test]]
method = "DELETE"
path = "/api/v2/integrations/credentials/42"
grants = ["integrations:integration:view"]
expect = "allow"

[[test]]
method = "DELETE"
path = "/api/v2/integrations/credentials/42"
grants = ["integrations:integration:*"]
expect = "allow"
"#;
    let dir = config_with_routes(routes);
    let out = run(&[
        "check",
        "--config",
        dir.path().join("permgate.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    let fail = stdout
        .lines()
        .find(|l| l.starts_with("FAIL"))
        .expect("a FAIL line");
    for part in [
        "routes.toml:9:",
        "DELETE /api/v2/integrations/credentials/42",
        "grants [integrations:integration:view]",
        "expected allow",
        "got deny",
        "route \"credentials.delete\"",
        "missing integrations:integration:delete",
    ] {
        assert!(fail.contains(part), "{part:?} in {fail}");
    }
    assert!(
        stdout.contains("1 routes, 1 tests passed, 1 failed"),
        "{stdout}"
    );
}

#[test]
fn explain_shows_the_path_the_route_the_requirement_and_the_decision() {
    let config = repo("config/permgate.toml");
    let out = run(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "DELETE",
        "/api//v2/integrations/%63redentials/42?force=1",
        "--grant",
        "integrations:integration:*",
        "--deny",
        "integrations:integration:delete",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for part in [
        "normalized:  /api/v2/integrations/credentials/42",
        "route:       credentials.delete",
        "credentialId=42",
        "require      integrations:integration:delete  denied by integrations:integration:delete",
        "decision:    deny (403): missing integrations:integration:delete",
    ] {
        assert!(s.contains(part), "{part:?} in\n{s}");
    }
    let out = run(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "GET",
        "/nowhere",
        "--grant",
        "*",
    ]);
    let s = text(&out.stdout);
    assert!(s.contains("route:       none; default = \"deny\""), "{s}");
    assert!(s.contains("deny (403): no route matches"), "{s}");
    let out = run(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "GET",
        "/a/..%2f/b",
    ]);
    assert!(text(&out.stdout).contains("bad_request (400)"));
    let out = run(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "GET",
        "/api/v2/integrations/credentials",
        "--anonymous",
    ]);
    assert!(text(&out.stdout).contains("unauthenticated (401)"));
    let out = run(&[
        "explain",
        "--config",
        config.to_str().unwrap(),
        "GET",
        "/a",
        "--grant",
        "bad perm",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

fn with_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = permgate()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn hash_token_prints_the_sha256_of_the_token_without_one_newline() {
    use sha2::Digest;
    let hex = |s: &[u8]| -> String {
        sha2::Sha256::digest(s)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let out = with_stdin(&["hash-token"], b"s3cr3t-token\n");
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim(), hex(b"s3cr3t-token"));
    let out = with_stdin(&["hash-token"], b"two\n\n");
    assert_eq!(
        text(&out.stdout).trim(),
        hex(b"two\n"),
        "only one newline is stripped"
    );
    let out = with_stdin(&["hash-token"], b"");
    assert_eq!(out.status.code(), Some(1), "an empty token is refused");
}

#[test]
fn hash_password_prints_an_argon2id_phc_string_that_verifies() {
    use argon2::password_hash::PasswordVerifier;
    use argon2::password_hash::phc::PasswordHash;
    let out = with_stdin(&["hash-password"], b"correct horse\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let phc = text(&out.stdout).trim().to_string();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    let parsed = PasswordHash::new(&phc).unwrap();
    assert!(
        argon2::Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok()
    );
    assert!(
        argon2::Argon2::default()
            .verify_password(b"correct horse\n", &parsed)
            .is_err()
    );
}

/// A request described by a printed curl command.
struct Curl {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// Splits a shell line the way the demo writes them (single quotes only).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

fn parse_curl(line: &str) -> Curl {
    use base64ct::Encoding;
    let words = shell_words(line);
    assert_eq!(words[0], "curl");
    let mut c = Curl {
        method: "GET".into(),
        url: String::new(),
        headers: vec![],
        body: String::new(),
    };
    let mut it = words.into_iter().skip(1);
    while let Some(w) = it.next() {
        match w.as_str() {
            "-i" | "--path-as-is" | "-s" => {}
            "-X" => c.method = it.next().unwrap(),
            "-H" => {
                let h = it.next().unwrap();
                let (k, v) = h.split_once(':').unwrap();
                c.headers.push((k.trim().into(), v.trim().into()));
            }
            "-d" => {
                c.body = it.next().unwrap();
                if c.method == "GET" {
                    c.method = "POST".into();
                }
            }
            "-u" => {
                let creds = it.next().unwrap();
                c.headers.push((
                    "Authorization".into(),
                    format!(
                        "Basic {}",
                        base64ct::Base64::encode_string(creds.as_bytes())
                    ),
                ));
            }
            url if url.starts_with("http://") => c.url = url.into(),
            other => panic!("the demo printed a curl option this test does not know: {other}"),
        }
    }
    c
}

#[tokio::test]
async fn the_demo_curl_commands_get_the_statuses_it_prints() {
    let logs = tempfile::NamedTempFile::new().unwrap();
    let mut child = permgate()
        .args(["demo", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::from(logs.reopen().unwrap()))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read the banner on a thread (bounded by the end marker and a deadline).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut banner = Vec::new();
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        for line in lines.by_ref().take(200) {
            let done = line.starts_with("Ctrl-C");
            banner.push(line);
            if done {
                break;
            }
        }
        let _ = tx.send(banner);
        // Keep reading until the demo exits, as a terminal would.
        lines.for_each(drop);
    });
    let banner = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the demo prints its banner");
    let mut examples = Vec::new();
    for pair in banner.windows(2) {
        if let (Some(expect), true) = (
            pair[0].split("(expect ").nth(1),
            pair[1].starts_with("curl "),
        ) {
            let status: u16 = expect.trim_end_matches(')').parse().unwrap();
            examples.push((status, parse_curl(&pair[1])));
        }
    }
    assert!(examples.len() >= 4, "{banner:#?}");
    let statuses: Vec<u16> = examples.iter().map(|(s, _)| *s).collect();
    for needed in [200, 401, 403] {
        assert!(
            statuses.contains(&needed),
            "the demo shows a {needed}: {statuses:?}"
        );
    }
    for (expect, c) in &examples {
        let url = c.url.strip_prefix("http://").unwrap();
        let (authority, path) = url.split_at(url.find('/').unwrap());
        let addr: std::net::SocketAddr = authority.parse().unwrap();
        let headers: Vec<(&str, &str)> = c
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = support::request(addr, &c.method, path, &headers, c.body.clone()).await;
        assert_eq!(
            r.status, *expect,
            "{} {} answered {:?}",
            c.method, c.url, r.body
        );
        if *expect == 403 {
            assert!(r.json()["missingPermissions"].is_array());
        }
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the demo stops on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit: {status:?}");

    // The log names the port really bound, and a log that is not a terminal
    // carries no colour codes.
    let log = std::fs::read_to_string(logs.path()).unwrap();
    let gateway = examples[0].1.url.strip_prefix("http://").unwrap();
    let gateway = &gateway[..gateway.find('/').unwrap()];
    assert!(
        log.contains(&format!("listen={gateway}")),
        "the bound address {gateway} is logged: {log}"
    );
    assert!(
        !log.contains('\x1b'),
        "no ANSI escapes in a log file: {log}"
    );
}
