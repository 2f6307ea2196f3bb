//! What the traffic is made of: the mix of requests, each with what the
//! route table says its answer must be.

use crate::corpus;

/// What the route table says the answer must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Forwarded: 2xx, or 502/503/504 while a fault is on.
    Allow,
    /// 403 (503 while grants cannot be resolved).
    Deny,
    /// 401 (503 while the permission API is down).
    Unauthenticated,
    /// 400.
    BadRequest,
    /// 413 (or the connection closed while the body was sent).
    TooLarge,
    /// An upload the table refuses: 403 (503 while grants cannot be
    /// resolved), or no answer: the gateway answers before reading the
    /// body and closes, and the client, still sending, may get a reset
    /// that discards the answer.
    UploadRefused,
    /// A hostile target: refused, or forwarded and then audited.
    Hostile,
}

/// The body a request carries.
#[derive(Clone, Copy)]
pub enum Payload {
    None,
    /// With `Content-Length`.
    Sized(usize),
    /// Chunked.
    Chunked(usize),
}

/// One request to send.
pub struct Planned {
    /// The traffic kind, for the report.
    pub kind: &'static str,
    /// Method.
    pub method: &'static str,
    /// Request target, byte for byte.
    pub target: Vec<u8>,
    /// The bearer token, if any.
    pub caller: Option<String>,
    /// Extra headers.
    pub headers: Vec<(&'static str, &'static str)>,
    /// The body.
    pub payload: Payload,
    /// What the table says.
    pub expect: Expect,
    /// Sent over raw TCP (a target a client library would not send).
    pub raw: bool,
}

/// A small deterministic generator (xorshift64).
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One KiB.
pub const KIB: usize = 1024;

/// The next request of the mix; `hostile` are the corpus targets.
pub fn plan(rng: &mut Rng, hostile: &[Vec<u8>]) -> Planned {
    let id = rng.below(100_000);
    let cred = format!("/api/v2/integrations/credentials/{id}");
    let p = |kind, method, target: String, caller: Option<&str>, expect| Planned {
        kind,
        method,
        target: target.into_bytes(),
        caller: caller.map(String::from),
        headers: vec![],
        payload: Payload::None,
        expect,
        raw: false,
    };
    use Expect::*;
    match rng.below(100) {
        0..35 => match rng.below(8) {
            0 => p(
                "allowed",
                "GET",
                "/api/v2/integrations/credentials?pageSize=25&pageNumber=1".into(),
                Some("viewer"),
                Allow,
            ),
            1 => p("allowed", "GET", cred, Some("viewer"), Allow),
            2 => Planned {
                payload: Payload::Sized(300),
                ..p("allowed", "PUT", cred, Some("editor"), Allow)
            },
            3 => p(
                "allowed",
                "POST",
                "/api/integrations/7/permissions".into(),
                Some("editor"),
                Allow,
            ),
            4 => p(
                "allowed",
                "GET",
                format!("{cred}/secret"),
                Some("admin"),
                Allow,
            ),
            5 => p(
                "allowed",
                "GET",
                format!("/api/v2/admin/users/{id}"),
                Some("admin"),
                Allow,
            ),
            6 => p("allowed", "DELETE", cred, Some("deleter"), Allow),
            _ => Planned {
                payload: Payload::Sized(200),
                ..p(
                    "allowed",
                    "POST",
                    "/api/v2/integrations/credentials".into(),
                    Some("editor"),
                    Allow,
                )
            },
        },
        35..55 => match rng.below(8) {
            0 => p("denied", "DELETE", cred, Some("viewer"), Deny),
            1 => p(
                "denied",
                "GET",
                format!("{cred}/secret"),
                Some("viewer"),
                Deny,
            ),
            2 => Planned {
                payload: Payload::Sized(300),
                ..p("denied", "PUT", cred, Some("viewer"), Deny)
            },
            3 => p(
                "denied",
                "POST",
                "/api/integrations/8/permissions".into(),
                Some("editor"),
                Deny,
            ),
            4 => p("denied", "DELETE", cred, Some("admin"), Deny),
            5 => p(
                "denied",
                "GET",
                format!("{cred}/secret"),
                Some("deleter"),
                Deny,
            ),
            6 => p(
                "denied",
                "GET",
                "/api/v2/admin/users".into(),
                Some("viewer"),
                Deny,
            ),
            _ => p(
                "denied",
                "POST",
                format!("/api/integrations/{id}/permissions"),
                Some("admin"),
                Deny,
            ),
        },
        55..65 => match rng.below(3) {
            0 => p("unauthenticated", "GET", cred, None, Unauthenticated),
            1 => p("unauthenticated", "DELETE", cred, None, Unauthenticated),
            // A new unknown token each time: misses, permission API 401s,
            // negative cache entries that must expire.
            _ => p(
                "unauthenticated",
                "GET",
                cred,
                Some(&format!("stranger-{}", rng.next())),
                Unauthenticated,
            ),
        },
        65..73 => match rng.below(3) {
            0 => p(
                "unmatched",
                "GET",
                format!("/api/v3/things/{id}"),
                Some("viewer"),
                Deny,
            ),
            1 => p("unmatched", "PATCH", cred, Some("admin"), Deny),
            _ => p("unmatched", "GET", format!("/nothing/{id}"), None, Deny),
        },
        73..78 => match rng.below(2) {
            0 => p("public", "GET", "/public/status".into(), None, Allow),
            _ => p(
                "public",
                "GET",
                format!("/public/docs/{id}"),
                Some("viewer"),
                Allow,
            ),
        },
        78..83 => match rng.below(3) {
            0 => Planned {
                headers: vec![
                    ("x-authenticated-subject", "admin"),
                    ("x_authenticated_subject", "admin"),
                ],
                ..p("spoofing", "GET", cred, Some("viewer"), Allow)
            },
            1 => Planned {
                headers: vec![("x-http-method-override", "GET")],
                ..p("spoofing", "DELETE", cred, Some("viewer"), BadRequest)
            },
            _ => Planned {
                headers: vec![("x-original-url", "/api/v2/integrations/credentials")],
                ..p(
                    "spoofing",
                    "GET",
                    format!("{cred}/secret"),
                    Some("viewer"),
                    BadRequest,
                )
            },
        },
        83..88 => match rng.below(5) {
            0 => Planned {
                payload: Payload::Sized(512 * KIB),
                ..p("large body", "PUT", cred, Some("editor"), Allow)
            },
            1 => Planned {
                payload: Payload::Chunked(256 * KIB),
                ..p("large body", "PUT", cred, Some("editor"), Allow)
            },
            2 => Planned {
                payload: Payload::Sized(1536 * KIB),
                ..p("large body", "PUT", cred, Some("editor"), TooLarge)
            },
            3 => Planned {
                payload: Payload::Chunked(1536 * KIB),
                ..p("large body", "PUT", cred, Some("editor"), TooLarge)
            },
            _ => Planned {
                payload: Payload::Sized(512 * KIB),
                ..p("large body", "PUT", cred, Some("viewer"), UploadRefused)
            },
        },
        _ => Planned {
            target: hostile[rng.below(hostile.len() as u64) as usize].clone(),
            raw: true,
            ..p(
                "hostile",
                if rng.below(2) == 0 { "GET" } else { "DELETE" },
                String::new(),
                Some("viewer"),
                Hostile,
            )
        },
    }
}

/// The hostile targets: the bypass corpus.
pub fn hostile_targets() -> Vec<Vec<u8>> {
    corpus::corpus().into_iter().map(|v| v.bytes).collect()
}
