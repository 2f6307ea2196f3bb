//! The main config file (README, "Configuration"): raw TOML in [`raw`], validated here into
//! [`Config`]. Every error names the file, line and column.

mod error;
mod origin;
mod raw;
mod shared;
mod tls;
mod units;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

use toml::Spanned;

pub use error::{ConfigError, LineIndex, line_column, read_file};
pub use origin::HttpOrigin;
pub use raw::{GrantSourceKind, HostHeader, LogFormat};
pub use shared::{MIN_KEY_BYTES, SharedCacheConfig};
pub use units::{ByteSize, Dur};

use raw::{RawConfig, RawGrants, RawServer, RawUpstream};

/// The validated main config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main config file.
    pub file: PathBuf,
    /// Hex SHA-256 of the text it was parsed from.
    pub sha256: String,
    /// `[server]`.
    pub server: ServerConfig,
    /// `[admin]`.
    pub admin: AdminConfig,
    /// `[upstreams.*]`, sorted by name; routes refer to them by index.
    pub upstreams: Vec<UpstreamConfig>,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[grants]`.
    pub grants: GrantsConfig,
    /// `routes.file`, resolved against the config file's folder.
    pub routes_file: PathBuf,
    /// `routes.watch`: reload the routes file when it changes on disk
    /// (SIGHUP and `POST /admin/reload` work either way).
    pub routes_watch: bool,
    /// `[log]`.
    pub log: LogConfig,
}

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address of the proxy listener.
    pub listen: SocketAddr,
    /// Worker threads, each with its own single-threaded runtime.
    pub workers: usize,
    /// Every connection starts with a PROXY protocol v1 or v2 header
    /// (README, "PROXY protocol and client addresses").
    pub proxy_protocol: bool,
    /// Peers whose `X-Forwarded-*` headers are believed; with
    /// `proxy_protocol`, when not empty, the only peers allowed to connect.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest request body forwarded.
    pub max_request_body: u64,
    /// Largest total size of request headers.
    pub max_header_bytes: usize,
    /// Time a client has to send its request headers; also how long a
    /// connection may stay without a request in progress.
    pub request_header_timeout: Duration,
    /// How long a write to a client may make no progress (the client reads
    /// nothing) before the connection is closed.
    pub send_timeout: Duration,
    /// Most client connections open at once.
    pub max_connections: usize,
    /// After a stop signal, how long `/readyz` fails while serving continues.
    pub drain_delay: Duration,
    /// Then, how long in-flight requests may take to finish.
    pub shutdown_timeout: Duration,
    /// TLS on the proxy listener (`tls_cert`, `tls_key`, `tls_client_ca`).
    pub tls: Option<TlsConfig>,
}

/// The TLS files of `[server]` (README, "TLS and mTLS").
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// `tls_cert`: the PEM certificate chain, leaf first.
    pub cert: TlsFile,
    /// `tls_key`: the PEM private key.
    pub key: TlsFile,
    /// `tls_client_ca`: PEM roots client certificates must chain to (mTLS).
    pub client_ca: Option<TlsFile>,
}

/// One TLS file and where the config names it, for errors.
#[derive(Debug, Clone)]
pub struct TlsFile {
    /// The file, resolved against the config file's folder.
    pub path: PathBuf,
    /// The key that names it (`server.tls_cert`…).
    pub key: &'static str,
    /// The main config file.
    pub config_file: PathBuf,
    /// Line and column of the key in the main config file.
    pub position: Option<(usize, usize)>,
}

impl TlsFile {
    /// A problem with this file, placed at the config key that names it.
    pub fn error(&self, message: impl std::fmt::Display) -> ConfigError {
        ConfigError {
            file: self.config_file.clone(),
            position: self.position,
            message: format!("{} {}: {message}", self.key, self.path.display()),
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Address of the admin listener.
    pub listen: SocketAddr,
    /// SHA-256 of the bearer token `/admin/*` needs, if any.
    pub token_sha256: Option<[u8; 32]>,
}

/// One `[upstreams.NAME]`.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The table name (`default`, …).
    pub name: String,
    /// Where it is.
    pub origin: HttpOrigin,
    /// Time to establish a TCP connection.
    pub connect_timeout: Duration,
    /// Time until the response headers arrive.
    pub timeout: Duration,
    /// Which `Host` it sees.
    pub host_header: HostHeader,
}

/// `[auth]`.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Headers that identify the caller, lower case.
    pub credential_headers: Vec<HeaderName>,
    /// `WWW-Authenticate` value sent with 401.
    pub challenge: HeaderValue,
    /// Header set towards the upstream to the resolved subject.
    pub subject_header: HeaderName,
    /// Whether the credential headers are forwarded upstream.
    pub forward_credentials: bool,
}

/// `[grants]`.
#[derive(Debug, Clone)]
pub struct GrantsConfig {
    /// Where grants come from.
    pub source: GrantSourceConfig,
    /// `[grants.cache]`.
    pub cache: CacheConfig,
    /// `[grants.cache] shared` and `shared_key_file`: the fleet's Redis.
    pub shared: Option<SharedCacheConfig>,
}

/// `grants.source` and its settings.
#[derive(Debug, Clone)]
pub enum GrantSourceConfig {
    /// The permission API.
    Http(Box<HttpGrantsConfig>),
    /// The embedded grants file.
    File(PathBuf),
}

/// Settings of the permission API.
#[derive(Debug, Clone)]
pub struct HttpGrantsConfig {
    /// Where it is; its path and query are the request target.
    pub origin: HttpOrigin,
    /// Time for the whole exchange.
    pub timeout: Duration,
    /// Static headers sent with every call.
    pub headers: HeaderMap,
    /// JSON pointer to the subject string.
    pub subject_pointer: String,
    /// JSON pointer to the array of granted permissions.
    pub permissions_pointer: String,
    /// JSON pointer to the array of denied permissions.
    pub deny_pointer: String,
}

/// `[grants.cache]`.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Upper bound on how long grants are cached; zero disables the cache.
    pub ttl: Duration,
    /// How long a rejection (401/403 from the source) is remembered.
    pub negative_ttl: Duration,
    /// Most cached credentials.
    pub max_entries: u64,
    /// How old cached grants may be when the source fails.
    pub stale_if_error: Duration,
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// A level or `RUST_LOG`-style filter.
    pub level: String,
    /// One event per request.
    pub access_log: bool,
}

impl Config {
    /// Reads and validates the main config file. The routes and grants files
    /// are loaded by their own modules.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = read_file(file)?;
        Self::parse(&text, file)
    }

    /// Validates main-config `text` read from `file`.
    pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
        let v = Validator { file, text };
        let base = file.parent().unwrap_or(Path::new("."));
        let upstreams = v.upstreams(raw.upstreams, base)?;
        let mtls = raw.server.tls_client_ca.is_some();
        Ok(Config {
            file: file.to_path_buf(),
            sha256: crate::common::sha256_hex(text.as_bytes()),
            server: v.server(raw.server, base)?,
            admin: AdminConfig {
                listen: match raw.admin.listen {
                    Some(l) => v.socket_addr(&l)?,
                    None => SocketAddr::from(([127, 0, 0, 1], 9090)),
                },
                token_sha256: raw
                    .admin
                    .token_sha256
                    .map(|t| v.sha256_hex(&t))
                    .transpose()?,
            },
            upstreams,
            auth: v.auth(raw.auth, mtls)?,
            grants: v.grants(raw.grants, base)?,
            routes_file: base.join(raw.routes.file.get_ref()),
            routes_watch: raw.routes.watch.unwrap_or(true),
            log: LogConfig {
                format: raw.log.format.unwrap_or_default(),
                level: match raw.log.level {
                    Some(l) => {
                        validate_log_level(l.get_ref()).map_err(|e| v.err(&l, e))?;
                        l.into_inner()
                    }
                    None => "info".into(),
                },
                access_log: raw.log.access_log.unwrap_or(true),
            },
        })
    }

    /// Names of the upstreams, in index order.
    pub fn upstream_names(&self) -> Vec<String> {
        self.upstreams.iter().map(|u| u.name.clone()).collect()
    }
}

/// Turns raw values into validated ones, with errors at their spans.
struct Validator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    fn err<T>(&self, at: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.file, self.text, at.span(), message)
    }

    fn socket_addr(&self, s: &Spanned<String>) -> Result<SocketAddr, ConfigError> {
        s.get_ref().parse().map_err(|_| {
            self.err(
                s,
                format!(
                    "invalid listen address {:?}; write IP:PORT, e.g. \"0.0.0.0:8080\"",
                    s.get_ref()
                ),
            )
        })
    }

    fn sha256_hex(&self, s: &Spanned<String>) -> Result<[u8; 32], ConfigError> {
        parse_sha256_hex(s.get_ref())
            .ok_or_else(|| self.err(s, "expected 64 hex digits (a SHA-256 digest)"))
    }

    fn server(&self, s: RawServer, base: &Path) -> Result<ServerConfig, ConfigError> {
        let tls = self.tls(&s, base)?;
        let workers = match &s.workers {
            Some(w) if *w.get_ref() == 0 => return Err(self.err(w, "workers must be at least 1")),
            Some(w) => *w.get_ref(),
            None => default_workers(),
        };
        let mut trusted = Vec::new();
        for t in s.trusted_proxies.unwrap_or_default() {
            let net = t
                .get_ref()
                .parse::<IpNet>()
                .or_else(|_| t.get_ref().parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| self.err(&t, format!("invalid CIDR {:?}", t.get_ref())))?;
            trusted.push(net);
        }
        let max_header_bytes = match &s.max_header_bytes {
            Some(b) if b.get_ref().0 < 1024 => {
                return Err(self.err(b, "max_header_bytes must be at least 1KiB"));
            }
            Some(b) => usize::try_from(b.get_ref().0).unwrap_or(usize::MAX),
            None => 64 * 1024,
        };
        let max_connections = match &s.max_connections {
            Some(m) if *m.get_ref() == 0 => {
                return Err(self.err(m, "max_connections must be at least 1"));
            }
            Some(m) => *m.get_ref(),
            None => 10_000,
        };
        Ok(ServerConfig {
            listen: self.socket_addr(&s.listen)?,
            workers,
            proxy_protocol: s.proxy_protocol.is_some_and(|p| *p.get_ref()),
            trusted_proxies: trusted,
            max_request_body: s.max_request_body.unwrap_or(ByteSize::mib(10)).0,
            max_header_bytes,
            request_header_timeout: s.request_header_timeout.unwrap_or(Dur::secs(10)).0,
            send_timeout: s.send_timeout.unwrap_or(Dur::secs(60)).0,
            max_connections,
            drain_delay: s.drain_delay.unwrap_or(Dur::secs(5)).0,
            shutdown_timeout: s.shutdown_timeout.unwrap_or(Dur::secs(30)).0,
            tls,
        })
    }

    /// `tls_cert` and `tls_key` go together; `tls_client_ca` needs them.
    fn tls(&self, s: &RawServer, base: &Path) -> Result<Option<TlsConfig>, ConfigError> {
        let file = |at: &Spanned<String>, key: &'static str| TlsFile {
            path: base.join(at.get_ref()),
            key,
            config_file: self.file.to_path_buf(),
            position: Some(error::line_column(self.text, at.span().start)),
        };
        match (&s.tls_cert, &s.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsConfig {
                cert: file(cert, "server.tls_cert"),
                key: file(key, "server.tls_key"),
                client_ca: s
                    .tls_client_ca
                    .as_ref()
                    .map(|ca| file(ca, "server.tls_client_ca")),
            })),
            (Some(cert), None) => Err(self.err(cert, "tls_cert needs tls_key")),
            (None, Some(key)) => Err(self.err(key, "tls_key needs tls_cert")),
            (None, None) => match &s.tls_client_ca {
                Some(ca) => Err(self.err(ca, "tls_client_ca needs tls_cert and tls_key")),
                None => Ok(None),
            },
        }
    }

    fn upstreams(
        &self,
        raw: Spanned<std::collections::BTreeMap<String, RawUpstream>>,
        base: &Path,
    ) -> Result<Vec<UpstreamConfig>, ConfigError> {
        if !raw.get_ref().contains_key("default") {
            return Err(self.err(&raw, "[upstreams.default] is required"));
        }
        let mut out = Vec::new();
        for (name, u) in raw.into_inner() {
            let mut origin = HttpOrigin::parse(u.url.get_ref(), false)
                .map_err(|m| self.err(&u.url, format!("upstreams.{name}.url: {m}")))?;
            let table = format!("upstreams.{name}");
            let keys = tls::TlsKeys {
                table: &table,
                url: &u.url,
                ca_file: u.ca_file.as_ref(),
                client_cert: u.client_cert.as_ref(),
                client_key: u.client_key.as_ref(),
            };
            self.origin_tls(&mut origin, &keys, base)?;
            out.push(UpstreamConfig {
                name,
                origin,
                connect_timeout: u.connect_timeout.unwrap_or(Dur::secs(2)).0,
                timeout: u.timeout.unwrap_or(Dur::secs(30)).0,
                host_header: u.host_header.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// With mTLS (`mtls`), the verified client certificate's header is the
    /// first credential header.
    fn auth(&self, a: raw::RawAuth, mtls: bool) -> Result<AuthConfig, ConfigError> {
        let mut credential_headers: Vec<HeaderName> = match a.credential_headers {
            None => vec![http::header::AUTHORIZATION],
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(self.err(&list, "credential_headers must name at least one header"));
                }
                list.into_inner()
                    .iter()
                    .map(|h| self.header_name(h))
                    .collect::<Result<_, _>>()?
            }
        };
        let subject_header = match &a.subject_header {
            Some(h) => {
                let name = self.header_name(h)?;
                if credential_headers.contains(&name) || crate::common::is_hop_by_hop(&name) {
                    return Err(self.err(
                        h,
                        "subject_header cannot be a credential or hop-by-hop header",
                    ));
                }
                name
            }
            None => HeaderName::from_static("x-authenticated-subject"),
        };
        let cert = &crate::grants::CLIENT_CERT_SHA256;
        if mtls && !credential_headers.contains(cert) {
            credential_headers.insert(0, cert.clone());
        }
        if let Some(h) = &a.subject_header {
            if subject_header == *cert {
                return Err(self.err(h, "subject_header cannot be x-client-cert-sha256"));
            }
        }
        let challenge = match &a.challenge {
            Some(c) => HeaderValue::from_str(c.get_ref())
                .map_err(|_| self.err(c, "challenge is not a valid header value"))?,
            None => HeaderValue::from_static("Bearer realm=\"permgate\""),
        };
        Ok(AuthConfig {
            credential_headers,
            challenge,
            subject_header,
            forward_credentials: a.forward_credentials.unwrap_or(true),
        })
    }

    fn header_name(&self, h: &Spanned<String>) -> Result<HeaderName, ConfigError> {
        HeaderName::from_bytes(h.get_ref().to_ascii_lowercase().as_bytes())
            .map_err(|_| self.err(h, format!("invalid header name {:?}", h.get_ref())))
    }

    fn grants(&self, g: Spanned<RawGrants>, base: &Path) -> Result<GrantsConfig, ConfigError> {
        let span_holder = Spanned::new(g.span(), ());
        let g = g.into_inner();
        let c = &g.cache;
        let cache = CacheConfig {
            ttl: c.ttl.unwrap_or(Dur::secs(60)).0,
            negative_ttl: c.negative_ttl.unwrap_or(Dur::secs(5)).0,
            max_entries: c.max_entries.unwrap_or(100_000),
            stale_if_error: c.stale_if_error.unwrap_or(Dur::secs(0)).0,
        };
        let shared = self.shared_cache(
            c.shared.as_ref(),
            c.shared_key_file.as_ref(),
            cache.ttl,
            g.timeout.unwrap_or(Dur::secs(1)).0,
            base,
        )?;
        let source = match *g.source.get_ref() {
            GrantSourceKind::Http => {
                if let Some(f) = &g.file {
                    return Err(self.err(f, "grants.file is for source = \"file\""));
                }
                let Some(url) = &g.url else {
                    return Err(self.err(
                        &span_holder,
                        "grants.url is required when source = \"http\"",
                    ));
                };
                let mut origin = HttpOrigin::parse(url.get_ref(), true)
                    .map_err(|m| self.err(url, format!("grants.url: {m}")))?;
                let keys = tls::TlsKeys {
                    table: "grants",
                    url,
                    ca_file: g.ca_file.as_ref(),
                    client_cert: g.client_cert.as_ref(),
                    client_key: g.client_key.as_ref(),
                };
                self.origin_tls(&mut origin, &keys, base)?;
                let mut headers = HeaderMap::new();
                for (name, value) in g.headers.iter().flatten() {
                    let n = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                        .map_err(|_| self.err(value, format!("invalid header name {name:?}")))?;
                    let v = HeaderValue::from_str(value.get_ref()).map_err(|_| {
                        self.err(value, format!("invalid value for header {name:?}"))
                    })?;
                    headers.append(n, v);
                }
                let pointer = |p: &Option<Spanned<String>>,
                               default: &str|
                 -> Result<String, ConfigError> {
                    match p {
                        None => Ok(default.to_string()),
                        Some(p) if p.get_ref().is_empty() || p.get_ref().starts_with('/') => {
                            Ok(p.get_ref().clone())
                        }
                        Some(p) => Err(self.err(p, "a JSON pointer is empty or starts with '/'")),
                    }
                };
                GrantSourceConfig::Http(Box::new(HttpGrantsConfig {
                    origin,
                    timeout: g.timeout.unwrap_or(Dur::secs(1)).0,
                    headers,
                    subject_pointer: pointer(&g.subject_pointer, "/subject")?,
                    permissions_pointer: pointer(&g.permissions_pointer, "/permissions")?,
                    deny_pointer: pointer(&g.deny_pointer, "/deny")?,
                }))
            }
            GrantSourceKind::File => {
                if let Some(u) = &g.url {
                    return Err(self.err(u, "grants.url is for source = \"http\""));
                }
                for (key, value) in [
                    ("ca_file", &g.ca_file),
                    ("client_cert", &g.client_cert),
                    ("client_key", &g.client_key),
                ] {
                    if let Some(v) = value {
                        return Err(self.err(
                            v,
                            format!(
                                "grants.{key} is for an https permission API (source = \"http\")"
                            ),
                        ));
                    }
                }
                let Some(file) = &g.file else {
                    return Err(self.err(
                        &span_holder,
                        "grants.file is required when source = \"file\"",
                    ));
                };
                GrantSourceConfig::File(base.join(file.get_ref()))
            }
        };
        Ok(GrantsConfig {
            source,
            cache,
            shared,
        })
    }
}

/// Workers when the config sets none: `TOKIO_WORKER_THREADS` if set, else
/// the number of CPUs this process may run on.
fn default_workers() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Accepts a level (`info`) or `RUST_LOG`-style directives
/// (`info,permgate=debug`); a bare word must be a level.
fn validate_log_level(level: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let bad = || {
        format!(
            "invalid log level {level:?}; use one of {} or RUST_LOG-style directives",
            LEVELS.join(", ")
        )
    };
    if !level.contains(['=', ',']) && !LEVELS.contains(&level.trim().to_ascii_lowercase().as_str())
    {
        return Err(bad());
    }
    for directive in level.split(',') {
        if let Some((_, lvl)) = directive.rsplit_once('=') {
            if !LEVELS.contains(&lvl.trim().to_ascii_lowercase().as_str()) {
                return Err(bad());
            }
        }
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", bad()))
}

/// Parses 64 hex digits.
pub fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
