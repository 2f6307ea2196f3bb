//! The permission grammar (README, "Permissions").
//!
//! A permission is `part(:part)*`, a part is `token(,token)*`, a token is
//! `[A-Za-z0-9_.-]+` or `*`. Comparison ignores ASCII case.
//!
//! * [`Permission`] is a grant or a deny as a permission source hands it out.
//! * [`Requirement`] is what a route needs: concrete tokens, or `{param}`
//!   parts filled from the matched path. A path value that is not a plain
//!   token can never form a permission, so a template can never widen a grant.
//! * [`PermissionSet`] holds a caller's grants or denies and answers
//!   [`PermissionSet::check`] for one requirement.

use rustc_hash::FxHashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Whether `b` may appear in a token (`[A-Za-z0-9_.-]`).
#[inline]
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// Whether `s` is a non-empty run of token bytes: a value that may stand in
/// for a `{param}` part of a requirement.
#[inline]
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// Why a permission or requirement string was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionError {
    /// The string is empty.
    Empty,
    /// Part number `part` (1-based) is empty, as in `a::b`.
    EmptyPart { part: usize },
    /// A token inside part `part` is empty, as in `a:b,:c`.
    EmptyToken { part: usize },
    /// A byte that no token may contain.
    InvalidChar { ch: char, offset: usize },
    /// A `*` combined with other characters in one token, as in `view*`.
    PartialWildcard { part: usize },
    /// Requirements are concrete: one token per part, no `*`.
    NotConcrete { part: usize },
    /// `{name}` names no parameter of the route's path.
    UnknownParam { name: String },
    /// A `{` that does not form a whole `{name}` part.
    BadTemplate { part: usize },
}

impl fmt::Display for PermissionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("permission is empty"),
            Self::EmptyPart { part } => write!(f, "part {part} is empty"),
            Self::EmptyToken { part } => write!(f, "part {part} has an empty token"),
            Self::InvalidChar { ch, offset } => write!(
                f,
                "character {ch:?} at offset {offset} is not allowed (tokens are [A-Za-z0-9_.-] or *)"
            ),
            Self::PartialWildcard { part } => {
                write!(f, "part {part}: '*' must be a whole token")
            }
            Self::NotConcrete { part } => write!(
                f,
                "part {part}: a requirement names exactly one token per part, without '*' or ','"
            ),
            Self::UnknownParam { name } => {
                write!(f, "{{{name}}} is not a parameter of the route's path")
            }
            Self::BadTemplate { part } => write!(
                f,
                "part {part}: a path parameter must fill a whole part, as in integration:{{id}}:admin"
            ),
        }
    }
}

impl std::error::Error for PermissionError {}

/// A grant or deny, validated and stored in lower case, split into its
/// parts once. Clones share one allocation, and [`Permission::parse`]
/// hands out the same allocation for the same permission (the grant sets of
/// many callers hold the same few permissions).
#[derive(Clone)]
pub struct Permission(Arc<Parsed>);

struct Parsed {
    /// The whole permission, lower case.
    text: Box<str>,
    parts: Box<[Part]>,
}

/// One part of a [`Permission`].
enum Part {
    /// `*`, alone or in a list: any token.
    Any,
    /// One token, lower case.
    One(Box<str>),
    /// A `,` list of tokens, lower case.
    Many(Box<[Box<str>]>),
}

impl Part {
    fn of(text: &str) -> Part {
        let tokens: Vec<&str> = text.split(',').collect();
        if tokens.contains(&"*") {
            Part::Any
        } else if tokens.len() == 1 {
            Part::One(text.into())
        } else {
            Part::Many(tokens.into_iter().map(Box::from).collect())
        }
    }

    #[inline]
    fn admits(&self, wanted: &str) -> bool {
        match self {
            Part::Any => true,
            Part::One(t) => t.eq_ignore_ascii_case(wanted),
            Part::Many(ts) => ts.iter().any(|t| t.eq_ignore_ascii_case(wanted)),
        }
    }
}

impl PartialEq for Permission {
    fn eq(&self, other: &Self) -> bool {
        self.0.text == other.0.text
    }
}

impl Eq for Permission {}

impl std::hash::Hash for Permission {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.text.hash(h);
    }
}

/// Distinct permissions kept for sharing; past this many the table starts
/// over (permissions already handed out stay valid, only sharing is lost).
const INTERNED_MAX: usize = 100_000;

/// Keyed by the lower-case text. The keys come from configuration and the
/// grant source, not from clients, so a fast unkeyed hash is enough.
static INTERNED: Mutex<Option<FxHashMap<Box<str>, Permission>>> = Mutex::new(None);

/// The shared [`Permission`] for the validated `text`, in lower case.
fn intern(text: &str) -> Permission {
    // Permissions almost always arrive in lower case already: looked up
    // as they are, without a lower-case copy.
    let lower = text
        .bytes()
        .any(|b| b.is_ascii_uppercase())
        .then(|| text.to_ascii_lowercase());
    let text = lower.as_deref().unwrap_or(text);
    let mut table = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
    let table = table.get_or_insert_with(FxHashMap::default);
    if let Some(p) = table.get(text) {
        return p.clone();
    }
    if table.len() >= INTERNED_MAX {
        table.clear();
    }
    let perm = Permission(Arc::new(Parsed {
        parts: text.split(':').map(Part::of).collect(),
        text: text.into(),
    }));
    table.insert(perm.0.text.clone(), perm.clone());
    perm
}

impl Permission {
    /// Parses a permission; `*` tokens and `,` lists are allowed.
    ///
    /// One pass over the bytes (permission API answers are parsed on every
    /// uncached request): a token ends at `,`, a part at `:` or the end.
    pub fn parse(s: &str) -> Result<Self, PermissionError> {
        if s.is_empty() {
            return Err(PermissionError::Empty);
        }
        let bytes = s.as_bytes();
        let (mut part, mut part_start, mut token_start) = (1, 0, 0);
        for i in 0..=bytes.len() {
            match bytes.get(i).copied() {
                sep @ (None | Some(b',' | b':')) => {
                    if i == token_start {
                        return Err(if i == part_start && sep != Some(b',') {
                            PermissionError::EmptyPart { part }
                        } else {
                            PermissionError::EmptyToken { part }
                        });
                    }
                    token_start = i + 1;
                    if sep != Some(b',') {
                        part += 1;
                        part_start = i + 1;
                    }
                }
                Some(b'*') => {
                    // Only a whole token may be `*`.
                    let alone =
                        i == token_start && matches!(bytes.get(i + 1), None | Some(b',' | b':'));
                    if !alone {
                        return Err(PermissionError::PartialWildcard { part });
                    }
                }
                Some(b) if !is_token_byte(b) => {
                    let ch = s[i..].chars().next().unwrap_or('?');
                    return Err(PermissionError::InvalidChar { ch, offset: i });
                }
                Some(_) => {}
            }
        }
        Ok(intern(s))
    }

    /// The permission in its stored (lower-case) form.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// Whether this permission implies the concrete requirement whose parts
    /// `parts` yields (README, "Permissions").
    ///
    /// Position by position the permission's part must be `*` or list the
    /// requirement's token. A permission with fewer parts implies everything
    /// below it; one with more parts implies only if the extra parts are `*`.
    pub fn implies<'a>(&self, parts: impl IntoIterator<Item = &'a str>) -> bool {
        let mut mine = self.0.parts.iter();
        for wanted in parts {
            match mine.next() {
                None => return true,
                Some(part) => {
                    if !part.admits(wanted) {
                        return false;
                    }
                }
            }
        }
        mine.all(|part| matches!(part, Part::Any))
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.text)
    }
}

impl fmt::Debug for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Permission({})", self.0.text)
    }
}

/// One part of a [`Requirement`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum RequirementPart {
    /// A concrete token, stored lower case.
    Token(Box<str>),
    /// The value of the route's path parameter at this index.
    Param(usize),
}

/// A permission a route requires: concrete, or with `{param}` parts that the
/// matched path fills in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    parts: Box<[RequirementPart]>,
    /// The requirement as written in the routes file.
    text: Box<str>,
}

impl Requirement {
    /// Parses a requirement. `params` lists the route's path parameter names
    /// in path order; `{name}` parts must name one of them.
    pub fn parse(s: &str, params: &[&str]) -> Result<Self, PermissionError> {
        if s.is_empty() {
            return Err(PermissionError::Empty);
        }
        let mut parts = Vec::new();
        let mut offset = 0;
        for (i, part) in s.split(':').enumerate() {
            let part_no = i + 1;
            if part.is_empty() {
                return Err(PermissionError::EmptyPart { part: part_no });
            }
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let index = params.iter().position(|p| *p == name).ok_or_else(|| {
                    PermissionError::UnknownParam {
                        name: name.to_string(),
                    }
                })?;
                parts.push(RequirementPart::Param(index));
            } else {
                for (j, b) in part.bytes().enumerate() {
                    if matches!(b, b'{' | b'}') {
                        return Err(PermissionError::BadTemplate { part: part_no });
                    }
                    if matches!(b, b'*' | b',') {
                        return Err(PermissionError::NotConcrete { part: part_no });
                    }
                    if !is_token_byte(b) {
                        let ch = part[j..].chars().next().unwrap_or('?');
                        return Err(PermissionError::InvalidChar {
                            ch,
                            offset: offset + j,
                        });
                    }
                }
                parts.push(RequirementPart::Token(
                    part.to_ascii_lowercase().into_boxed_str(),
                ));
            }
            offset += part.len() + 1;
        }
        Ok(Self {
            parts: parts.into_boxed_slice(),
            text: s.into(),
        })
    }

    /// The requirement as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether any part comes from a path parameter.
    pub fn is_templated(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, RequirementPart::Param(_)))
    }

    /// The concrete parts for a request whose path parameters are `params`,
    /// or `None` when a parameter value is empty or not a plain token: such a
    /// request cannot satisfy the requirement.
    pub fn resolve<'a>(&'a self, params: &'a [&'a str]) -> Option<ResolvedRequirement<'a>> {
        for part in self.parts.iter() {
            if let RequirementPart::Param(i) = part {
                if !is_token(params.get(*i).copied().unwrap_or("")) {
                    return None;
                }
            }
        }
        Some(ResolvedRequirement {
            requirement: self,
            params,
        })
    }

    /// The requirement with parameters substituted, for messages. A value that
    /// cannot form a permission is shown as `<invalid>`, never echoed.
    pub fn render(&self, params: &[&str]) -> String {
        let mut out = String::with_capacity(self.text.len() + 16);
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            match part {
                RequirementPart::Token(t) => out.push_str(t),
                RequirementPart::Param(p) => match params.get(*p) {
                    Some(v) if is_token(v) => out.push_str(v),
                    _ => out.push_str("<invalid>"),
                },
            }
        }
        out
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A requirement with its path parameters bound; every part is a token.
#[derive(Clone, Copy)]
pub struct ResolvedRequirement<'a> {
    requirement: &'a Requirement,
    params: &'a [&'a str],
}

impl<'a> ResolvedRequirement<'a> {
    /// The concrete tokens, part by part.
    pub fn parts(&self) -> impl Iterator<Item = &'a str> + 'a {
        let params = self.params;
        self.requirement.parts.iter().map(move |p| match p {
            RequirementPart::Token(t) => &**t,
            RequirementPart::Param(i) => params[*i],
        })
    }
}

/// A caller's grants, or a caller's denies.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PermissionSet(Box<[Permission]>);

impl PermissionSet {
    /// An empty set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The permissions in the set.
    pub fn iter(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter()
    }

    /// Number of permissions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first permission of the set that implies `req`.
    pub fn implying(&self, req: &ResolvedRequirement<'_>) -> Option<&Permission> {
        self.0.iter().find(|p| p.implies(req.parts()))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|p| p.as_str()))
            .finish()
    }
}

/// How one requirement fared against a caller's grants and denies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check<'g> {
    /// A grant implies it and no deny does.
    Satisfied(&'g Permission),
    /// A deny implies it (deny wins over any grant).
    Denied(&'g Permission),
    /// No grant implies it.
    NotGranted,
    /// A path parameter value cannot form a permission.
    Unformable,
}

impl Check<'_> {
    /// Whether the requirement is satisfied.
    pub fn is_satisfied(&self) -> bool {
        matches!(self, Check::Satisfied(_))
    }
}

/// Checks one requirement against grants and denies (README, "Permissions").
pub fn check<'g>(
    req: &Requirement,
    params: &[&str],
    grants: &'g PermissionSet,
    denies: &'g PermissionSet,
) -> Check<'g> {
    let Some(resolved) = req.resolve(params) else {
        return Check::Unformable;
    };
    if let Some(deny) = denies.implying(&resolved) {
        return Check::Denied(deny);
    }
    match grants.implying(&resolved) {
        Some(grant) => Check::Satisfied(grant),
        None => Check::NotGranted,
    }
}

#[cfg(test)]
mod tests;
