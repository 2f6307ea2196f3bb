//! Answers the gateway gives itself (README, "Requests and responses"),
//! mapped in one place.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use serde::Serialize;

use super::body::ResponseBody;
use crate::common::X_REQUEST_ID;
use crate::decision::{BadRequest, Forbidden, Refused};
use crate::metrics::DecisionLabel;

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECS: &str = "2";

/// A per-request outcome that the gateway answers instead of the upstream.
#[derive(Debug)]
pub enum Refusal {
    /// 400: ambiguous or malformed request.
    BadRequest(BadRequest),
    /// 401: no credentials, or the grant source rejects them.
    Unauthenticated,
    /// 403: the grants do not satisfy the route, or no route matches.
    Forbidden {
        /// The route's name, when one matched.
        route: Option<Box<str>>,
        /// Why.
        why: Forbidden,
    },
    /// 400: the client's body is malformed (e.g. broken chunked framing).
    BadRequestBody,
    /// 413: the body is larger than `max_request_body`.
    PayloadTooLarge,
    /// 431: the headers are larger than `max_header_bytes`.
    HeadersTooLarge,
    /// 503: grants could not be resolved.
    PermissionServiceUnavailable,
    /// 502: the upstream refused, reset, or sent garbage.
    UpstreamUnavailable,
    /// 504: the upstream sent no response headers in time.
    UpstreamTimeout,
}

impl Refusal {
    /// The refusal for a decision not to forward.
    pub fn from_refused(refused: Refused, route: Option<&str>) -> Self {
        match refused {
            Refused::Forbidden(why) => Refusal::Forbidden {
                route: route.map(Box::from),
                why,
            },
            Refused::Unauthenticated => Refusal::Unauthenticated,
            Refused::Unavailable => Refusal::PermissionServiceUnavailable,
        }
    }

    /// Status, code and message of the answer.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Refusal::BadRequest(b) => (StatusCode::BAD_REQUEST, "bad_request", b.reason()),
            Refusal::BadRequestBody => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "request body is malformed",
            ),
            Refusal::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "valid credentials are required",
            ),
            Refusal::Forbidden {
                why: Forbidden::NoRoute,
                ..
            } => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "no route matches this request",
            ),
            Refusal::Forbidden {
                why: Forbidden::Missing(_),
                ..
            } => (StatusCode::FORBIDDEN, "forbidden", "missing permission"),
            Refusal::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "request body is too large",
            ),
            Refusal::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                "request headers are too large",
            ),
            Refusal::PermissionServiceUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "permission_service_unavailable",
                "permissions could not be resolved",
            ),
            Refusal::UpstreamUnavailable => (
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                "upstream is unavailable",
            ),
            Refusal::UpstreamTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "upstream did not answer in time",
            ),
        }
    }

    /// The decision as logged and counted. Upstream failures come after an
    /// allow.
    pub fn label(&self) -> DecisionLabel {
        match self {
            Refusal::BadRequest(_)
            | Refusal::BadRequestBody
            | Refusal::PayloadTooLarge
            | Refusal::HeadersTooLarge => DecisionLabel::BadRequest,
            Refusal::Unauthenticated => DecisionLabel::Unauthenticated,
            Refusal::Forbidden { .. } => DecisionLabel::Deny,
            Refusal::PermissionServiceUnavailable => DecisionLabel::Unavailable,
            Refusal::UpstreamUnavailable | Refusal::UpstreamTimeout => DecisionLabel::Allow,
        }
    }

    /// The requirements a 403 lists.
    pub fn missing(&self) -> Option<&[String]> {
        match self {
            Refusal::Forbidden {
                why: Forbidden::Missing(m),
                ..
            } => Some(m),
            _ => None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    status: u16,
    code: &'a str,
    message: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing_permissions: Option<&'a [String]>,
}

/// The JSON answer for `refusal`, with `X-Request-Id`, and `WWW-Authenticate`
/// (401) or `Retry-After` (503).
pub fn refusal_response(
    refusal: &Refusal,
    request_id: &HeaderValue,
    challenge: &HeaderValue,
) -> Response<ResponseBody> {
    let (status, code, message) = refusal.parts();
    let (route, missing) = match refusal {
        Refusal::Forbidden { route, why } => (
            route.as_deref(),
            match why {
                Forbidden::Missing(m) => Some(m.as_slice()),
                Forbidden::NoRoute => None,
            },
        ),
        _ => (None, None),
    };
    let body = ErrorBody {
        status: status.as_u16(),
        code,
        message,
        request_id: request_id.to_str().unwrap_or(""),
        route,
        missing_permissions: missing,
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut resp = Response::new(ResponseBody::full(Bytes::from(json)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(X_REQUEST_ID.clone(), request_id.clone());
    match refusal {
        Refusal::Unauthenticated => {
            h.insert(WWW_AUTHENTICATE, challenge.clone());
        }
        Refusal::PermissionServiceUnavailable => {
            h.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        _ => {}
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn json(resp: Response<ResponseBody>) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn forbidden_lists_missing_permissions_and_route() {
        let r = Refusal::Forbidden {
            route: Some("credentials.delete".into()),
            why: Forbidden::Missing(vec!["integrations:integration:delete".into()]),
        };
        let resp = refusal_response(
            &r,
            &HeaderValue::from_static("rid-1"),
            &HeaderValue::from_static("Bearer"),
        );
        assert_eq!(resp.status(), 403);
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.headers()["x-request-id"], "rid-1");
        let v = json(resp).await;
        assert_eq!(
            v,
            serde_json::json!({"status":403,"code":"forbidden","message":"missing permission","requestId":"rid-1",
                "route":"credentials.delete","missingPermissions":["integrations:integration:delete"]})
        );
    }

    #[tokio::test]
    async fn each_refusal_has_its_status_and_code() {
        let cases = [
            (
                Refusal::BadRequest(BadRequest::MethodCase),
                400,
                "bad_request",
            ),
            (Refusal::Unauthenticated, 401, "unauthenticated"),
            (Refusal::PayloadTooLarge, 413, "payload_too_large"),
            (Refusal::HeadersTooLarge, 431, "headers_too_large"),
            (Refusal::UpstreamUnavailable, 502, "upstream_unavailable"),
            (
                Refusal::PermissionServiceUnavailable,
                503,
                "permission_service_unavailable",
            ),
            (Refusal::UpstreamTimeout, 504, "upstream_timeout"),
        ];
        for (r, status, code) in cases {
            let resp = refusal_response(
                &r,
                &HeaderValue::from_static("x"),
                &HeaderValue::from_static("Bearer realm=\"p\""),
            );
            assert_eq!(resp.status(), status);
            assert_eq!(
                resp.headers().contains_key("www-authenticate"),
                status == 401
            );
            assert_eq!(resp.headers().contains_key("retry-after"), status == 503);
            let v = json(resp).await;
            assert_eq!(v["code"], code);
            assert_eq!(v["status"], status);
            assert!(v.get("missingPermissions").is_none());
        }
    }
}
