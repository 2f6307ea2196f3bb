//! The permission API contract (SPEC §6).
//!
//! `GET {url}` with the caller's credential headers copied verbatim, the
//! configured static headers and `X-Request-Id`. 200 with JSON gives grants;
//! 401/403 mean the credential is rejected; anything else, a timeout, or an
//! answer of the wrong shape means the API is unavailable.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, HOST};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use serde_json::Value;

use super::{Answer, Credentials, Fetched, Unavailable};
use crate::config::HttpGrantsConfig;
use crate::decision::Grants;
use crate::permission::{Permission, PermissionSet};
use crate::transport::{Http1Pool, TransportError};

/// Largest permission API answer read.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The permission API, reached over one worker's connection pool.
#[derive(Clone)]
pub struct HttpSource {
    config: Arc<HttpGrantsConfig>,
    pool: Arc<Http1Pool<Empty<Bytes>>>,
    uri: Uri,
}

impl HttpSource {
    /// A source for `config` with its own connection pool.
    pub fn new(config: Arc<HttpGrantsConfig>) -> Self {
        let pool = Http1Pool::new(config.origin.connect_to.clone(), config.timeout);
        let uri = Uri::from(config.origin.path_and_query.clone());
        Self { config, pool, uri }
    }

    /// Asks the permission API about `creds`.
    pub async fn fetch(
        &self,
        creds: &Credentials<'_>,
        request_id: &HeaderValue,
    ) -> Result<Fetched, Unavailable> {
        let mut req = Request::new(Empty::new());
        *req.uri_mut() = self.uri.clone();
        let h = req.headers_mut();
        h.insert(HOST, self.config.origin.host.clone());
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        for (name, value) in &self.config.headers {
            h.append(name.clone(), value.clone());
        }
        creds.copy_to(h);
        h.insert("x-request-id", request_id.clone());

        let timeout = self.config.timeout;
        let exchange = async {
            let resp = self.pool.send(req, timeout).await.map_err(|e| match e {
                TransportError::Timeout | TransportError::ConnectTimeout => Unavailable::Timeout,
                other => Unavailable::Transport(other.to_string()),
            })?;
            let status = resp.status();
            let max_age = max_age(resp.headers());
            match status {
                StatusCode::OK => {}
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Ok(Fetched {
                        answer: Answer::Rejected,
                        max_age,
                    });
                }
                other => return Err(Unavailable::Status(other.as_u16())),
            }
            let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| Unavailable::Transport(format!("reading the answer: {e}")))?
                .to_bytes();
            let grants = parse_answer(&body, &self.config)?;
            Ok(Fetched {
                answer: Answer::Granted(Arc::new(grants)),
                max_age,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(Unavailable::Timeout))
    }
}

/// Reads grants out of a 200 answer with the configured JSON pointers.
///
/// Grants that are not valid permissions are skipped (they could only narrow
/// access); an invalid deny makes the whole answer unusable, since skipping
/// it would widen access.
pub fn parse_answer(body: &[u8], config: &HttpGrantsConfig) -> Result<Grants, Unavailable> {
    let broken = |m: String| Unavailable::BrokenAnswer(m);
    let json: Value =
        serde_json::from_slice(body).map_err(|e| broken(format!("invalid JSON: {e}")))?;
    let strings = |pointer: &str, required: bool| -> Result<Vec<&str>, Unavailable> {
        match json.pointer(pointer) {
            None | Some(Value::Null) if !required => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .ok_or_else(|| broken(format!("{pointer} has a non-string item")))
                })
                .collect(),
            None => Err(broken(format!("{pointer} is missing"))),
            Some(_) => Err(broken(format!("{pointer} is not an array of strings"))),
        }
    };
    let allow: PermissionSet = strings(&config.permissions_pointer, true)?
        .into_iter()
        .filter_map(|p| match Permission::parse(p) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(permission = p, error = %e, "permission API granted an invalid permission; ignored");
                None
            }
        })
        .collect();
    let deny = strings(&config.deny_pointer, false)?
        .into_iter()
        .map(|p| Permission::parse(p).map_err(|e| broken(format!("invalid deny {p:?}: {e}"))))
        .collect::<Result<PermissionSet, _>>()?;
    let subject = match json.pointer(&config.subject_pointer) {
        None | Some(Value::Null) => "unknown",
        Some(Value::String(s)) if is_header_safe(s) => s.as_str(),
        Some(Value::String(_)) => {
            return Err(broken(
                "subject has characters a header cannot carry".into(),
            ));
        }
        Some(_) => {
            return Err(broken(format!(
                "{} is not a string",
                config.subject_pointer
            )));
        }
    };
    Ok(Grants {
        subject: subject.into(),
        allow,
        deny,
    })
}

/// Whether `s` can be sent as a header value unchanged: visible ASCII and spaces.
fn is_header_safe(s: &str) -> bool {
    !s.is_empty() && s.len() <= 1024 && s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// `Cache-Control: max-age=N`, with `no-store` and `no-cache` meaning 0.
pub fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found: Option<Duration> = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let d = directive.trim().to_ascii_lowercase();
            let age = if d == "no-store" || d == "no-cache" {
                Some(Duration::ZERO)
            } else if let Some(n) = d.strip_prefix("max-age=") {
                n.trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs)
            } else {
                None
            };
            if let Some(a) = age {
                found = Some(found.map_or(a, |f| f.min(a)));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HttpOrigin;

    fn config() -> HttpGrantsConfig {
        HttpGrantsConfig {
            origin: HttpOrigin::parse("http://127.0.0.1:1/grants", true).unwrap(),
            timeout: Duration::from_secs(1),
            headers: HeaderMap::new(),
            subject_pointer: "/subject".into(),
            permissions_pointer: "/permissions".into(),
            deny_pointer: "/deny".into(),
        }
    }

    #[test]
    fn reads_grants_denies_and_subject() {
        let g = parse_answer(
            br#"{"subject":"alice","permissions":["a:b:*","C:D"],"deny":["a:b:delete"]}"#,
            &config(),
        )
        .unwrap();
        assert_eq!(&*g.subject, "alice");
        assert_eq!(
            g.allow.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            ["a:b:*", "c:d"]
        );
        assert_eq!(g.deny.len(), 1);
    }

    #[test]
    fn absent_subject_is_unknown_and_absent_deny_is_none() {
        let g = parse_answer(br#"{"permissions":[]}"#, &config()).unwrap();
        assert_eq!(&*g.subject, "unknown");
        assert!(g.deny.is_empty() && g.allow.is_empty());
    }

    #[test]
    fn custom_pointers() {
        let mut c = config();
        c.permissions_pointer = "/data/perms".into();
        c.subject_pointer = "/data/user/id".into();
        let g = parse_answer(br#"{"data":{"perms":["x"],"user":{"id":"u1"}}}"#, &c).unwrap();
        assert_eq!(&*g.subject, "u1");
        assert_eq!(g.allow.len(), 1);
    }

    #[test]
    fn wrong_shapes_are_unavailable() {
        for body in [
            &b"not json"[..],
            br#"{"subject":"a"}"#,
            br#"{"permissions":"a:b"}"#,
            br#"{"permissions":[1]}"#,
            br#"{"permissions":[],"deny":"x"}"#,
            br#"{"permissions":[],"deny":["bad perm"]}"#,
            br#"{"permissions":[],"subject":7}"#,
            br#"{"permissions":[],"subject":"a\nb"}"#,
            br#"[]"#,
        ] {
            let r = parse_answer(body, &config());
            assert!(
                matches!(r, Err(Unavailable::BrokenAnswer(_))),
                "{}: {r:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn invalid_grants_are_skipped() {
        let g = parse_answer(
            br#"{"permissions":["ok:one","not ok","ok:two"]}"#,
            &config(),
        )
        .unwrap();
        assert_eq!(g.allow.len(), 2);
    }

    #[test]
    fn cache_control_max_age() {
        let mut h = HeaderMap::new();
        assert_eq!(max_age(&h), None);
        h.insert(CACHE_CONTROL, "private, max-age=7".parse().unwrap());
        assert_eq!(max_age(&h), Some(Duration::from_secs(7)));
        h.append(CACHE_CONTROL, "max-age=3".parse().unwrap());
        assert_eq!(max_age(&h), Some(Duration::from_secs(3)));
        h.insert(CACHE_CONTROL, "no-store".parse().unwrap());
        assert_eq!(max_age(&h), Some(Duration::ZERO));
    }
}
