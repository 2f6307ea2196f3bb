//! The decision core: plain Rust with no I/O. The proxy, `permgate check`,
//! `permgate explain`, `/admin/explain` and the benches all take the same
//! steps through it, so what `explain` says is what the proxy does.
//!
//! A request is decided in three steps, with grant resolution (async, in
//! [`crate::grants`]) between the second and the third:
//!
//! 1. [`prepare`] rejects ambiguous requests (400) and normalizes the path
//!    into a [`Prepared`] request;
//! 2. [`Prepared::route`] finds the route (or the table's default) and
//!    [`Routed::need`] says whether grants must be resolved at all;
//! 3. [`Routed::decide`] gives the [`Decision`], with the route's mode
//!    applied, and [`Decision::into_permit`] the [`Permit`] — the only thing
//!    the proxy forwards with, carrying the upstream, the path and the
//!    subject — or the refusal.
//!
//! [`explain`] runs the same steps and reports how each went.

mod explain;
mod head;
mod permit;
mod routed;

pub use explain::{ExplainRequest, Explanation, RequirementReport, explain};
pub use head::{BadRequest, HostProblem, Prepared, RequestHead, prepare, same_header_name};
pub use permit::{Decision, Permit};
pub use routed::{Allowed, Caller, Forbidden, Need, Refused, Routed, Verdict};

use crate::permission::PermissionSet;

/// Who a caller is, as the grant source names it, with the header value
/// that tells the upstream (built once with the grants, not per request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    name: Box<str>,
    /// `None` when the name cannot be a header value (the permission API
    /// answer rejects such names; the subject header is then removed).
    header: Option<http::HeaderValue>,
}

impl Subject {
    /// The subject header's value, if the name can be one.
    pub fn header_value(&self) -> Option<&http::HeaderValue> {
        self.header.as_ref()
    }
}

impl From<&str> for Subject {
    fn from(name: &str) -> Self {
        Self {
            name: name.into(),
            header: http::HeaderValue::from_str(name).ok(),
        }
    }
}

impl From<String> for Subject {
    fn from(name: String) -> Self {
        Self::from(name.as_str())
    }
}

impl Default for Subject {
    fn default() -> Self {
        Self::from("")
    }
}

impl std::ops::Deref for Subject {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// A caller's resolved grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Who the caller is, as the grant source names it.
    pub subject: Subject,
    /// What the caller is granted.
    pub allow: PermissionSet,
    /// What is explicitly denied to the caller.
    pub deny: PermissionSet,
}

impl Grants {
    /// Grants from permission strings, as `explain` and `[[test]]` give them.
    pub fn from_lists(subject: &str, allow: &[String], deny: &[String]) -> Result<Grants, String> {
        let parse = |list: &[String]| -> Result<PermissionSet, String> {
            list.iter()
                .map(|p| {
                    crate::permission::Permission::parse(p)
                        .map_err(|e| format!("permission {p:?}: {e}"))
                })
                .collect()
        };
        Ok(Grants {
            subject: subject.into(),
            allow: parse(allow)?,
            deny: parse(deny)?,
        })
    }
}

#[cfg(test)]
mod tests;
