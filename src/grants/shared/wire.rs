//! How an answer is stored in Redis: compact JSON with the subject, the
//! grants and denies, and the expiry — never a credential.
//!
//! `{"v":1,"s":"alice","a":["items"],"d":[],"x":1767225600000}` for grants,
//! `{"v":1,"r":true,"x":…}` for a rejection; `x` is the expiry in Unix
//! milliseconds. Anything else read back is garbage: the caller asks the
//! grant source instead.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::decision::Grants;
use crate::grants::Answer;
use crate::grants::permission_api::is_header_safe;
use crate::permission::{Permission, PermissionSet};

/// Format version.
const VERSION: u8 = 1;

/// Largest value decoded (a permission API answer is at most 1 MiB too).
pub const MAX_VALUE_BYTES: usize = 1 << 20;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    v: u8,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    r: bool,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    s: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Vec::is_empty")]
    a: Vec<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Vec::is_empty")]
    d: Vec<std::borrow::Cow<'a, str>>,
    x: u64,
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The stored form of `answer`, expiring at Unix millisecond `expires_ms`.
pub fn encode(answer: &Answer, expires_ms: u64) -> Vec<u8> {
    fn list(set: &PermissionSet) -> Vec<std::borrow::Cow<'_, str>> {
        set.iter().map(|p| p.as_str().into()).collect()
    }
    let wire = match answer {
        Answer::Granted(g) => Wire {
            v: VERSION,
            r: false,
            s: Some((&*g.subject).into()),
            a: list(&g.allow),
            d: list(&g.deny),
            x: expires_ms,
        },
        Answer::Rejected => Wire {
            v: VERSION,
            r: true,
            s: None,
            a: Vec::new(),
            d: Vec::new(),
            x: expires_ms,
        },
    };
    serde_json::to_vec(&wire).unwrap_or_default()
}

/// Why a stored value was not used.
#[derive(Debug, PartialEq, Eq)]
pub enum Garbage {
    /// Not our JSON, or too large.
    Format,
    /// A permission or subject that could not have been stored by permgate.
    Invalid,
}

/// An answer read back, and how long it is still good for at `now_ms`
/// (`None` when it has expired).
pub fn decode(bytes: &[u8], now_ms: u64) -> Result<Option<(Answer, Duration)>, Garbage> {
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(Garbage::Format);
    }
    let wire: Wire<'_> = serde_json::from_slice(bytes).map_err(|_| Garbage::Format)?;
    if wire.v != VERSION {
        return Err(Garbage::Format);
    }
    let Some(left) = wire.x.checked_sub(now_ms).filter(|ms| *ms > 0) else {
        return Ok(None);
    };
    let left = Duration::from_millis(left);
    if wire.r {
        if wire.s.is_some() || !wire.a.is_empty() || !wire.d.is_empty() {
            return Err(Garbage::Invalid);
        }
        return Ok(Some((Answer::Rejected, left)));
    }
    let subject = wire.s.ok_or(Garbage::Invalid)?;
    if !is_header_safe(&subject) {
        return Err(Garbage::Invalid);
    }
    let parse = |list: &[std::borrow::Cow<'_, str>]| {
        list.iter()
            .map(|p| Permission::parse(p).map_err(|_| Garbage::Invalid))
            .collect::<Result<PermissionSet, _>>()
    };
    let grants = Grants {
        subject: subject.as_ref().into(),
        allow: parse(&wire.a)?,
        deny: parse(&wire.d)?,
    };
    Ok(Some((Answer::Granted(Arc::new(grants)), left)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted() -> Answer {
        Answer::Granted(Arc::new(
            Grants::from_lists(
                "alice",
                &["items:item:view".into(), "a,b:*".into()],
                &["items:item:delete".into()],
            )
            .unwrap(),
        ))
    }

    #[test]
    fn answers_round_trip_with_their_remaining_lifetime() {
        let bytes = encode(&granted(), 10_000);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.contains("\"s\":\"alice\""), "{text}");
        let (answer, left) = decode(&bytes, 9_000).unwrap().unwrap();
        assert_eq!(left, Duration::from_millis(1_000));
        let (Answer::Granted(g), Answer::Granted(want)) = (answer, granted()) else {
            panic!("granted")
        };
        assert_eq!(g, want);

        let bytes = encode(&Answer::Rejected, 5_000);
        assert!(matches!(
            decode(&bytes, 4_990),
            Ok(Some((Answer::Rejected, d))) if d == Duration::from_millis(10)
        ));
        assert!(matches!(decode(&bytes, 5_000), Ok(None)), "expired");
        assert!(matches!(decode(&bytes, 9_000), Ok(None)), "expired");
    }

    #[test]
    fn garbage_is_never_an_answer() {
        let cases: &[&[u8]] = &[
            b"",
            b"\xff\xfe",
            b"null",
            b"{}",
            b"{\"v\":2,\"s\":\"a\",\"x\":99999999999999}",
            b"{\"v\":1,\"s\":\"a\",\"x\":99999999999999,\"extra\":1}",
            b"{\"v\":1,\"a\":[\"x\"],\"x\":99999999999999}",
            b"{\"v\":1,\"s\":\"a\",\"a\":[\"no spaces\"],\"x\":99999999999999}",
            b"{\"v\":1,\"s\":\"a\",\"d\":[\"bad deny!\"],\"x\":99999999999999}",
            b"{\"v\":1,\"s\":\"line\\nbreak\",\"x\":99999999999999}",
            b"{\"v\":1,\"r\":true,\"a\":[\"x\"],\"x\":99999999999999}",
            b"{\"v\":1,\"s\":\"a\",\"a\":\"x\",\"x\":99999999999999}",
        ];
        for c in cases {
            assert!(decode(c, 0).is_err(), "{:?}", String::from_utf8_lossy(c));
        }
    }
}
