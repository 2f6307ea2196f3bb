//! `ca_file`, `client_cert` and `client_key` of an upstream or of the
//! permission API (README, "https upstreams"): only with an https URL, files
//! relative to the config folder, read and checked at startup.

use std::path::Path;

use toml::Spanned;

use super::{ConfigError, HttpOrigin, Validator};
use crate::transport::{
    ClientIdentity, TlsClient, TlsSetupError, load_certificates, load_private_key,
};

/// The TLS keys of one origin's table, as written.
pub(super) struct TlsKeys<'a> {
    /// Where the keys live, for messages: `upstreams.default`, `grants`.
    pub table: &'a str,
    /// The origin's `url`.
    pub url: &'a Spanned<String>,
    /// `ca_file`.
    pub ca_file: Option<&'a Spanned<String>>,
    /// `client_cert`.
    pub client_cert: Option<&'a Spanned<String>>,
    /// `client_key`.
    pub client_key: Option<&'a Spanned<String>>,
}

impl Validator<'_> {
    /// Checks the TLS keys against `origin` and, for an https origin, builds
    /// its [`TlsClient`] (read once here, shared by every worker).
    pub(super) fn origin_tls(
        &self,
        origin: &mut HttpOrigin,
        keys: &TlsKeys<'_>,
        base: &Path,
    ) -> Result<(), ConfigError> {
        let table = keys.table;
        let present = [
            ("ca_file", keys.ca_file),
            ("client_cert", keys.client_cert),
            ("client_key", keys.client_key),
        ];
        if !origin.https {
            if let Some((key, at)) = present.iter().find_map(|(k, v)| v.map(|v| (k, v))) {
                return Err(self.err(
                    at,
                    format!("{table}.{key} is only for an https url; {table}.url is plain http"),
                ));
            }
            return Ok(());
        }
        let identity = match (keys.client_cert, keys.client_key) {
            (None, None) => None,
            (Some(cert), None) => {
                return Err(self.err(
                    cert,
                    format!("{table}.client_cert needs {table}.client_key"),
                ));
            }
            (None, Some(key)) => {
                return Err(self.err(key, format!("{table}.client_key needs {table}.client_cert")));
            }
            (Some(cert), Some(key)) => Some(ClientIdentity {
                chain: load_certificates(&base.join(cert.get_ref()))
                    .map_err(|m| self.err(cert, format!("{table}.client_cert: {m}")))?,
                key: load_private_key(&base.join(key.get_ref()))
                    .map_err(|m| self.err(key, format!("{table}.client_key: {m}")))?,
            }),
        };
        let extra_roots = match keys.ca_file {
            None => Vec::new(),
            Some(ca) => load_certificates(&base.join(ca.get_ref()))
                .map_err(|m| self.err(ca, format!("{table}.ca_file: {m}")))?,
        };
        let tls = TlsClient::new(&origin.hostname, &extra_roots, identity).map_err(|e| {
            let (key, at) = match &e {
                TlsSetupError::CaCertificate(_) => ("ca_file", keys.ca_file),
                TlsSetupError::ClientIdentity(_) => ("client_cert", keys.client_cert),
                TlsSetupError::ServerName(_) | TlsSetupError::Other(_) => ("url", None),
            };
            self.err(at.unwrap_or(keys.url), format!("{table}.{key}: {e}"))
        })?;
        origin.tls = Some(tls);
        Ok(())
    }
}
