//! The decision with its mode applied, and the [`Permit`] that forwarding
//! requires.

use http::HeaderValue;

use super::Subject;
use super::routed::{Refused, Routed, Verdict};
use crate::routes::{Mode, Route};

/// Proof that a request may be forwarded, and everything forwarding needs to
/// know about where and as whom. Only this module builds one, from a
/// [`Decision`] that lets the request through.
#[derive(Debug)]
pub struct Permit<'t, 'a> {
    upstream: usize,
    route: Option<&'t Route>,
    path: &'a str,
    subject: Option<&'a Subject>,
    would_deny: Option<Refused>,
}

impl<'t, 'a> Permit<'t, 'a> {
    /// Index of the upstream, resolved when the table was compiled.
    pub fn upstream(&self) -> usize {
        self.upstream
    }

    /// The matched route; `None` when the default let the request through.
    pub fn route(&self) -> Option<&'t Route> {
        self.route
    }

    /// The normalized path that was matched: the only path sent upstream.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The resolved subject, when grants were resolved.
    pub fn subject(&self) -> Option<&'a str> {
        self.subject.map(|s| &**s)
    }

    /// The subject header's value, when grants were resolved and the
    /// subject can be one.
    pub fn subject_header(&self) -> Option<&'a HeaderValue> {
        self.subject.and_then(Subject::header_value)
    }

    /// In audit mode, the refusal that enforce mode would have answered.
    pub fn would_deny(&self) -> Option<&Refused> {
        self.would_deny.as_ref()
    }
}

/// What the gateway does with a routed request: the rules' verdict with the
/// route's mode applied.
#[derive(Debug)]
pub struct Decision<'t, 'a> {
    verdict: Verdict,
    mode: Mode,
    upstream: usize,
    upstream_name: &'t str,
    route: Option<&'t Route>,
    path: &'a str,
    subject: Option<&'a Subject>,
}

impl<'t, 'a> Decision<'t, 'a> {
    pub(super) fn new(
        routed: &Routed<'t, 'a>,
        verdict: Verdict,
        subject: Option<&'a Subject>,
    ) -> Self {
        let (upstream, upstream_name) = routed.upstream();
        Self {
            verdict,
            mode: routed.mode(),
            upstream,
            upstream_name,
            route: routed.route(),
            path: routed.path(),
            subject,
        }
    }

    /// What the rules say, before the mode is applied.
    pub fn verdict(&self) -> &Verdict {
        &self.verdict
    }

    /// The mode that applies.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The name of the upstream a forwarded request goes to.
    pub fn upstream_name(&self) -> &'t str {
        self.upstream_name
    }

    /// Whether the request is forwarded: allowed, or refused in audit mode.
    pub fn forwards(&self) -> bool {
        matches!(self.verdict, Verdict::Allow(_)) || self.mode == Mode::Audit
    }

    /// A permit to forward, or the refusal to answer. In audit mode every
    /// decision yields a permit that remembers what enforce would have done.
    pub fn into_permit(self) -> Result<Permit<'t, 'a>, Refused> {
        let would_deny = match (self.verdict, self.mode) {
            (Verdict::Allow(_), _) => None,
            (Verdict::Refuse(r), Mode::Audit) => Some(r),
            (Verdict::Refuse(r), Mode::Enforce) => return Err(r),
        };
        Ok(Permit {
            upstream: self.upstream,
            route: self.route,
            path: self.path,
            subject: self.subject,
            would_deny,
        })
    }
}
