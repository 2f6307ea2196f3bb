//! What `permgate suggest` proposes for each unmatched shape: the route's
//! path with named parameters, its name, the `require` of a sibling route,
//! or why the shape is left out. No I/O.

use std::collections::HashSet;

use http::Method;

use crate::permission::Requirement;
use crate::routes::lint::{example_path, fresh_value, overlap};
use crate::routes::{Access, PathPattern, Route, RouteTable, Segment};

/// The placeholder coverage puts where an identifier stood.
const ID: &str = "{id}";

/// One unmatched shape, as `/admin/coverage` reports it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Unmatched {
    /// Request method.
    pub method: String,
    /// Normalized path with identifiers replaced by `{id}`.
    pub shape: String,
    /// Requests seen.
    pub count: u64,
    /// One normalized path of this shape.
    pub example: String,
}

/// What becomes of a shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A route with `require`/`require_any` copied from route `sibling`.
    Route {
        /// Index of the sibling in the table.
        sibling: usize,
    },
    /// A route printed commented out: no sibling to copy access from, and
    /// without `require` it would let any authenticated caller in.
    NoSibling {
        /// `METHOD /parent` looked under.
        parent: String,
    },
    /// Not proposed, and why.
    Skipped(String),
}

/// A proposal for one unmatched shape.
#[derive(Clone, Debug)]
pub struct Proposal {
    /// The shape it answers.
    pub unmatched: Unmatched,
    /// Route name.
    pub name: String,
    /// Route method.
    pub method: Option<Method>,
    /// Path pattern with named parameters.
    pub path: String,
    /// `require` to write.
    pub require: Vec<String>,
    /// `require_any` to write.
    pub require_any: Vec<String>,
    /// Route, commented route, or skipped.
    pub outcome: Outcome,
}

impl Proposal {
    /// Whether it is written as an active `[[route]]`.
    pub fn is_route(&self) -> bool {
        matches!(self.outcome, Outcome::Route { .. })
    }
}

/// `users` → `userId`, `user-groups` → `userGroupId`, `policies` →
/// `policyId`; a segment without a leading letter → `id`.
pub fn param_name(segment: &str) -> String {
    let mut words: Vec<String> = segment
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    if !words
        .first()
        .is_some_and(|w| w.starts_with(|c: char| c.is_ascii_alphabetic()))
    {
        return "id".into();
    }
    if let Some(last) = words.last_mut() {
        *last = singular(last);
    }
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        let mut chars = w.chars();
        let first = chars.next().unwrap_or_default();
        if i == 0 {
            out.push(first.to_ascii_lowercase());
        } else {
            out.push(first.to_ascii_uppercase());
        }
        out.extend(chars);
    }
    out.push_str("Id");
    out
}

/// English plural to singular for the usual REST collection names.
pub fn singular(word: &str) -> String {
    let lower = word.to_ascii_lowercase();
    let keep = |n: usize| word[..word.len() - n].to_string();
    if lower.len() > 3 && lower.ends_with("ies") {
        return keep(3) + if word.ends_with("IES") { "Y" } else { "y" };
    }
    for suffix in ["sses", "xes", "ches", "shes", "zzes"] {
        if lower.len() > suffix.len() && lower.ends_with(suffix) {
            return keep(2);
        }
    }
    if lower.len() > 1
        && lower.ends_with('s')
        && !["ss", "us", "is"].iter().any(|e| lower.ends_with(e))
    {
        return keep(1);
    }
    word.to_string()
}

/// Whether route `r` serves `method` by listing it.
fn lists(r: &Route, method: &Method) -> bool {
    r.methods.as_deref().is_some_and(|ms| ms.contains(method))
}

/// The segments of `shape` as a pattern: `{id}` → parameter.
fn segments_of(shape: &str) -> Vec<Segment> {
    let rest = shape.strip_prefix('/').unwrap_or(shape);
    rest.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s == ID {
                Segment::Param(String::new())
            } else {
                Segment::Static(s.to_string())
            }
        })
        .collect()
}

/// Same kinds, equal statics, parameters named anyhow.
fn same_shape(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Segment::Static(s), Segment::Static(t)) => s == t,
            (Segment::Param(_), Segment::Param(_)) => true,
            (Segment::CatchAll(_), Segment::CatchAll(_)) => true,
            _ => false,
        })
}

/// Routes listing `method` with permissions to copy, best first: those
/// whose path has the same parent as `segs` (everything but the last
/// segment), then the route of that parent path itself; file order within.
pub fn siblings<'t>(
    table: &'t RouteTable,
    method: &Method,
    segs: &[Segment],
) -> Vec<(usize, &'t Route)> {
    let Some((_, parent)) = segs.split_last() else {
        return Vec::new();
    };
    let candidates = || {
        table
            .routes()
            .iter()
            .enumerate()
            .filter(|(_, r)| lists(r, method) && matches!(r.access, Access::Permissions { .. }))
    };
    candidates()
        .filter(|(_, r)| {
            r.pattern
                .segments
                .split_last()
                .is_some_and(|(_, p)| same_shape(p, parent))
        })
        .chain(
            candidates()
                .filter(|(_, r)| !parent.is_empty() && same_shape(&r.pattern.segments, parent)),
        )
        .collect()
}

/// The proposals for `unmatched` against `table`, in the order given.
pub fn plan(table: &RouteTable, unmatched: &[Unmatched]) -> Vec<Proposal> {
    let mut names: HashSet<String> = table.routes().iter().map(|r| r.name.to_string()).collect();
    unmatched
        .iter()
        .map(|u| propose(table, u, &mut names))
        .collect()
}

fn skipped(u: &Unmatched, method: Option<Method>, why: String) -> Proposal {
    Proposal {
        unmatched: u.clone(),
        name: String::new(),
        method,
        path: u.shape.clone(),
        require: Vec::new(),
        require_any: Vec::new(),
        outcome: Outcome::Skipped(why),
    }
}

fn propose(table: &RouteTable, u: &Unmatched, names: &mut HashSet<String>) -> Proposal {
    let Ok(method) = Method::from_bytes(u.method.as_bytes()) else {
        return skipped(u, None, format!("{:?} is not a method", u.method));
    };
    if let Some(m) = table.find(&method, &u.example) {
        return skipped(
            u,
            Some(method),
            format!(
                "{} is now matched by {:?} (line {})",
                u.example, m.route.name, m.route.line
            ),
        );
    }
    let segs = segments_of(&u.shape);
    let sibling_list = siblings(table, &method, &segs);
    // Parameter names: the sibling's for the shared parent, else those of a
    // route with this very shape (another method), else from the segment
    // before.
    let same = table
        .routes()
        .iter()
        .find(|r| same_shape(&r.pattern.segments, &segs));
    let mut used: Vec<String> = Vec::new();
    let mut text = String::new();
    for (i, seg) in segs.iter().enumerate() {
        text.push('/');
        let Segment::Static(s) = seg else {
            // The sibling's names first, so that its templates stay valid.
            let adopted = sibling_list
                .first()
                .and_then(|(_, r)| (i + 1 < segs.len()).then(|| r.pattern.segments.get(i))?)
                .or_else(|| same.map(|r| &r.pattern.segments[i]))
                .and_then(|s| match s {
                    Segment::Param(n) if !used.contains(n) => Some(n.clone()),
                    _ => None,
                });
            let name = adopted.unwrap_or_else(|| {
                let base = match i.checked_sub(1).map(|p| &segs[p]) {
                    Some(Segment::Static(prev)) => param_name(prev),
                    _ => "id".to_string(),
                };
                unique(&base, |n| used.iter().any(|u| u == n), "")
            });
            text.push_str(&format!("{{{name}}}"));
            used.push(name);
            continue;
        };
        text.push_str(s);
    }
    if text.is_empty() || (u.shape.ends_with('/') && u.shape.len() > 1) {
        text.push('/');
    }
    if let Err(e) = PathPattern::parse(&text, &table.normalize) {
        return skipped(
            u,
            Some(method),
            format!("{text} is not a valid route path: {e}"),
        );
    }
    let base = format!(
        "{}.{}",
        route_name(&segs),
        method.as_str().to_ascii_lowercase()
    );
    let name = unique(&base, |n| names.contains(n), ".");
    names.insert(name.clone());

    let params: Vec<&str> = used.iter().map(String::as_str).collect();
    let copied = sibling_list.iter().find_map(|(i, r)| {
        let Access::Permissions { all, any } = &r.access else {
            return None;
        };
        let fits = |l: &[Requirement]| -> Option<Vec<String>> {
            l.iter()
                .map(|q| {
                    Requirement::parse(q.as_str(), &params)
                        .ok()
                        .map(|_| q.as_str().to_string())
                })
                .collect()
        };
        Some((*i, fits(all)?, fits(any)?))
    });
    let (outcome, require, require_any) = match copied {
        Some((sibling, all, any)) => (Outcome::Route { sibling }, all, any),
        None => {
            let parent = match text.rfind('/') {
                Some(0) | None => "/".to_string(),
                Some(p) => text[..p].to_string(),
            };
            (
                Outcome::NoSibling {
                    parent: format!("{method} {parent}"),
                },
                Vec::new(),
                Vec::new(),
            )
        }
    };
    Proposal {
        unmatched: u.clone(),
        name,
        method: Some(method),
        path: text,
        require,
        require_any,
        outcome,
    }
}

/// A route name from the path, before the method: the last static segment
/// (singular when parameters follow it: an item), after the resource it
/// belongs to when a parameter stands between them. `/widgets` →
/// `widgets`, `/widgets/{id}` → `widget`, `/widgets/{id}/history` →
/// `widget.history`, `/` → `root`.
pub fn route_name(segs: &[Segment]) -> String {
    let statics: Vec<usize> = (0..segs.len())
        .filter(|&i| matches!(segs[i], Segment::Static(_)))
        .collect();
    let word = |i: usize| match &segs[i] {
        Segment::Static(w) => w.as_str(),
        _ => "",
    };
    let Some(&last) = statics.last() else {
        return "root".into();
    };
    let mut name = if last + 1 < segs.len() {
        singular(word(last))
    } else {
        word(last).to_string()
    };
    if let Some(&before) = statics.iter().rev().nth(1) {
        if before + 1 < last {
            name = format!("{}.{name}", singular(word(before)));
        }
    }
    name
}

/// `base`, or `base` + separator + 2, 3, … until `taken` says no.
fn unique(base: &str, taken: impl Fn(&str) -> bool, sep: &str) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}{sep}{n}"))
        .find(|n| !taken(n))
        .unwrap_or_default()
}

/// Marks proposals that would take paths existing routes answer today.
///
/// `combined` is `old` with the active proposals appended, in order.
/// Returns whether any proposal changed.
pub fn refuse_takeovers(
    old: &RouteTable,
    combined: &RouteTable,
    proposals: &mut [Proposal],
) -> bool {
    let index_of = |t: &RouteTable, r: &Route| t.routes().iter().position(|x| std::ptr::eq(x, r));
    let existing = old.routes().len();
    let fresh = fresh_value(combined.routes());
    let mut changed = false;
    let mut k = existing;
    for p in proposals.iter_mut().filter(|p| p.is_route()) {
        let new = &combined.routes()[k];
        k += 1;
        let Some(method) = p.method.clone() else {
            continue;
        };
        for (q, route) in old.routes().iter().enumerate() {
            if !overlap(new, route) {
                continue;
            }
            let path = example_path(new, route, &fresh);
            let before = old
                .find(&method, &path)
                .and_then(|m| index_of(old, m.route));
            let after = combined
                .find(&method, &path)
                .and_then(|m| index_of(combined, m.route));
            if before == Some(q) && after == Some(k - 1) {
                p.outcome = Outcome::Skipped(format!(
                    "{} {} would take {path} from {:?} (line {})",
                    method, p.path, route.name, route.line
                ));
                changed = true;
                break;
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests;
