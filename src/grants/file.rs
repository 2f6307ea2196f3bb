//! The embedded grants file (`source = "file"`; README, "The grants file").
//!
//! Subjects authenticate with a Bearer token (stored as its SHA-256), with
//! Basic credentials (an argon2id PHC string) or, with mTLS, with a client
//! certificate (its SHA-256, `cert_sha256`); each gets its own `allow` and
//! `deny` plus those of its groups and of the implicit group `all`. Grants
//! are computed once per load. Unknown credentials are rejected (401).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use argon2::password_hash::PasswordVerifier;
use argon2::password_hash::phc::PasswordHash;
use http::header::AUTHORIZATION;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::{Answer, CLIENT_CERT_SHA256, Credentials};
use crate::common::{constant_time_eq, sha256_hex};
use crate::config::{ConfigError, parse_sha256_hex, read_file};
use crate::decision::Grants;
use crate::permission::{Permission, PermissionSet};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default, rename = "subject")]
    subjects: Vec<RawSubject>,
    #[serde(default, rename = "group")]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubject {
    name: Spanned<String>,
    token_sha256: Option<Spanned<String>>,
    basic_user: Option<Spanned<String>>,
    password_hash: Option<Spanned<String>>,
    cert_sha256: Option<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
}

/// One subject, ready to answer.
struct Subject {
    token_sha256: Option<[u8; 32]>,
    password_hash: Option<String>,
    cert_sha256: Option<[u8; 32]>,
    grants: Arc<Grants>,
}

/// A loaded grants file.
pub struct GrantsFile {
    subjects: Vec<Subject>,
    by_token: HashMap<[u8; 32], usize>,
    by_user: HashMap<String, usize>,
    by_cert: HashMap<[u8; 32], usize>,
    /// The file it was read from.
    pub file: PathBuf,
    /// Hex SHA-256 of its contents.
    pub sha256: String,
    /// When it was loaded.
    pub loaded_at: SystemTime,
}

/// What the file needs to decide about a credential.
pub enum Lookup {
    /// Decided without a password check.
    Done(Answer),
    /// A Basic credential: verify `password` against subject `subject`'s
    /// hash (slow by design; run it off the request threads).
    VerifyPassword {
        /// Index of the subject.
        subject: usize,
        /// The password sent.
        password: String,
    },
}

impl GrantsFile {
    /// Reads and validates a grants file.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = read_file(file)?;
        Self::parse(&text, file)
    }

    /// Validates grants-file `text` read from `file`.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ConfigError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(file, text, &e))?;
        let err =
            |span: std::ops::Range<usize>, msg: String| ConfigError::at(file, text, span, msg);
        let perms = |list: &[Spanned<String>]| -> Result<Vec<Permission>, ConfigError> {
            list.iter()
                .map(|p| {
                    Permission::parse(p.get_ref())
                        .map_err(|e| err(p.span(), format!("permission {:?}: {e}", p.get_ref())))
                })
                .collect()
        };

        let mut groups: HashMap<String, (Vec<Permission>, Vec<Permission>)> = HashMap::new();
        for g in &raw.groups {
            let entry = (perms(&g.allow)?, perms(&g.deny)?);
            if groups.insert(g.name.get_ref().clone(), entry).is_some() {
                return Err(err(
                    g.name.span(),
                    format!("group {:?} is defined twice", g.name.get_ref()),
                ));
            }
        }
        let everyone = groups.get("all").cloned().unwrap_or_default();

        let mut subjects = Vec::with_capacity(raw.subjects.len());
        let mut by_token = HashMap::new();
        let mut by_user = HashMap::new();
        let mut by_cert = HashMap::new();
        let mut names = HashMap::new();
        for (i, s) in raw.subjects.iter().enumerate() {
            let name = s.name.get_ref();
            if name.is_empty() || !name.bytes().all(|b| (0x21..0x7f).contains(&b)) {
                return Err(err(
                    s.name.span(),
                    "a subject name is printable ASCII without spaces".into(),
                ));
            }
            if names.insert(name.clone(), i).is_some() {
                return Err(err(
                    s.name.span(),
                    format!("subject {name:?} is defined twice"),
                ));
            }
            let mut allow = perms(&s.allow)?;
            let mut deny = perms(&s.deny)?;
            for g in &s.groups {
                let Some((ga, gd)) = groups.get(g.get_ref()) else {
                    return Err(err(g.span(), format!("unknown group {:?}", g.get_ref())));
                };
                allow.extend(ga.iter().cloned());
                deny.extend(gd.iter().cloned());
            }
            allow.extend(everyone.0.iter().cloned());
            deny.extend(everyone.1.iter().cloned());

            let token = unique_digest(
                s.token_sha256.as_ref(),
                &mut by_token,
                i,
                "token_sha256 must be 64 hex digits (from `permgate hash-token`)",
                "this token is already given to another subject",
            )
            .map_err(|(span, m)| err(span, m.into()))?;
            let password_hash = match (&s.basic_user, &s.password_hash) {
                (Some(user), Some(hash)) => {
                    validate_phc(hash.get_ref()).map_err(|m| err(hash.span(), m))?;
                    if user.get_ref().is_empty() || user.get_ref().contains(':') {
                        return Err(err(
                            user.span(),
                            "basic_user must be non-empty and without ':'".into(),
                        ));
                    }
                    if by_user.insert(user.get_ref().clone(), i).is_some() {
                        return Err(err(
                            user.span(),
                            format!("basic_user {:?} is already used", user.get_ref()),
                        ));
                    }
                    Some(hash.get_ref().clone())
                }
                (Some(user), None) => {
                    return Err(err(
                        user.span(),
                        "basic_user needs a password_hash (from `permgate hash-password`)".into(),
                    ));
                }
                (None, Some(hash)) => {
                    return Err(err(hash.span(), "password_hash needs a basic_user".into()));
                }
                (None, None) => None,
            };
            let cert = unique_digest(
                s.cert_sha256.as_ref(),
                &mut by_cert,
                i,
                "cert_sha256 must be 64 hex digits (SHA-256 of the certificate's DER)",
                "this certificate is already given to another subject",
            )
            .map_err(|(span, m)| err(span, m.into()))?;
            if token.is_none() && password_hash.is_none() && cert.is_none() {
                return Err(err(
                    s.name.span(),
                    format!(
                        "subject {name:?} has no token_sha256, no basic_user and no cert_sha256"
                    ),
                ));
            }
            subjects.push(Subject {
                token_sha256: token,
                password_hash,
                cert_sha256: cert,
                grants: Arc::new(Grants {
                    subject: name.as_str().into(),
                    allow: allow.into_iter().collect::<PermissionSet>(),
                    deny: deny.into_iter().collect::<PermissionSet>(),
                }),
            });
        }
        Ok(Self {
            subjects,
            by_token,
            by_user,
            by_cert,
            file: file.to_path_buf(),
            sha256: sha256_hex(text.as_bytes()),
            loaded_at: SystemTime::now(),
        })
    }

    /// Number of subjects.
    pub fn subject_count(&self) -> usize {
        self.subjects.len()
    }

    /// Looks up the credentials: a Bearer token (or, in a credential header
    /// other than `Authorization`, the raw value) by its SHA-256; a Basic
    /// user by name, leaving the password check to [`Self::verify`]; a
    /// verified client certificate (`X-Client-Cert-Sha256`) by `cert_sha256`.
    pub fn lookup(&self, creds: &Credentials<'_>) -> Lookup {
        for (name, value) in creds.values() {
            let Ok(value) = value.to_str() else { continue };
            if name == CLIENT_CERT_SHA256 {
                return Lookup::Done(self.certificate(value));
            }
            let token = if let Some(t) = strip_scheme(value, "bearer") {
                t
            } else if let Some(b64) = strip_scheme(value, "basic") {
                return self.basic(b64);
            } else if name != AUTHORIZATION {
                value
            } else {
                continue;
            };
            let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
            // The map is keyed by digests, which reveal nothing about tokens;
            // the final comparison is constant-time all the same.
            if let Some(&i) = self.by_token.get(&digest) {
                if let Some(stored) = &self.subjects[i].token_sha256 {
                    if constant_time_eq(stored, &digest) {
                        return Lookup::Done(Answer::Granted(Arc::clone(&self.subjects[i].grants)));
                    }
                }
            }
            return Lookup::Done(Answer::Rejected);
        }
        Lookup::Done(Answer::Rejected)
    }

    /// The subject whose `cert_sha256` is `hex`, compared in constant time.
    fn certificate(&self, hex: &str) -> Answer {
        let Some(digest) = parse_sha256_hex(hex.trim()) else {
            return Answer::Rejected;
        };
        match self.by_cert.get(&digest).map(|&i| &self.subjects[i]) {
            Some(s) if s.cert_sha256.is_some_and(|c| constant_time_eq(&c, &digest)) => {
                Answer::Granted(Arc::clone(&s.grants))
            }
            _ => Answer::Rejected,
        }
    }

    fn basic(&self, b64: &str) -> Lookup {
        use base64ct::Encoding;
        let Ok(decoded) = base64ct::Base64::decode_vec(b64.trim()) else {
            return Lookup::Done(Answer::Rejected);
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return Lookup::Done(Answer::Rejected);
        };
        let Some((user, password)) = decoded.split_once(':') else {
            return Lookup::Done(Answer::Rejected);
        };
        match self.by_user.get(user) {
            Some(&subject) => Lookup::VerifyPassword {
                subject,
                password: password.to_string(),
            },
            None => Lookup::Done(Answer::Rejected),
        }
    }

    /// Checks a Basic password (argon2: deliberately slow).
    pub fn verify(&self, subject: usize, password: &str) -> Answer {
        let Some(s) = self.subjects.get(subject) else {
            return Answer::Rejected;
        };
        let Some(hash) = s
            .password_hash
            .as_deref()
            .and_then(|h| PasswordHash::new(h).ok())
        else {
            return Answer::Rejected;
        };
        match argon2::Argon2::default().verify_password(password.as_bytes(), &hash) {
            Ok(()) => Answer::Granted(Arc::clone(&s.grants)),
            Err(_) => Answer::Rejected,
        }
    }
}

/// The `token_sha256` value for a Bearer token: lower-case hex SHA-256.
pub fn hash_token(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// The `password_hash` value for a password: an argon2id PHC string with a
/// random salt, at argon2's recommended cost (or `params` for tests).
pub fn hash_password(password: &str, params: Option<argon2::Params>) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher;
    let hasher = match params {
        Some(p) => argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p),
        None => argon2::Argon2::default(),
    };
    hasher
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// `value` without its `scheme ` prefix (case-insensitive), if it has it.
fn strip_scheme<'v>(value: &'v str, scheme: &str) -> Option<&'v str> {
    let (head, rest) = value.split_once(' ')?;
    head.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn validate_phc(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash).map_err(|e| {
        format!("password_hash is not a PHC string ({e}); use `permgate hash-password`")
    })?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "password_hash uses {}; argon2id is required",
            parsed.algorithm
        ));
    }
    Ok(())
}

/// A `*_sha256` field of subject `subject`: 64 hex digits, and not given to
/// another subject already (recorded in `seen`). On error, where and why.
fn unique_digest(
    field: Option<&Spanned<String>>,
    seen: &mut HashMap<[u8; 32], usize>,
    subject: usize,
    malformed: &'static str,
    taken: &'static str,
) -> Result<Option<[u8; 32]>, (std::ops::Range<usize>, &'static str)> {
    let Some(f) = field else {
        return Ok(None);
    };
    let digest = parse_sha256_hex(f.get_ref()).ok_or((f.span(), malformed))?;
    if seen.insert(digest, subject).is_some() {
        return Err((f.span(), taken));
    }
    Ok(Some(digest))
}

#[cfg(test)]
mod tests;
