use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/permgate/permgate.toml"))
}

const MINIMAL: &str = r#"
[server]
listen = "127.0.0.1:8080"
[upstreams.default]
url = "http://127.0.0.1:8081"
[grants]
source = "http"
url = "http://127.0.0.1:8082/grants"
[routes]
file = "routes.toml"
"#;

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.server.max_request_body, 10 * 1024 * 1024);
    assert_eq!(c.server.max_header_bytes, 64 * 1024);
    assert_eq!(c.server.request_header_timeout, Duration::from_secs(10));
    assert_eq!(c.server.max_connections, 10_000);
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9090");
    assert_eq!(c.upstreams[0].name, "default");
    assert_eq!(c.upstreams[0].connect_timeout, Duration::from_secs(2));
    assert_eq!(c.upstreams[0].timeout, Duration::from_secs(30));
    assert_eq!(c.upstreams[0].host_header, HostHeader::Preserve);
    assert_eq!(c.auth.credential_headers, vec![http::header::AUTHORIZATION]);
    assert_eq!(c.auth.subject_header, "x-authenticated-subject");
    assert_eq!(c.auth.challenge, "Bearer realm=\"permgate\"");
    assert!(c.auth.forward_credentials);
    assert_eq!(c.grants.cache.ttl, Duration::from_secs(60));
    assert_eq!(c.grants.cache.negative_ttl, Duration::from_secs(5));
    assert_eq!(c.grants.cache.max_entries, 100_000);
    assert_eq!(c.grants.cache.stale_if_error, Duration::ZERO);
    let GrantSourceConfig::Http(h) = &c.grants.source else {
        panic!("http source")
    };
    assert_eq!(h.timeout, Duration::from_secs(1));
    assert_eq!(h.permissions_pointer, "/permissions");
    assert_eq!(
        c.routes_file,
        Path::new("/etc/permgate/routes.toml"),
        "relative to the config's folder"
    );
    assert_eq!(c.log.format, LogFormat::Text);
    assert!(c.log.access_log);
}

#[test]
fn errors_name_file_line_and_column() {
    let cases: &[(&str, &str, usize)] = &[
        ("[server]\nlisten = \"nope\"\n", "invalid listen address", 2),
        (
            "[server]\nlisten = \"127.0.0.1:1\"\nlistn = 1\n",
            "unknown field `listn`",
            3,
        ),
        (
            "[server]\nlisten = \"127.0.0.1:1\"\nmax_request_body = \"10 parsecs\"\n",
            "unknown size unit",
            3,
        ),
        (
            "[server]\nlisten = \"127.0.0.1:1\"\nrequest_header_timeout = \"soon\"\n",
            "invalid duration",
            3,
        ),
        (
            "[server]\nlisten = \"127.0.0.1:1\"\ntls_cert = \"a.pem\"\n",
            "tls_cert needs tls_key",
            3,
        ),
        (
            "[server]\nlisten = \"127.0.0.1:1\"\ntls_key = \"a.key\"\n",
            "tls_key needs tls_cert",
            3,
        ),
        (
            "[server]\nlisten = \"127.0.0.1:1\"\n\ntls_client_ca = \"ca.pem\"\n",
            "tls_client_ca needs tls_cert and tls_key",
            4,
        ),
        (
            "[server]\nlisten = \"127.0.0.1:1\"\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
            "invalid CIDR",
            3,
        ),
    ];
    for (server, needle, line) in cases {
        let text = format!(
            "{server}{}",
            &MINIMAL[MINIMAL.find("[upstreams").unwrap()..]
        );
        let err = parse(&text).unwrap_err();
        assert!(err.to_string().contains(needle), "{text}\n=> {err}");
        assert_eq!(err.line(), Some(*line), "{err}");
        assert!(
            err.to_string().starts_with("/etc/permgate/permgate.toml:"),
            "{err}"
        );
    }
}

#[test]
fn section_rules() {
    let replace = |from: &str, to: &str| parse(&MINIMAL.replace(from, to)).unwrap_err().to_string();
    assert!(
        replace("[upstreams.default]", "[upstreams.main]")
            .contains("[upstreams.default] is required")
    );
    let https = parse(&MINIMAL.replace("http://127.0.0.1:8081", "https://127.0.0.1:8081")).unwrap();
    assert!(
        https.upstreams[0].origin.tls.is_some(),
        "https gets a TLS client"
    );
    assert!(parse(MINIMAL).unwrap().upstreams[0].origin.tls.is_none());
    assert!(
        replace("http://127.0.0.1:8081", "http://127.0.0.1:8081/base")
            .contains("must not have a path")
    );
    assert!(
        replace("url = \"http://127.0.0.1:8082/grants\"", "").contains("grants.url is required")
    );
    assert!(replace("source = \"http\"", "source = \"ldap\"").contains("unknown variant `ldap`"));
    assert!(replace("[routes]\nfile = \"routes.toml\"", "").contains("missing field `routes`"));
    let with = |extra: &str| parse(&format!("{MINIMAL}{extra}"));
    assert!(
        with("[auth]\ncredential_headers = []\n")
            .unwrap_err()
            .to_string()
            .contains("at least one")
    );
    assert!(
        with("[auth]\nsubject_header = \"authorization\"\n")
            .unwrap_err()
            .to_string()
            .contains("cannot be a credential")
    );
    assert!(
        with("[auth]\nsubject_header = \"connection\"\n")
            .unwrap_err()
            .to_string()
            .contains("hop-by-hop")
    );
    assert!(
        with("[admin]\ntoken_sha256 = \"abc\"\n")
            .unwrap_err()
            .to_string()
            .contains("64 hex digits")
    );
    assert!(
        with("[log]\nlevel = \"loud\"\n")
            .unwrap_err()
            .to_string()
            .contains("invalid log level")
    );
    assert!(with("[log]\nlevel = \"info,permgate=debug\"\n").is_ok());
    assert!(
        with("[log]\nlevel = \"info,permgate=loud\"\n")
            .unwrap_err()
            .to_string()
            .contains("invalid log level")
    );
    let c = with(
        "[auth]\ncredential_headers = [\"Authorization\", \"X-Api-Key\"]\n[admin]\ntoken_sha256 = \"%\"\n",
    );
    assert!(c.is_err());
    let c = with("[auth]\ncredential_headers = [\"Authorization\", \"X-Api-Key\"]\n").unwrap();
    assert_eq!(c.auth.credential_headers[1], "x-api-key");
}

#[test]
fn grant_headers_and_pointers() {
    let c = parse(&MINIMAL.replace(
        "url = \"http://127.0.0.1:8082/grants\"",
        "url = \"http://127.0.0.1:8082/grants\"\nheaders = { \"X-Api-Key\" = \"k\" }\npermissions_pointer = \"/data/perms\"",
    ))
    .unwrap();
    let GrantSourceConfig::Http(h) = &c.grants.source else {
        panic!("http")
    };
    assert_eq!(h.headers["x-api-key"], "k");
    assert_eq!(h.permissions_pointer, "/data/perms");
    let err = parse(&MINIMAL.replace("[routes]", "permissions_pointer = \"data\"\n[routes]"));
    assert!(err.is_err());
}

#[test]
fn sha256_hex_parses_64_digits() {
    let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    assert_eq!(parse_sha256_hex(hex).unwrap()[0], 0x9f);
    assert!(parse_sha256_hex(&hex[1..]).is_none());
    assert!(parse_sha256_hex(&hex.replace('9', "g")).is_none());
}

#[test]
fn shared_cache_keys_are_checked_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cache.key"), [7u8; 40]).unwrap();
    std::fs::write(dir.path().join("short.key"), [7u8; 31]).unwrap();
    let file = dir.path().join("permgate.toml");
    let with = |cache: &str| {
        let text = format!("{MINIMAL}[grants.cache]\nttl = \"60s\"\n{cache}\n");
        Config::parse(&text, &file)
    };
    let c = with("shared = \"redis://127.0.0.1:6379/0\"\nshared_key_file = \"cache.key\"").unwrap();
    let s = c.grants.shared.as_ref().expect("shared configured");
    assert_eq!(
        s.hash_key,
        <[u8; 32]>::from(<sha2::Sha256 as sha2::Digest>::digest([7u8; 40])),
        "the key of the credential hash comes from the file's raw bytes"
    );
    assert_eq!(s.timeout, Duration::from_secs(1), "grants.timeout");
    assert!(
        !format!("{s:?}").contains("7, 7"),
        "the key is not in Debug"
    );
    assert!(with("").unwrap().grants.shared.is_none());

    let cases: &[(&str, &str)] = &[
        (
            "shared = \"redis://127.0.0.1:6379/0\"",
            "grants.cache.shared needs grants.cache.shared_key_file",
        ),
        (
            "shared_key_file = \"cache.key\"",
            "only used with grants.cache.shared",
        ),
        (
            "shared = \"redis://127.0.0.1:6379/0\"\nshared_key_file = \"missing.key\"",
            "shared_key_file: cannot read",
        ),
        (
            "shared = \"redis://127.0.0.1:6379/0\"\nshared_key_file = \"short.key\"",
            "holds 31 bytes; the key needs at least 32",
        ),
        (
            "shared = \"http://127.0.0.1:6379/0\"\nshared_key_file = \"cache.key\"",
            "must start with redis://",
        ),
        (
            "shared = \"redis://127.0.0.1:6379/0\"\nshared_key_file = \"cache.key\"\nshraed = 1",
            "unknown field `shraed`",
        ),
    ];
    let cache_line = MINIMAL.lines().count() + 3;
    for (cache, needle) in cases {
        let err = with(cache).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(needle), "{cache}\n=> {text}");
        assert!(text.starts_with(&format!("{}:", file.display())), "{text}");
        let line = err.line().expect("a line");
        assert!(
            (cache_line..cache_line + 3).contains(&line),
            "{text}: line {line} is in [grants.cache]"
        );
    }
    let text = format!(
        "{MINIMAL}[grants.cache]\nttl = \"0s\"\nshared = \"redis://h:1\"\nshared_key_file = \"cache.key\"\n"
    );
    let err = Config::parse(&text, &file).unwrap_err().to_string();
    assert!(err.contains("ttl is 0s"), "{err}");
}

#[test]
fn proxy_protocol_is_off_by_default_and_can_be_turned_on() {
    assert!(!parse(MINIMAL).unwrap().server.proxy_protocol);
    let on = MINIMAL.replace(
        "listen = \"127.0.0.1:8080\"",
        "listen = \"127.0.0.1:8080\"\nproxy_protocol = true\ntrusted_proxies = [\"10.0.0.0/8\"]",
    );
    let c = parse(&on).unwrap();
    assert!(c.server.proxy_protocol);
    assert_eq!(c.server.trusted_proxies.len(), 1);
}

#[test]
fn tls_keys_need_an_https_url_and_both_halves_of_an_identity() {
    let upstream = |lines: &str| {
        parse(&MINIMAL.replace(
            "url = \"http://127.0.0.1:8081\"",
            &format!("url = \"https://127.0.0.1:8081\"\n{lines}"),
        ))
        .unwrap_err()
    };
    let e = parse(&MINIMAL.replace(
        "url = \"http://127.0.0.1:8081\"",
        "url = \"http://127.0.0.1:8081\"\nca_file = \"ca.pem\"",
    ))
    .unwrap_err();
    assert!(
        e.message
            .contains("upstreams.default.ca_file is only for an https url"),
        "{e}"
    );
    assert_eq!(e.line(), Some(6), "{e}");
    let e = upstream("client_cert = \"c.pem\"");
    assert!(
        e.message
            .contains("client_cert needs upstreams.default.client_key"),
        "{e}"
    );
    let e = upstream("client_key = \"k.pem\"");
    assert!(
        e.message
            .contains("client_key needs upstreams.default.client_cert"),
        "{e}"
    );
    let e = upstream("ca_file = \"certs/missing-ca.pem\"");
    assert!(
        e.message
            .contains("ca_file: cannot read /etc/permgate/certs/missing-ca.pem"),
        "relative to the config folder: {e}"
    );
    assert_eq!(e.line(), Some(6), "{e}");
    let e = parse(&MINIMAL.replace(
        "url = \"http://127.0.0.1:8082/grants\"",
        "url = \"http://127.0.0.1:8082/grants\"\nclient_cert = \"c.pem\"",
    ))
    .unwrap_err();
    assert!(
        e.message
            .contains("grants.client_cert is only for an https url"),
        "{e}"
    );
}
