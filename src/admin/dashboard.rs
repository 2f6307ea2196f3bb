//! `GET /admin/`: the read-only dashboard, one HTML page with its CSS and
//! JavaScript inline, compiled into the binary. The page fetches
//! `/admin/coverage`, `/admin/routes` and `/metrics` itself; nothing here
//! reads the gateway's state.
//!
//! The Content-Security-Policy allows exactly the page's one `<script>` and
//! one `<style>` by their SHA-256 hashes, computed from the page once, so
//! an edited page can never be served with a stale policy. Hashes rather
//! than `'unsafe-inline'`: a value the page failed to escape still could
//! not run as script. Hashes rather than a nonce: the page is the same for
//! every answer, so there is nothing to randomize per response.

use std::sync::LazyLock;

use base64ct::Encoding;
use bytes::Bytes;
use http::Response;
use http::header::{self, HeaderValue};
use http_body_util::Full;
use sha2::{Digest, Sha256};

/// The page.
pub const PAGE: &str = include_str!("dashboard.html");

static POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    HeaderValue::from_str(&policy(PAGE)).expect("the policy is ASCII without control characters")
});

/// The dashboard answer.
pub fn response() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_SECURITY_POLICY, POLICY.clone());
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// The policy for `page`: nothing but its own inline script and style, and
/// fetches to the listener that served it.
fn policy(page: &str) -> String {
    format!(
        "default-src 'none'; connect-src 'self'; script-src {}; style-src {}; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        hash_source(inline(page, "script")),
        hash_source(inline(page, "style")),
    )
}

/// The text between `<tag>` and `</tag>`; the page has one of each.
fn inline<'a>(page: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = page.find(&open).map(|i| i + open.len());
    let end = page.find(&close);
    match (start, end) {
        (Some(s), Some(e)) if s <= e => &page[s..e],
        _ => "",
    }
}

fn hash_source(text: &str) -> String {
    format!(
        "'sha256-{}'",
        base64ct::Base64::encode_string(&Sha256::digest(text.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_exactly_the_inline_script_and_style() {
        let script = inline(PAGE, "script");
        let style = inline(PAGE, "style");
        assert!(script.contains("function refresh"), "{script:.80}");
        assert!(style.contains("tr.would-deny"), "{style:.80}");
        for tag in ["<script", "<style"] {
            assert_eq!(PAGE.matches(tag).count(), 1, "one {tag} only");
        }
        let p = policy(PAGE);
        assert!(p.contains(&format!("script-src {};", hash_source(script))));
        assert!(p.contains(&format!("style-src {};", hash_source(style))));
        assert!(!p.contains("unsafe"), "{p}");
        assert!(p.starts_with("default-src 'none'; connect-src 'self';"));
        // A known SHA-256 in CSP form.
        assert_eq!(
            hash_source("abc"),
            "'sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0='"
        );
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_never_writes_html() {
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "http://",
            "https://",
            "@import",
            "url(",
            " style=",
            " onclick=",
            " onload=",
        ] {
            assert!(!PAGE.contains(banned), "{banned} in the dashboard");
        }
    }

    #[test]
    fn the_answer_is_html_uncached_and_under_the_policy() {
        let r = response();
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], policy(PAGE).as_str());
    }
}
