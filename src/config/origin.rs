//! `http[s]://host:port[/path]` addresses of upstreams and the permission API.

use http::HeaderValue;
use http::uri::{PathAndQuery, Uri};

use crate::transport::TlsClient;

/// An HTTP or https origin the gateway connects to.
#[derive(Debug, Clone)]
pub struct HttpOrigin {
    /// The URL as configured.
    pub url: String,
    /// Whether the URL is `https://`.
    pub https: bool,
    /// The URL's host without port: the TLS server name for https.
    pub hostname: String,
    /// `host:port` to connect to.
    pub connect_to: String,
    /// The `Host` header value for requests to it.
    pub host: HeaderValue,
    /// Path and query of the URL (`/` when it has none).
    pub path_and_query: PathAndQuery,
    /// TLS settings, set by config validation for https URLs.
    pub tls: Option<TlsClient>,
}

impl HttpOrigin {
    /// Parses `url`. Upstreams (`with_path = false`) must not carry a path:
    /// the gateway forwards exactly the path it matched.
    pub fn parse(url: &str, with_path: bool) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("URL {url:?} must start with http:// or https://")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("URL {url:?} has no host"))?;
        if authority.as_str().contains('@') {
            return Err("credentials in the URL are not allowed; use headers".into());
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host = authority.host();
        let path_and_query = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        if !with_path && (path_and_query.as_str() != "/") {
            return Err(format!(
                "URL {url:?} must not have a path or query: requests are forwarded with exactly the path that was matched"
            ));
        }
        Ok(Self {
            url: url.to_string(),
            https,
            hostname: host.to_string(),
            connect_to: format!("{host}:{port}"),
            host: HeaderValue::from_str(authority.as_str())
                .map_err(|_| format!("invalid host in {url:?}"))?,
            path_and_query,
            tls: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_path() {
        let o = HttpOrigin::parse("http://127.0.0.1:8082/grants?x=1", true).unwrap();
        assert_eq!(o.connect_to, "127.0.0.1:8082");
        assert_eq!(o.host, "127.0.0.1:8082");
        assert_eq!(o.path_and_query.as_str(), "/grants?x=1");
        let o = HttpOrigin::parse("http://backend", false).unwrap();
        assert_eq!(o.connect_to, "backend:80");
    }

    #[test]
    fn https_defaults_to_port_443() {
        let o = HttpOrigin::parse("https://backend.internal", false).unwrap();
        assert!(o.https);
        assert_eq!(o.connect_to, "backend.internal:443");
        assert_eq!(o.hostname, "backend.internal");
        let o = HttpOrigin::parse("https://127.0.0.1:8443/grants", true).unwrap();
        assert_eq!(o.connect_to, "127.0.0.1:8443");
        assert!(!HttpOrigin::parse("http://x", false).unwrap().https);
    }

    #[test]
    fn rejects_what_it_cannot_honour() {
        assert!(
            HttpOrigin::parse("ftp://x", false)
                .unwrap_err()
                .contains("http://")
        );
        assert!(
            HttpOrigin::parse("http://x/base", false)
                .unwrap_err()
                .contains("must not have a path")
        );
        assert!(
            HttpOrigin::parse("http://u:p@x", true)
                .unwrap_err()
                .contains("credentials")
        );
        assert!(HttpOrigin::parse("not a url", true).is_err());
    }
}
