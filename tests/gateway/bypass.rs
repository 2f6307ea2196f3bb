//! No bypass (README, "Path normalization"): a differential test over a corpus of
//! hostile request targets (`tests/data/bypass-corpus.txt`).
//!
//! Every corpus line is sent over raw TCP, byte for byte, as the target of
//! `GET` and of `DELETE` by a caller who holds only
//! `integrations:integration:view`. For each request the test demands one of:
//!
//! * the gateway answered 400/401/403 itself (or its HTTP layer answered
//!   414/431), and the backend received nothing; or
//! * the backend received exactly one request (same method), and its path —
//!   as received — is routed to a route this caller may use under EVERY
//!   reading a backend may apply: as is, percent-decoded once, with Java `;`
//!   path parameters stripped (before or after decoding) when the profile
//!   allows `;`, and with case folded when the profile ignores case. A
//!   decoded reading must not contain `.`/`..` segments (also via Unicode
//!   look-alikes), `//`, `\`, `;` (unless allowed), NUL or other control
//!   characters, or invalid UTF-8.
//!
//! The route table is written out again below, with a small matcher that
//! routes the way backend routers do (most specific match), independently of
//! the gateway's loader and matcher. A forwarded path is then sent again and
//! must be forwarded unchanged (normalization is idempotent; what was matched
//! is what is forwarded).
//!
//! The corpus runs against three `[normalize]` profiles: the defaults,
//! `allow_semicolon = true` (Java backends), and `case_insensitive = true`
//! with `trailing_slash = "ignore"`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::corpus::{corpus, decode_once, expand};
use crate::support::*;

/// The caller's token and only grant.
const VIEWER: &str = "viewer";
const VIEWER_GRANT: &str = "integrations:integration:view";

/// The route table; `{normalize}` is replaced by the profile's settings.
const ROUTES: &str = r#"
default = "deny"

[normalize]
{normalize}

[[route]]
name = "credentials.list"
methods = ["GET"]
path = "/api/v2/integrations/credentials"
require = ["integrations:integration:view"]

[[route]]
name = "credentials.export"
methods = ["GET"]
path = "/api/v2/integrations/credentials/export"
require = ["integrations:credential:export"]

[[route]]
name = "credentials.get"
methods = ["GET"]
path = "/api/v2/integrations/credentials/{credentialId}"
require = ["integrations:integration:view"]

[[route]]
name = "credentials.update"
methods = ["PUT"]
path = "/api/v2/integrations/credentials/{credentialId}"
require = ["integrations:integration:edit"]

[[route]]
name = "credentials.delete"
methods = ["DELETE"]
path = "/api/v2/integrations/credentials/{credentialId}"
require = ["integrations:integration:delete"]

[[route]]
name = "credentials.secret"
methods = ["GET"]
path = "/api/v2/integrations/credentials/{credentialId}/secret"
require = ["integrations:secret:view"]

[[route]]
name = "admin"
methods = ["GET"]
path = "/api/v2/admin/{*rest}"
require = ["admin:all:view"]

[[route]]
name = "public"
path = "/public/{*rest}"
public = true
"#;

/// One segment of a route pattern, for the test's own matcher.
#[derive(Clone, Copy)]
enum Pat {
    Lit(&'static str),
    Param,
    Rest,
}

impl Pat {
    /// Priority when several routes match (lower wins), as backend routers
    /// do it: static before `{param}` before `{*rest}`, left to right.
    fn rank(self) -> u8 {
        match self {
            Pat::Lit(_) => 0,
            Pat::Param => 1,
            Pat::Rest => 2,
        }
    }
}

const CREDENTIALS: [Pat; 4] = [
    Pat::Lit("api"),
    Pat::Lit("v2"),
    Pat::Lit("integrations"),
    Pat::Lit("credentials"),
];

/// A route of the table as the test sees it: `(name, methods (empty: any),
/// pattern, whether `viewer` may use it)`. Written out by hand, independently
/// of the gateway's route loader and matcher.
type OracleRoute = (&'static str, &'static [&'static str], &'static [Pat], bool);

const TABLE: &[OracleRoute] = &[
    ("credentials.list", &["GET"], &CREDENTIALS, true),
    (
        "credentials.export",
        &["GET"],
        &[
            CREDENTIALS[0],
            CREDENTIALS[1],
            CREDENTIALS[2],
            CREDENTIALS[3],
            Pat::Lit("export"),
        ],
        false,
    ),
    (
        "credentials.get",
        &["GET"],
        &[
            CREDENTIALS[0],
            CREDENTIALS[1],
            CREDENTIALS[2],
            CREDENTIALS[3],
            Pat::Param,
        ],
        true,
    ),
    (
        "credentials.update",
        &["PUT"],
        &[
            CREDENTIALS[0],
            CREDENTIALS[1],
            CREDENTIALS[2],
            CREDENTIALS[3],
            Pat::Param,
        ],
        false,
    ),
    (
        "credentials.delete",
        &["DELETE"],
        &[
            CREDENTIALS[0],
            CREDENTIALS[1],
            CREDENTIALS[2],
            CREDENTIALS[3],
            Pat::Param,
        ],
        false,
    ),
    (
        "credentials.secret",
        &["GET"],
        &[
            CREDENTIALS[0],
            CREDENTIALS[1],
            CREDENTIALS[2],
            CREDENTIALS[3],
            Pat::Param,
            Pat::Lit("secret"),
        ],
        false,
    ),
    (
        "admin",
        &["GET"],
        &[
            Pat::Lit("api"),
            Pat::Lit("v2"),
            Pat::Lit("admin"),
            Pat::Rest,
        ],
        false,
    ),
    ("public", &[], &[Pat::Lit("public"), Pat::Rest], true),
];

/// A `[normalize]` configuration and how the test reads forwarded paths for it.
#[derive(Clone, Copy, Debug)]
struct Profile {
    name: &'static str,
    normalize: &'static str,
    /// `allow_semicolon = true`: the backend is assumed to be a Java one
    /// that strips `;` path parameters.
    java: bool,
    /// `case_insensitive = true` / `trailing_slash = "ignore"`: the backend
    /// is assumed to ignore case and a trailing slash.
    lenient: bool,
}

const STRICT: Profile = Profile {
    name: "strict (defaults)",
    normalize: "",
    java: false,
    lenient: false,
};

const JAVA: Profile = Profile {
    name: "java (allow_semicolon = true)",
    normalize: "allow_semicolon = true",
    java: true,
    lenient: false,
};

const LENIENT: Profile = Profile {
    name: "lenient (case_insensitive, trailing_slash = ignore)",
    normalize: "case_insensitive = true\ntrailing_slash = \"ignore\"",
    java: false,
    lenient: true,
};

/// The raw request a vector is sent as.
fn request_bytes(method: &str, target: &[u8]) -> Vec<u8> {
    let mut req = Vec::with_capacity(target.len() + 128);
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ");
    req.extend_from_slice(VIEWER.as_bytes());
    req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    req
}

/// Writes `bytes` on a new connection and reads until the peer closes, all
/// within `limit`. Write errors are ignored (the gateway may answer and
/// close before a long request is written).
async fn exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> Vec<u8> {
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let Ok(Ok(mut s)) = tokio::time::timeout(limit, TcpStream::connect(addr)).await else {
        return out;
    };
    let _ = tokio::time::timeout_at(deadline.into(), s.write_all(bytes)).await;
    let mut buf = [0u8; 8192];
    while out.len() < 1 << 20 {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    out
}

/// The status of the first response in `resp`.
fn status_of(resp: &[u8]) -> Option<u16> {
    let line = resp.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

// ---------------------------------------------------------------------------
// The oracle: is a forwarded path one this caller may use, however the
// backend reads it?
// ---------------------------------------------------------------------------

/// What a backend that folds Unicode compatibility forms (NFKC) or Windows
/// best-fit mappings could turn a character into, when that contains `.`,
/// `/` or `\\`.
fn fold_lookalike(c: char) -> Option<String> {
    use unicode_normalization::UnicodeNormalization;
    if c.is_ascii() {
        return None;
    }
    // Best-fit code pages map these to `/` and `\\`; NFKC leaves them alone.
    match c {
        '\u{2044}' | '\u{2215}' => return Some("/".into()),
        '\u{2216}' => return Some("\\".into()),
        _ => {}
    }
    let folded: String = std::iter::once(c).nfkc().collect();
    folded.contains(['.', '/', '\\']).then_some(folded)
}

/// Checks a decoded reading for anything a backend could read as another
/// path: dot segments (also via look-alikes), `//`, `\`, `;`, control bytes.
fn hygiene(path: &str, allow_semicolon: bool) -> Result<(), String> {
    if let Some(c) = path.chars().find(|c| c.is_control()) {
        return Err(format!("control character U+{:04X}", c as u32));
    }
    if path.contains('\\') {
        return Err("backslash".into());
    }
    if !allow_semicolon && path.contains(';') {
        return Err("semicolon".into());
    }
    if path.contains("//") {
        return Err("'//'".into());
    }
    for seg in path.split('/') {
        let folded: String = seg
            .chars()
            .map(|c| fold_lookalike(c).unwrap_or_else(|| c.to_string()))
            .collect();
        if folded == "." || folded == ".." {
            return Err(format!("dot segment {seg:?}"));
        }
        if folded != seg && (folded.contains('/') || folded.contains('\\')) {
            return Err(format!("look-alike separator in {seg:?}"));
        }
    }
    Ok(())
}

fn lit_eq(seg: &str, lit: &str, fold_case: bool) -> bool {
    seg == lit
        || (fold_case
            && (seg.to_lowercase() == lit.to_lowercase()
                || seg.to_uppercase() == lit.to_uppercase()))
}

fn matches(pattern: &[Pat], segs: &[&str], fold_case: bool) -> bool {
    for (i, p) in pattern.iter().enumerate() {
        match p {
            Pat::Lit(l) => match segs.get(i) {
                Some(s) if lit_eq(s, l, fold_case) => {}
                _ => return false,
            },
            Pat::Param => match segs.get(i) {
                Some(s) if !s.is_empty() => {}
                _ => return false,
            },
            Pat::Rest => return segs.len() > i && !segs[i..].join("/").is_empty(),
        }
    }
    segs.len() == pattern.len()
}

/// The route a backend with this table would run for `method` and `path`:
/// the most specific match.
fn best_route(method: &str, path: &str, fold_case: bool) -> Option<&'static OracleRoute> {
    let segs: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    TABLE
        .iter()
        .filter(|(_, methods, _, _)| methods.is_empty() || methods.contains(&method))
        .filter(|(_, _, pattern, _)| matches(pattern, &segs, fold_case))
        .min_by_key(|(_, _, pattern, _)| pattern.iter().map(|p| p.rank()).collect::<Vec<_>>())
}

/// The route `viewer` may use that a backend runs for `path`, if any.
fn allowed_route(method: &str, path: &str, fold_case: bool) -> Result<&'static str, String> {
    match best_route(method, path, fold_case) {
        Some((name, _, _, true)) => Ok(name),
        Some((name, _, _, false)) => Err(format!("routed to {name}, which {method} may not use")),
        None => Err(format!("no route for {method}")),
    }
}

/// Strips Java `;` path parameters from every segment (`/a;x/b` is `/a/b`).
fn strip_path_params(path: &str) -> String {
    path.split('/')
        .map(|s| s.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/")
}

/// The ways a backend may read a received path.
fn readings(path: &str, profile: &Profile) -> Result<Vec<(&'static str, String)>, String> {
    if !path.starts_with('/') {
        return Err("not an origin-form path".into());
    }
    if let Some(b) = path.bytes().find(|b| !(0x21..0x7F).contains(b)) {
        return Err(format!("raw byte 0x{b:02X} forwarded"));
    }
    let decode = |s: &str| -> Result<String, String> {
        let bytes = decode_once(s).ok_or("invalid percent-encoding forwarded")?;
        String::from_utf8(bytes).map_err(|_| "decodes to invalid UTF-8".to_string())
    };
    let mut out = vec![("raw", path.to_string()), ("decoded once", decode(path)?)];
    if profile.java {
        out.push((
            "java: ';' params stripped, then decoded",
            decode(&strip_path_params(path))?,
        ));
        out.push((
            "java: decoded, then ';' params stripped",
            strip_path_params(&decode(path)?),
        ));
    }
    Ok(out)
}

/// `Ok(route)` when every reading of `path` is clean and matched by the same
/// allowed route of `method`.
fn oracle(method: &str, path: &str, profile: &Profile) -> Result<&'static str, String> {
    let mut route = None;
    for (how, reading) in readings(path, profile)? {
        hygiene(&reading, profile.java).map_err(|e| format!("{how} {reading:?}: {e}"))?;
        let matched = if profile.lenient {
            allowed_route(method, reading.trim_end_matches('/'), true)
                .or_else(|_| allowed_route(method, &reading, true))
        } else {
            allowed_route(method, &reading, false)
        };
        // With `allow_semicolon` the operator declares a backend that strips
        // `;` parameters; read without stripping, a path carrying them may
        // find no route at all (a 404 there, not a bypass), but it must never
        // find another route.
        let declared_java_reading = how.starts_with("java");
        if profile.java && !declared_java_reading && path.contains(';') {
            if let Err(e) = &matched {
                if e.starts_with("no route") {
                    continue;
                }
            }
        }
        let m = matched.map_err(|e| format!("{how} {reading:?}: {e}"))?;
        if route.is_some_and(|r| r != m) {
            return Err(format!("{how} {reading:?} matches {m}, not {route:?}"));
        }
        route = Some(m);
    }
    route.ok_or_else(|| "no reading".into())
}

#[test]
fn the_oracle_itself() {
    let p = &STRICT;
    assert_eq!(
        oracle("GET", "/api/v2/integrations/credentials/42", p),
        Ok("credentials.get")
    );
    assert_eq!(
        oracle("GET", "/api/v2/integrations/credentials", p),
        Ok("credentials.list")
    );
    assert_eq!(oracle("DELETE", "/public/x/", p), Ok("public"));
    for bad in [
        ("DELETE", "/api/v2/integrations/credentials/42"),
        ("GET", "/api/v2/integrations/credentials/42/secret"),
        ("GET", "/api/v2/admin/users"),
        ("GET", "/api/v2/integrations/credentials/42%2Fsecret"),
        ("GET", "/api/v2/integrations/credentials/%2E%2E"),
        ("GET", "/public/..%2Fapi"),
        ("GET", "/public/%2e%2e/api"),
        ("GET", "/public/a%3B"),
        ("GET", "/public/a%00"),
        ("GET", "/public/a%5Cb"),
        ("GET", "/public/%EF%BC%8E%EF%BC%8E"),
        ("GET", "/public/%C0%AE"),
        ("GET", "/public//x"),
        ("GET", "/public/"),
        ("GET", "/public/a b"),
        ("GET", "http://evil/public/x"),
        ("GET", "/api/v2/integrations/credentials/"),
        ("GET", "/API/v2/integrations/credentials"),
        ("GET", "/api/v2/integrations/credentials/export"),
        ("PUT", "/api/v2/integrations/credentials/42"),
    ] {
        assert!(oracle(bad.0, bad.1, p).is_err(), "{bad:?}");
    }
    // Java readings strip `;` parameters: `..;` is `..`.
    assert!(oracle("GET", "/public/..;/api/v2/admin/users", &JAVA).is_err());
    assert!(oracle("GET", "/public/..%3B/api/v2/admin/users", &JAVA).is_err());
    assert!(oracle("GET", "/api/v2/integrations/credentials/export;x", &JAVA).is_err());
    assert!(oracle("GET", "/api/v2/integrations/credentials/export%3Bx", &JAVA).is_err());
    assert!(oracle("GET", "/api/v2/integrations/credentials/;x", &JAVA).is_err());
    assert!(oracle("GET", "/api/v2/integrations/credentials/EXPORT", &LENIENT).is_err());
    assert_eq!(
        oracle("GET", "/api/v2/integrations/credentials/EXPORT", &STRICT),
        Ok("credentials.get")
    );
    assert_eq!(
        oracle(
            "GET",
            "/api/v2/integrations/credentials/42;jsessionid=1",
            &JAVA
        ),
        Ok("credentials.get")
    );
    assert_eq!(
        oracle("GET", "/API/V2/integrations/credentials", &LENIENT),
        Ok("credentials.list")
    );
    let v = expand("/a<0x09>b<*3:x/>c<0xFF>").unwrap();
    assert_eq!(v, b"/a\tbx/x/x/c\xFF");
    assert_eq!(expand("/<script>").unwrap(), b"/<script>");
}

/// `s`, cut to a printable length.
fn short(s: &str) -> String {
    match s.char_indices().nth(100) {
        Some((i, _)) => format!("{}…({} bytes)", &s[..i], s.len()),
        None => s.to_string(),
    }
}

/// What happened to one request.
enum Outcome {
    Refused(u16),
    Forwarded(&'static str, String),
}

async fn run_corpus(profile: Profile) {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.grant(VIEWER, &[VIEWER_GRANT]);
    let routes = ROUTES.replace("{normalize}", profile.normalize);
    let gw = GatewayBuilder::new(&routes)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let limit = Duration::from_secs(5);

    // Controls: the setup forwards what it must and refuses what it must, so
    // the corpus run below cannot pass by refusing everything.
    for (method, target, want) in [
        ("GET", "/api/v2/integrations/credentials/42", 200),
        ("GET", "/api/v2/integrations/credentials", 200),
        ("DELETE", "/public/x", 200),
        ("DELETE", "/api/v2/integrations/credentials/42", 403),
        ("PUT", "/api/v2/integrations/credentials/42", 403),
        ("GET", "/api/v2/integrations/credentials/42/secret", 403),
        ("GET", "/api/v2/admin/users", 403),
        ("GET", "/api/v2/integrations/credentials/export", 403),
        ("GET", "/api/v2/other", 403),
    ] {
        let resp = exchange(gw.addr, &request_bytes(method, target.as_bytes()), limit).await;
        assert_eq!(status_of(&resp), Some(want), "{method} {target}");
    }
    assert_eq!(
        backend.count(),
        3,
        "the three allowed controls were forwarded"
    );
    assert_eq!(
        api.calls(),
        1,
        "viewer's grants were looked up (and cached)"
    );

    let vectors = corpus();
    println!(
        "bypass corpus: {} vectors ({} requests) against {}",
        vectors.len(),
        vectors.len() * 2,
        profile.name
    );
    assert!(
        vectors.len() >= 150,
        "the corpus has {} vectors",
        vectors.len()
    );

    let mut failures: Vec<String> = Vec::new();
    let mut refused: BTreeMap<u16, usize> = BTreeMap::new();
    let mut forwarded: Vec<String> = Vec::new();
    let mut expected_backend = backend.count();
    for v in &vectors {
        for method in ["GET", "DELETE"] {
            let what = format!("line {}: {method} {}", v.line, short(&v.text));
            let before = backend.count();
            let resp = exchange(gw.addr, &request_bytes(method, &v.bytes), limit).await;
            let status = status_of(&resp);
            let got: Vec<Recorded> = backend.requests().split_off(before);
            expected_backend += got.len();
            let outcome = match (status, got.as_slice()) {
                (Some(s @ (400 | 401 | 403 | 414 | 431)), []) => Ok(Outcome::Refused(s)),
                (Some(200), [rec]) if rec.method != method => Err(format!(
                    "forwarded as {} (sent {method}) to {:?}",
                    rec.method, rec.target
                )),
                (Some(200), [rec]) => oracle(method, rec.path(), &profile)
                    .map(|route| Outcome::Forwarded(route, rec.target.clone()))
                    .map_err(|e| format!("BYPASS: forwarded {:?}: {e}", short(&rec.target))),
                (s, recs) => Err(format!(
                    "status {s:?}, backend received {:?}",
                    recs.iter().map(|r| &r.target).collect::<Vec<_>>()
                )),
            };
            match outcome {
                Err(e) => failures.push(format!("{what}\n      -> {e}")),
                Ok(Outcome::Refused(s)) => *refused.entry(s).or_default() += 1,
                Ok(Outcome::Forwarded(route, target)) => {
                    forwarded.push(format!("{what}  =>  {}  ({route})", short(&target)));
                    // What was forwarded is canonical: sent again, it is
                    // forwarded unchanged.
                    let before = backend.count();
                    let again =
                        exchange(gw.addr, &request_bytes(method, target.as_bytes()), limit).await;
                    let last = backend.last().map(|r| r.target);
                    if status_of(&again) != Some(200) || last.as_deref() != Some(target.as_str()) {
                        failures.push(format!(
                            "{what}\n      -> forwarded {target:?}, but re-sending it gave {:?} and forwarded {last:?}",
                            status_of(&again)
                        ));
                    }
                    expected_backend += backend.count() - before;
                }
            }
        }
    }
    // Nothing reaches the backend late (e.g. after the client was answered).
    tokio::time::sleep(Duration::from_millis(300)).await;
    if backend.count() != expected_backend {
        failures.push(format!(
            "backend received {} requests, expected {expected_backend}",
            backend.count()
        ));
    }

    println!("  refused: {refused:?}; forwarded: {}", forwarded.len());
    for f in &forwarded {
        println!("  forwarded {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus requests broke the no-bypass rule ({}):\n  {}",
        failures.len(),
        vectors.len() * 2,
        profile.name,
        failures.join("\n  ")
    );
    assert!(
        !forwarded.is_empty() && refused.values().sum::<usize>() > vectors.len(),
        "the corpus exercises both outcomes"
    );
}

#[tokio::test]
async fn corpus_strict_profile() {
    run_corpus(STRICT).await;
}

#[tokio::test]
async fn corpus_java_semicolon_profile() {
    run_corpus(JAVA).await;
}

#[tokio::test]
async fn corpus_lenient_profile() {
    run_corpus(LENIENT).await;
}
