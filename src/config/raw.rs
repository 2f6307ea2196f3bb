//! The main config file as written (README, "Configuration"), before
//! validation.
//!
//! Optional keys are `Option`s here; their defaults live in one place, the
//! validation in `config/mod.rs`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::units::{ByteSize, Dur};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    #[serde(default)]
    pub admin: RawAdmin,
    pub upstreams: Spanned<BTreeMap<String, RawUpstream>>,
    #[serde(default)]
    pub auth: RawAuth,
    pub grants: Spanned<RawGrants>,
    pub routes: RawRoutes,
    #[serde(default)]
    pub log: RawLog,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Spanned<String>,
    pub workers: Option<Spanned<usize>>,
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    pub tls_client_ca: Option<Spanned<String>>,
    pub proxy_protocol: Option<Spanned<bool>>,
    pub trusted_proxies: Option<Vec<Spanned<String>>>,
    pub max_request_body: Option<ByteSize>,
    pub max_header_bytes: Option<Spanned<ByteSize>>,
    pub request_header_timeout: Option<Dur>,
    pub send_timeout: Option<Dur>,
    pub max_connections: Option<Spanned<usize>>,
    pub drain_delay: Option<Dur>,
    pub shutdown_timeout: Option<Dur>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Option<Spanned<String>>,
    pub token_sha256: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub url: Spanned<String>,
    pub connect_timeout: Option<Dur>,
    pub timeout: Option<Dur>,
    pub ca_file: Option<Spanned<String>>,
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
    pub host_header: Option<HostHeader>,
}

/// `host_header`: which `Host` the upstream sees.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HostHeader {
    /// The client's `Host`.
    #[default]
    Preserve,
    /// The upstream URL's host and port.
    Upstream,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub credential_headers: Option<Spanned<Vec<Spanned<String>>>>,
    pub challenge: Option<Spanned<String>>,
    pub subject_header: Option<Spanned<String>>,
    pub forward_credentials: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrants {
    pub source: Spanned<GrantSourceKind>,
    pub url: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub timeout: Option<Dur>,
    pub headers: Option<BTreeMap<String, Spanned<String>>>,
    pub subject_pointer: Option<Spanned<String>>,
    pub permissions_pointer: Option<Spanned<String>>,
    pub deny_pointer: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
    #[serde(default)]
    pub cache: RawCache,
}

/// `grants.source`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum GrantSourceKind {
    /// The permission API.
    Http,
    /// The embedded grants file.
    File,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    pub ttl: Option<Dur>,
    pub negative_ttl: Option<Dur>,
    pub max_entries: Option<u64>,
    pub stale_if_error: Option<Dur>,
    pub shared: Option<Spanned<String>>,
    pub shared_key_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoutes {
    pub file: Spanned<String>,
    pub watch: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: Option<LogFormat>,
    pub level: Option<Spanned<String>>,
    pub access_log: Option<bool>,
}

/// `log.format`.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}
