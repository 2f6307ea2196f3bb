//! `permgate check --lint`: quiet on the example configs, warnings with
//! file and line, and `--lint=strict` turning a warning into exit code 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn check(config: &Path, lint: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_permgate"))
        .args(["check", "--config", config.to_str().unwrap(), lint])
        .output()
        .expect("permgate runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn example_configs_have_no_lint_warnings() {
    let mut configs = vec![
        repo("config/permgate.toml"),
        repo("tests/data/genesys-permgate.toml"),
    ];
    for entry in std::fs::read_dir(repo("config")).unwrap() {
        let p = entry.unwrap().path().join("permgate.toml");
        // config/tls needs a certificate first; its routes are linted below.
        if p.exists() && !p.starts_with(repo("config/tls")) {
            configs.push(p);
        }
    }
    assert!(configs.len() >= 6, "{configs:?}");
    for c in &configs {
        let out = check(c, "--lint=strict");
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {stdout}{}",
            c.display(),
            text(&out.stderr)
        );
        assert!(
            stdout.contains("\nlint: 0 warnings, "),
            "{}: {stdout}",
            c.display()
        );
        assert!(!stdout.contains("warning["), "{stdout}");
    }
    // The TLS example's routes, with a main config that needs no certificate.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo("config/permgate.toml"),
        dir.path().join("permgate.toml"),
    )
    .unwrap();
    std::fs::copy(
        repo("config/tls/routes.toml"),
        dir.path().join("routes.toml"),
    )
    .unwrap();
    let out = check(&dir.path().join("permgate.toml"), "--lint=strict");
    assert!(out.status.success(), "{}", text(&out.stdout));
}

#[test]
fn warnings_name_both_routes_and_only_strict_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo("config/permgate.toml"),
        dir.path().join("permgate.toml"),
    )
    .unwrap();
    let routes = r#"default = "deny"

[[route]]
name = "items.get"
methods = ["GET"]
path = "/items/{id}"
require = ["items:view"]

[[route]]
name = "items.status"
methods = ["GET"]
path = "/items/status"
public = true
"#;
    std::fs::write(dir.path().join("routes.toml"), routes).unwrap();
    let config = dir.path().join("permgate.toml");

    let out = check(&config, "--lint");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "warnings alone do not fail: {stdout}");
    let file = dir.path().join("routes.toml");
    let expected = format!(
        "{}:6: warning[public-overlap]: /items/status matches both \"items.status\" (line 12) and \"items.get\" (line 6); for GET, \"items.status\" wins",
        file.display()
    );
    assert!(stdout.contains(&expected), "{stdout}");
    assert!(stdout.ends_with("lint: 1 warning, 0 notes\n"), "{stdout}");

    let out = check(&config, "--lint=strict");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));

    // Without --lint, check says nothing about it.
    let out = Command::new(env!("CARGO_BIN_EXE_permgate"))
        .args(["check", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "2 routes, 0 tests passed\n");
}

#[test]
fn notes_show_only_with_lint_all() {
    let out = check(&repo("config/permgate.toml"), "--lint");
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("note["), "{stdout}");
    assert!(
        stdout.contains("lint: 0 warnings, 1 note (--lint=all shows the notes)"),
        "{stdout}"
    );
    let out = check(&repo("config/permgate.toml"), "--lint=all");
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("routes.toml:31: note[static-over-param]: /api/v2/integrations/credentials/types matches both \"credentials.types\" (line 25) and \"credentials.get\" (line 31); for GET, HEAD, \"credentials.types\" wins"),
        "{stdout}"
    );
}
