use super::*;
use http::{HeaderMap, HeaderName};

/// Cheap argon2 parameters so tests run fast; verification reads them from
/// the PHC string.
fn cheap(password: &str) -> String {
    hash_password(password, Some(argon2::Params::new(8, 1, 1, None).unwrap())).unwrap()
}

fn file(text: &str) -> Result<GrantsFile, ConfigError> {
    GrantsFile::parse(text, Path::new("grants.toml"))
}

fn example() -> GrantsFile {
    let text = format!(
        r#"
[[subject]]
name = "alice"
token_sha256 = "{alice}"
groups = ["credential-admins"]
allow = ["integrations:integration:view"]

[[subject]]
name = "ci"
basic_user = "ci"
password_hash = "{ci}"

[[subject]]
name = "bob"
token_sha256 = "{bob}"
deny = ["integrations:integration:view"]

[[group]]
name = "credential-admins"
allow = ["integrations:integration:*"]
deny = ["integrations:integration:delete"]

[[group]]
name = "all"
allow = ["status:read"]
deny = ["secrets:*"]
"#,
        alice = hash_token("alice-token"),
        bob = hash_token("bob-token"),
        ci = cheap("ci-pass"),
    );
    file(&text).unwrap()
}

fn creds(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

/// What the file answers for these headers, checking passwords inline.
fn answer(f: &GrantsFile, headers: &HeaderMap, names: &[HeaderName]) -> Option<Arc<Grants>> {
    let c = Credentials::from_request(headers, names)?;
    match f.lookup(&c) {
        Lookup::Done(Answer::Granted(g)) => Some(g),
        Lookup::Done(Answer::Rejected) => None,
        Lookup::VerifyPassword { subject, password } => match f.verify(subject, &password) {
            Answer::Granted(g) => Some(g),
            Answer::Rejected => None,
        },
    }
}

fn basic(user: &str, pass: &str) -> String {
    use base64ct::Encoding;
    format!(
        "Basic {}",
        base64ct::Base64::encode_string(format!("{user}:{pass}").as_bytes())
    )
}

fn names() -> Vec<HeaderName> {
    vec![AUTHORIZATION]
}

fn perms(set: &PermissionSet) -> Vec<&str> {
    set.iter().map(|p| p.as_str()).collect()
}

#[test]
fn bearer_tokens_resolve_with_groups_and_all() {
    let f = example();
    let g = answer(
        &f,
        &creds(&[("authorization", "Bearer alice-token")]),
        &names(),
    )
    .unwrap();
    assert_eq!(&*g.subject, "alice");
    assert_eq!(
        perms(&g.allow),
        [
            "integrations:integration:view",
            "integrations:integration:*",
            "status:read"
        ]
    );
    assert_eq!(
        perms(&g.deny),
        ["integrations:integration:delete", "secrets:*"]
    );
    let g = answer(
        &f,
        &creds(&[("authorization", "bearer bob-token")]),
        &names(),
    )
    .unwrap();
    assert_eq!(perms(&g.allow), ["status:read"], "bob is only in `all`");
    assert_eq!(
        perms(&g.deny),
        ["integrations:integration:view", "secrets:*"]
    );
}

#[test]
fn basic_credentials_are_checked_with_argon2() {
    let f = example();
    let g = answer(
        &f,
        &creds(&[("authorization", &basic("ci", "ci-pass"))]),
        &names(),
    )
    .unwrap();
    assert_eq!(&*g.subject, "ci");
    assert!(
        answer(
            &f,
            &creds(&[("authorization", &basic("ci", "wrong"))]),
            &names()
        )
        .is_none()
    );
    assert!(
        answer(
            &f,
            &creds(&[("authorization", &basic("nobody", "ci-pass"))]),
            &names()
        )
        .is_none()
    );
    assert!(
        answer(
            &f,
            &creds(&[("authorization", "Basic not-base64!")]),
            &names()
        )
        .is_none()
    );
    assert!(
        answer(&f, &creds(&[("authorization", "Basic Y2k=")]), &names()).is_none(),
        "no ':'"
    );
}

#[test]
fn unknown_credentials_are_rejected() {
    let f = example();
    for v in [
        "Bearer nope",
        "Bearer alice-token-x",
        "Token alice-token",
        "alice-token",
    ] {
        assert!(
            answer(&f, &creds(&[("authorization", v)]), &names()).is_none(),
            "{v}"
        );
    }
}

#[test]
fn other_credential_headers_carry_raw_tokens() {
    let f = example();
    let names = vec![HeaderName::from_static("x-api-key")];
    let g = answer(&f, &creds(&[("x-api-key", "alice-token")]), &names).unwrap();
    assert_eq!(&*g.subject, "alice");
}

#[test]
fn load_errors_name_the_line() {
    let t = hash_token("t");
    let cases = [
        (
            format!("[[subject]]\nname = \"a\"\ntoken_sha256 = \"{t}\"\ngroups = [\"nope\"]\n"),
            4,
            "unknown group",
        ),
        (
            "[[subject]]\nname = \"a\"\ntoken_sha256 = \"abc\"\n".to_string(),
            3,
            "64 hex digits",
        ),
        (
            "[[subject]]\nname = \"a\"\nbasic_user = \"a\"\npassword_hash = \"plain\"\n"
                .to_string(),
            4,
            "not a PHC string",
        ),
        (
            "[[subject]]\nname = \"a\"\nbasic_user = \"a\"\n".to_string(),
            3,
            "needs a password_hash",
        ),
        (
            "[[subject]]\nname = \"a\"\n".to_string(),
            2,
            "no token_sha256",
        ),
        (
            format!("[[subject]]\nname = \"a\"\ntoken_sha256 = \"{t}\"\nallow = [\"a b\"]\n"),
            4,
            "not allowed",
        ),
        (
            format!("[[subject]]\nname = \"a\"\ntoken_sha256 = \"{t}\"\nalow = []\n"),
            4,
            "unknown field `alow`",
        ),
        (
            format!(
                "[[subject]]\nname = \"a\"\ntoken_sha256 = \"{t}\"\n[[subject]]\nname = \"b\"\ntoken_sha256 = \"{t}\"\n"
            ),
            6,
            "already given",
        ),
        (
            format!(
                "[[subject]]\nname = \"a\"\ntoken_sha256 = \"{t}\"\n[[subject]]\nname = \"a\"\ntoken_sha256 = \"{}\"\n",
                hash_token("u")
            ),
            5,
            "defined twice",
        ),
    ];
    for (text, line, needle) in cases {
        let e = file(&text)
            .err()
            .unwrap_or_else(|| panic!("{text} should fail"));
        assert_eq!(e.line(), Some(line), "{text}: {e}");
        assert!(e.to_string().contains(needle), "{e}");
        assert!(e.to_string().starts_with("grants.toml:"));
    }
    let argon2i = "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcA";
    let e = file(&format!(
        "[[subject]]\nname = \"a\"\nbasic_user = \"a\"\npassword_hash = \"{argon2i}\"\n"
    ))
    .err()
    .unwrap();
    assert!(e.to_string().contains("argon2id is required"), "{e}");
}

#[test]
fn hash_token_is_sha256_hex() {
    assert_eq!(
        hash_token("test"),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
}

#[test]
fn hashed_passwords_are_salted_argon2id() {
    let a = cheap("pw");
    let b = cheap("pw");
    assert!(a.starts_with("$argon2id$"));
    assert_ne!(a, b, "random salt");
}

#[test]
fn client_certificates_match_cert_sha256_only() {
    let cert = sha256_hex(b"certificate der");
    let token = hash_token("svc-token");
    let f = file(&format!(
        "[[subject]]\nname = \"billing\"\ncert_sha256 = \"{}\"\nallow = [\"a:b\"]\n\n\
         [[subject]]\nname = \"tok\"\ntoken_sha256 = \"{token}\"\n",
        cert.to_uppercase()
    ))
    .unwrap();
    let names = vec![CLIENT_CERT_SHA256.clone(), AUTHORIZATION];
    let g = answer(&f, &creds(&[("x-client-cert-sha256", &cert)]), &names).unwrap();
    assert_eq!(&*g.subject, "billing");
    let other = sha256_hex(b"another certificate");
    assert!(answer(&f, &creds(&[("x-client-cert-sha256", &other)]), &names).is_none());
    assert!(answer(&f, &creds(&[("x-client-cert-sha256", "zz")]), &names).is_none());
    // A certificate hash is not a token: the token subject's hash does not
    // match as a certificate, and the certificate decides when present.
    assert!(answer(&f, &creds(&[("x-client-cert-sha256", &token)]), &names).is_none());
    let both = creds(&[
        ("x-client-cert-sha256", &cert),
        ("authorization", "Bearer svc-token"),
    ]);
    assert_eq!(&*answer(&f, &both, &names).unwrap().subject, "billing");

    let e = file("[[subject]]\nname = \"a\"\ncert_sha256 = \"abc\"\n")
        .err()
        .unwrap();
    assert_eq!(e.line(), Some(3));
    assert!(e.message.contains("64 hex digits"), "{e}");
    let twice = format!(
        "[[subject]]\nname = \"a\"\ncert_sha256 = \"{cert}\"\n\n[[subject]]\nname = \"b\"\ncert_sha256 = \"{cert}\"\n"
    );
    assert!(
        file(&twice)
            .err()
            .unwrap()
            .message
            .contains("already given")
    );
}
