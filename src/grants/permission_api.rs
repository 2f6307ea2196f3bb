//! The permission API contract (README, "The permission API").
//!
//! `GET {url}` with the caller's credential headers copied verbatim, the
//! configured static headers and `X-Request-Id`. 200 with JSON gives grants;
//! 401/403 mean the credential is rejected; anything else, a timeout, or an
//! answer of the wrong shape means the API is unavailable.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, HOST};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use serde_json::Value;

use super::{Answer, BrokenAnswer, Credentials, Fetched, Unavailable};
use crate::common::X_REQUEST_ID;
use crate::config::HttpGrantsConfig;
use crate::decision::Grants;
use crate::metrics::{ApiOutcome, WorkerMetrics};
use crate::permission::{Permission, PermissionSet};
use crate::transport::{Http1Pool, TransportError};

/// Largest permission API answer read.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The permission API, reached over one worker's connection pool.
#[derive(Clone)]
pub struct HttpSource {
    config: Arc<HttpGrantsConfig>,
    metrics: Arc<WorkerMetrics>,
    pointers: Arc<Pointers>,
    pool: Arc<Http1Pool<Empty<Bytes>>>,
    uri: Uri,
}

impl HttpSource {
    /// A source for `config` with its own connection pool, counting its
    /// calls into `metrics`.
    pub fn new(config: Arc<HttpGrantsConfig>, metrics: Arc<WorkerMetrics>) -> Self {
        let pool = Http1Pool::new(
            config.origin.connect_to.clone(),
            config.origin.tls.clone(),
            config.timeout,
        );
        let uri = Uri::from(config.origin.path_and_query.clone());
        let pointers = Arc::new(Pointers::new(&config));
        Self {
            config,
            metrics,
            pointers,
            pool,
            uri,
        }
    }

    /// Asks the permission API about `creds`, and counts the call.
    pub async fn fetch(
        &self,
        creds: &Credentials<'_>,
        request_id: &HeaderValue,
    ) -> Result<Fetched, Unavailable> {
        let started = Instant::now();
        let fetched = self.call(creds, request_id, started).await;
        let outcome = match &fetched {
            Ok(Fetched {
                answer: Answer::Granted(_),
                ..
            }) => ApiOutcome::Granted,
            Ok(Fetched {
                answer: Answer::Rejected,
                ..
            }) => ApiOutcome::Rejected,
            Err(Unavailable::Status(_)) => ApiOutcome::Status,
            Err(Unavailable::Timeout) => ApiOutcome::Timeout,
            Err(Unavailable::Transport(_) | Unavailable::ReadingAnswer(_)) => ApiOutcome::Transport,
            Err(Unavailable::BrokenAnswer(_) | Unavailable::NoGrantsFile) => ApiOutcome::Broken,
        };
        self.metrics.permission_api(outcome, started.elapsed());
        fetched
    }

    /// One exchange, started at `started`; `grants.timeout` covers it
    /// whole, up to the last byte of the answer (on the pool's coarse
    /// timer, so up to a tick late).
    async fn call(
        &self,
        creds: &Credentials<'_>,
        request_id: &HeaderValue,
        started: Instant,
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
        h.insert(X_REQUEST_ID.clone(), request_id.clone());

        let timeout = self.config.timeout;
        let exchange = async {
            let resp = self
                .pool
                .send(req, started, timeout)
                .await
                .map_err(|e| match e {
                    TransportError::Timeout | TransportError::ConnectTimeout => {
                        Unavailable::Timeout
                    }
                    other => Unavailable::Transport(other),
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
                .map_err(Unavailable::ReadingAnswer)?
                .to_bytes();
            let grants = parse_answer_with(&body, &self.pointers)?;
            Ok(Fetched {
                answer: Answer::Granted(Arc::new(grants)),
                max_age,
            })
        };
        self.pool
            .timer()
            .timeout_at(started + timeout, exchange)
            .await
            .unwrap_or(Err(Unavailable::Timeout))
    }
}

/// The configured JSON pointers, split into unescaped tokens once.
#[derive(Clone, Debug)]
pub struct Pointers {
    subject: (String, Vec<String>),
    permissions: (String, Vec<String>),
    deny: (String, Vec<String>),
}

impl Pointers {
    /// Compiles the pointers of `config`.
    pub fn new(config: &HttpGrantsConfig) -> Self {
        let compile = |p: &str| {
            let tokens = p
                .split('/')
                .skip(1)
                .map(|t| t.replace("~1", "/").replace("~0", "~"))
                .collect();
            (p.to_string(), tokens)
        };
        Self {
            subject: compile(&config.subject_pointer),
            permissions: compile(&config.permissions_pointer),
            deny: compile(&config.deny_pointer),
        }
    }

    /// Whether all three name keys of the top-level object.
    fn top_level(&self) -> bool {
        [&self.subject, &self.permissions, &self.deny]
            .iter()
            .all(|(_, t)| t.len() == 1)
    }
}

/// What an answer holds at the three pointers (`None`: absent or null).
#[derive(Default)]
struct Picked<'a> {
    subject: Option<Cow<'a, str>>,
    permissions: Option<Vec<Cow<'a, str>>>,
    deny: Option<Vec<Cow<'a, str>>>,
}

/// Reads grants out of a 200 answer with the configured JSON pointers.
///
/// Grants that are not valid permissions are skipped (they could only narrow
/// access); an invalid deny makes the whole answer unusable, since skipping
/// it would widen access.
pub fn parse_answer(body: &[u8], config: &HttpGrantsConfig) -> Result<Grants, Unavailable> {
    parse_answer_with(body, &Pointers::new(config))
}

/// [`parse_answer`] with pointers compiled once.
pub fn parse_answer_with(body: &[u8], pointers: &Pointers) -> Result<Grants, Unavailable> {
    let broken = Unavailable::BrokenAnswer;
    let value: Value;
    let picked = if pointers.top_level() {
        // One pass over the object, keeping only the three keys.
        let seed = PickSeed(pointers);
        let mut de = serde_json::Deserializer::from_slice(body);
        serde::de::DeserializeSeed::deserialize(seed, &mut de)
            .and_then(|p| de.end().map(|()| p))
            .map_err(|e| broken(BrokenAnswer::Json(e)))?
    } else {
        value = serde_json::from_slice(body).map_err(|e| broken(BrokenAnswer::Json(e)))?;
        pick_from_value(&value, pointers)?
    };
    let Some(permissions) = picked.permissions else {
        return Err(broken(BrokenAnswer::Missing(
            pointers.permissions.0.clone(),
        )));
    };
    let allow: PermissionSet = permissions
        .iter()
        .filter_map(|p| match Permission::parse(p) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(permission = %p, error = %e, "permission API granted an invalid permission; ignored");
                None
            }
        })
        .collect();
    let deny = picked
        .deny
        .unwrap_or_default()
        .iter()
        .map(|p| {
            Permission::parse(p).map_err(|error| {
                broken(BrokenAnswer::InvalidDeny {
                    value: p.to_string(),
                    error,
                })
            })
        })
        .collect::<Result<PermissionSet, _>>()?;
    let subject = match picked.subject {
        None => "unknown".into(),
        Some(s) if is_header_safe(&s) => s,
        Some(_) => {
            return Err(broken(BrokenAnswer::UnsafeSubject));
        }
    };
    Ok(Grants {
        subject: crate::decision::Subject::from(&*subject),
        allow,
        deny,
    })
}

/// Follows pointer tokens through a parsed answer.
fn pick_from_value<'a>(json: &'a Value, pointers: &Pointers) -> Result<Picked<'a>, Unavailable> {
    let at = |tokens: &[String]| -> Option<&'a Value> {
        tokens.iter().try_fold(json, |v, t| match v {
            Value::Object(m) => m.get(t.as_str()),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
    };
    let strings =
        |(name, tokens): &(String, Vec<String>)| -> Result<Option<Vec<Cow<'a, str>>>, Unavailable> {
            match at(tokens) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str().map(Cow::Borrowed).ok_or_else(|| {
                            Unavailable::BrokenAnswer(BrokenAnswer::WrongType {
                                pointer: name.clone(),
                                expected: "an array of strings",
                            })
                        })
                    })
                    .collect::<Result<_, _>>()
                    .map(Some),
                Some(_) => Err(Unavailable::BrokenAnswer(BrokenAnswer::WrongType {
                    pointer: name.clone(),
                    expected: "an array of strings",
                })),
            }
        };
    let subject = match at(&pointers.subject.1) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Cow::Borrowed(s.as_str())),
        Some(_) => {
            return Err(Unavailable::BrokenAnswer(BrokenAnswer::WrongType {
                pointer: pointers.subject.0.clone(),
                expected: "a string",
            }));
        }
    };
    Ok(Picked {
        subject,
        permissions: strings(&pointers.permissions)?,
        deny: strings(&pointers.deny)?,
    })
}

/// Deserializes a top-level object, keeping the three configured keys.
struct PickSeed<'p>(&'p Pointers);

impl<'de> serde::de::DeserializeSeed<'de> for PickSeed<'_> {
    type Value = Picked<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Picked<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PickSeed<'_> {
    type Value = Picked<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Picked<'de>, A::Error> {
        #[derive(serde::Deserialize)]
        #[serde(transparent)]
        struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
        let p = self.0;
        let mut picked = Picked::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let key = key.0;
            if key == p.permissions.1[0] {
                picked.permissions = map
                    .next_value::<Option<Vec<Text<'de>>>>()?
                    .map(|v| v.into_iter().map(|t| t.0).collect());
            } else if key == p.deny.1[0] {
                picked.deny = map
                    .next_value::<Option<Vec<Text<'de>>>>()?
                    .map(|v| v.into_iter().map(|t| t.0).collect());
            } else if key == p.subject.1[0] {
                picked.subject = map.next_value::<Option<Text<'de>>>()?.map(|t| t.0);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(picked)
    }
}

/// Whether `s` can be sent as a header value unchanged: visible ASCII and spaces.
pub(super) fn is_header_safe(s: &str) -> bool {
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
    fn nested_pointers_and_escapes() {
        let mut c = config();
        c.permissions_pointer = "/a~1b/0/list".into();
        c.subject_pointer = "/who".into();
        c.deny_pointer = "/no~0pe".into();
        let g = parse_answer(br#"{"a/b":[{"list":["x:y"]}],"who":"w","no~pe":["z"]}"#, &c).unwrap();
        assert_eq!((&*g.subject, g.allow.len(), g.deny.len()), ("w", 1, 1));
        assert!(matches!(
            parse_answer(br#"{"a/b":[{"list":"x"}]}"#, &c),
            Err(Unavailable::BrokenAnswer(_))
        ));
        assert!(matches!(
            parse_answer(br#"{"a/b":[]}"#, &c),
            Err(Unavailable::BrokenAnswer(_))
        ));
    }

    #[test]
    fn escaped_strings_and_trailing_garbage() {
        let g = parse_answer(
            br#"{"subject":"alice","permissions":["a:b"],"extra":{"deep":[1,2]}}"#,
            &config(),
        )
        .unwrap();
        assert_eq!(&*g.subject, "alice");
        assert_eq!(g.allow.iter().next().unwrap().as_str(), "a:b");
        assert!(matches!(
            parse_answer(br#"{"permissions":[]} x"#, &config()),
            Err(Unavailable::BrokenAnswer(_))
        ));
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
