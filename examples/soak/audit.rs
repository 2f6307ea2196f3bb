//! The audit: every request the backend received, checked against what the
//! route table allows its caller (the oracle in `table.rs`).
//!
//! A received request passes when its path, read the ways a backend may
//! read it (as received, and percent-decoded once), is clean (no dot
//! segments, `//`, `\`, `;`, control characters or invalid UTF-8) and
//! allowed to the caller its `Authorization` header names under both
//! readings; when the subject header the backend sees is the caller's (or
//! absent on a public route); and when a body whose length the client
//! declared arrived whole.

use crate::corpus::decode_once;
use crate::table::{Route, Verdict, route_of, verdict};

/// A request as the recording backend received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// Seconds since the soak started.
    pub at: f64,
    /// Method.
    pub method: String,
    /// Request target as received.
    pub target: String,
    /// `Authorization`, if any.
    pub authorization: Option<String>,
    /// Every `x-authenticated-subject` value.
    pub subjects: Vec<String>,
    /// Bytes of body received; `None` when the body was cut off (the
    /// gateway aborts an upload over its size limit).
    pub body_len: Option<usize>,
    /// `X-Request-Id`, if any.
    pub request_id: Option<String>,
    /// The body length the client declared in `x-soak-body-len`.
    pub declared_len: Option<usize>,
}

/// One request the audit refused, and why.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The request.
    pub request: Received,
    /// What is wrong.
    pub reason: String,
}

/// Checks every received request; returns the violations.
pub fn audit(received: &[Received]) -> Vec<Violation> {
    received
        .iter()
        .filter_map(|r| {
            check(r).err().map(|reason| Violation {
                request: r.clone(),
                reason,
            })
        })
        .collect()
}

/// The caller a request's `Authorization` names: the bearer token.
fn caller(r: &Received) -> Option<&str> {
    r.authorization
        .as_deref()
        .map(|a| a.strip_prefix("Bearer ").unwrap_or(a))
}

fn check(r: &Received) -> Result<(), String> {
    let path = r.target.split('?').next().unwrap_or("");
    let who = caller(r);
    let mut readings = vec![path.to_string()];
    if path.contains('%') {
        let decoded = decode_once(path).and_then(|d| String::from_utf8(d).ok());
        readings.push(decoded.ok_or("invalid percent-encoding or UTF-8")?);
    }
    let mut route = None;
    for reading in &readings {
        clean(reading)?;
        if verdict(who, &r.method, reading) != Verdict::Allow {
            return Err(format!(
                "{} {reading} is not allowed to {}",
                r.method,
                who.unwrap_or("a caller without credentials")
            ));
        }
        route = route_of(&r.method, reading);
    }
    match (route, who) {
        (Some(Route::Public), _) if r.subjects.iter().all(|s| Some(s.as_str()) == who) => {}
        (Some(Route::Public), _) => {
            return Err(format!("subject header {:?} on a public route", r.subjects));
        }
        (_, Some(w)) if r.subjects.len() == 1 && r.subjects[0] == w => {}
        _ => {
            return Err(format!(
                "subject header {:?} for caller {who:?}",
                r.subjects
            ));
        }
    }
    if let (Some(sent), Some(got)) = (r.declared_len, r.body_len)
        && sent != got
    {
        return Err(format!("body of {got} bytes, {sent} sent"));
    }
    Ok(())
}

/// A path a backend could route on without ambiguity.
fn clean(path: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("path {path:?}: {why}"));
    if !path.starts_with('/') {
        return bad("not origin-form");
    }
    if path.contains("//") {
        return bad("empty segment");
    }
    if path.contains('\\') || path.contains(';') {
        return bad("backslash or semicolon");
    }
    if path.chars().any(|c| c.is_control()) {
        return bad("control character");
    }
    if path.split('/').any(|s| s == "." || s == "..") {
        return bad("dot segment");
    }
    // Full-width and other look-alike dots that some routers fold to `.`.
    let dotlike = |c: char| matches!(c, '.' | '\u{ff0e}' | '\u{2024}' | '\u{fe52}');
    if path
        .split('/')
        .any(|s| matches!(s.chars().count(), 1 | 2) && s.chars().all(dotlike))
    {
        return bad("look-alike dot segment");
    }
    Ok(())
}

/// Forged records the audit must refuse: a forwarded request the caller
/// may not make, a spoofed subject, a hostile path, a truncated body.
pub fn forged() -> Vec<Received> {
    let base = Received {
        at: 0.0,
        method: "DELETE".into(),
        target: "/api/v2/integrations/credentials/42".into(),
        authorization: Some("Bearer viewer".into()),
        subjects: vec!["viewer".into()],
        body_len: Some(0),
        declared_len: None,
        request_id: None,
    };
    vec![
        base.clone(),
        Received {
            method: "GET".into(),
            subjects: vec!["admin".into()],
            ..base.clone()
        },
        Received {
            method: "GET".into(),
            target: "/api/v2/integrations/credentials/42/%2e%2e/..%2Fsecret".into(),
            ..base.clone()
        },
        Received {
            method: "GET".into(),
            target: "/api/v2/admin/users".into(),
            authorization: None,
            subjects: vec![],
            ..base.clone()
        },
        Received {
            method: "PUT".into(),
            authorization: Some("Bearer editor".into()),
            subjects: vec!["editor".into()],
            body_len: Some(1000),
            declared_len: Some(524_288),
            ..base
        },
    ]
}

/// Runs the audit on the forged records: `Ok` when it refuses every one.
pub fn self_check() -> Result<usize, String> {
    let forged = forged();
    let refused = audit(&forged).len();
    if refused == forged.len() {
        Ok(refused)
    } else {
        Err(format!(
            "the audit refused {refused} of {} forged requests",
            forged.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: &str, target: &str, caller: &str) -> Received {
        Received {
            at: 0.0,
            method: method.into(),
            target: target.into(),
            authorization: Some(format!("Bearer {caller}")),
            subjects: vec![caller.into()],
            body_len: Some(0),
            declared_len: None,
            request_id: None,
        }
    }

    #[test]
    fn permitted_requests_pass() {
        let good = [
            ok("GET", "/api/v2/integrations/credentials/42?x=1", "viewer"),
            ok("DELETE", "/api/v2/integrations/credentials/42", "deleter"),
            ok("POST", "/api/integrations/7/permissions", "editor"),
            ok("GET", "/api/v2/integrations/credentials/%41", "viewer"),
        ];
        assert!(audit(&good).is_empty(), "{:?}", audit(&good));
    }

    #[test]
    fn every_forged_request_fails_the_audit() {
        for f in forged() {
            assert_eq!(audit(std::slice::from_ref(&f)).len(), 1, "{f:?} passed");
        }
        assert!(self_check().is_ok());
    }

    #[test]
    fn a_forged_request_among_good_ones_is_found() {
        let mut log = vec![ok("GET", "/api/v2/integrations/credentials", "viewer"); 100];
        log.insert(50, ok("POST", "/api/integrations/8/permissions", "editor"));
        let v = audit(&log);
        assert_eq!(v.len(), 1);
        assert!(v[0].reason.contains("not allowed"), "{}", v[0].reason);
    }

    #[test]
    fn encoded_readings_are_checked_too() {
        // Allowed as received, but a decoding backend sees another route.
        let r = ok(
            "GET",
            "/api/v2/integrations/credentials/42%2Fsecret",
            "viewer",
        );
        assert_eq!(audit(&[r]).len(), 1);
    }
}
