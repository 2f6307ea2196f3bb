//! `permgate check --lint` (README, "Linting a route table"): routes that
//! can never match, overlaps the matching order decides silently, and paths
//! where the access a request gets depends on a detail easy to miss.
//!
//! Everything here reasons about the same matching order the proxy uses
//! (static before `{param}` before `{*rest}`, per method, with any-method
//! routes filling in shapes a method does not define) and confirms each
//! claimed winner with [`RouteTable::find`] on an example path.

use std::collections::{BTreeMap, HashSet};

use http::Method;

use super::{Access, DefaultPolicy, Mode, Route, RouteTable, Segment};
use crate::path::TrailingSlash;

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Probably a mistake, or access wider than a neighbouring route gives.
    Warning,
    /// Worth knowing, usually intended.
    Note,
}

impl Severity {
    /// `warning` or `note`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A route that some or all of its methods never reach.
    Unreachable,
    /// Two routes of one method match a common path; a static segment of
    /// one beats a `{param}` of the other.
    StaticOverParam,
    /// A `{*rest}` route of one method and a more specific route beside it
    /// that asks for different access.
    CatchAllSibling,
    /// A `{*rest}` route takes, for its methods, paths of a route of other
    /// methods.
    CatchAllOtherMethods,
    /// A public route matches paths a protected route of other methods
    /// also matches.
    PublicOverlap,
    /// A method of a protected path that no route covers, with a `default`
    /// that lets it through.
    MethodGap,
}

impl Kind {
    /// The label printed in brackets.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Unreachable => "unreachable",
            Kind::StaticOverParam => "static-over-param",
            Kind::CatchAllSibling => "catch-all-sibling",
            Kind::CatchAllOtherMethods => "catch-all-other-methods",
            Kind::PublicOverlap => "public-overlap",
            Kind::MethodGap => "method-gap",
        }
    }
}

/// One lint finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Warning or note.
    pub severity: Severity,
    /// What it is about.
    pub kind: Kind,
    /// Line of the route it is reported at.
    pub line: usize,
    /// Indexes (file order) of the routes involved; the first is reported at `line`.
    pub routes: Vec<usize>,
    /// What is wrong, naming every route involved with its line.
    pub message: String,
}

/// Methods a missing route is looked for on each protected path.
const USUAL_METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The routes one method's matcher holds.
struct MethodSet {
    /// The method; `None` for methods no route lists (only any-method routes).
    method: Option<Method>,
    /// Route indexes.
    routes: Vec<usize>,
}

/// Lints `table`; findings in file order of the route they are reported at.
pub fn lint(table: &RouteTable) -> Vec<Finding> {
    let routes = table.routes();
    let sets = method_sets(routes);
    let fresh = fresh_value(routes);
    let mut out = Vec::new();
    unreachable(table, &sets, &mut out);
    overlaps(table, &sets, &fresh, &mut out);
    other_methods(table, &sets, &fresh, &mut out);
    method_gaps(table, &fresh, &mut out);
    out.sort_by(|a, b| (a.line, a.kind, &a.routes).cmp(&(b.line, b.kind, &b.routes)));
    out.dedup();
    out
}

/// `"name" (line N)`.
fn label(r: &Route) -> String {
    format!("{:?} (line {})", r.name, r.line)
}

fn method_sets(routes: &[Route]) -> Vec<MethodSet> {
    let mut listed: Vec<Method> = Vec::new();
    for r in routes {
        for m in r.methods.iter().flatten() {
            if !listed.contains(m) {
                listed.push(m.clone());
            }
        }
    }
    let any: Vec<usize> = (0..routes.len())
        .filter(|&i| routes[i].methods.is_none())
        .collect();
    let mut sets: Vec<MethodSet> = listed
        .into_iter()
        .map(|m| {
            let own: Vec<usize> = (0..routes.len())
                .filter(|&i| {
                    routes[i]
                        .methods
                        .as_deref()
                        .is_some_and(|ms| ms.contains(&m))
                })
                .collect();
            let shapes: HashSet<String> = own.iter().map(|&i| routes[i].pattern.shape()).collect();
            let mut all = own;
            all.extend(
                any.iter()
                    .copied()
                    .filter(|&i| !shapes.contains(&routes[i].pattern.shape())),
            );
            MethodSet {
                method: Some(m),
                routes: all,
            }
        })
        .collect();
    if !any.is_empty() {
        sets.push(MethodSet {
            method: None,
            routes: any,
        });
    }
    sets
}

fn method_name(m: &Option<Method>) -> &str {
    m.as_ref().map_or("other methods", Method::as_str)
}

/// A segment value no route has as a static segment: an example path built
/// with it matches only `{param}` and `{*rest}` where it stands.
pub fn fresh_value(routes: &[Route]) -> String {
    let statics: HashSet<&str> = routes
        .iter()
        .flat_map(|r| r.pattern.segments.iter())
        .filter_map(|s| match s {
            Segment::Static(v) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    (0..)
        .map(|n| format!("x{n}"))
        .find(|v| !statics.contains(v.as_str()))
        .unwrap_or_default()
}

/// How much a route asks: public < authenticated < permissions; a route in
/// audit mode asks nothing of anyone.
fn strength(r: &Route) -> u8 {
    if r.mode == Mode::Audit {
        return 0;
    }
    match r.access {
        Access::Public => 0,
        Access::Authenticated => 1,
        Access::Permissions { .. } => 2,
    }
}

/// What a route asks, in words: `public`, `authentication only`,
/// `require [a, b]`…
pub fn describe_access(r: &Route) -> String {
    let mut s = match &r.access {
        Access::Public => "public".to_string(),
        Access::Authenticated => "authentication only".to_string(),
        Access::Permissions { all, any } => {
            let list = |l: &[crate::permission::Requirement]| {
                l.iter().map(|q| q.as_str()).collect::<Vec<_>>().join(", ")
            };
            match (all.is_empty(), any.is_empty()) {
                (false, true) => format!("require [{}]", list(all)),
                (true, false) => format!("require_any [{}]", list(any)),
                _ => format!("require [{}] and require_any [{}]", list(all), list(any)),
            }
        }
    };
    if r.mode == Mode::Audit {
        s.push_str(", audit mode");
    }
    s
}

fn same_access(a: &Route, b: &Route) -> bool {
    a.access == b.access && a.mode == b.mode
}

/// Whether some path matches both patterns.
pub fn overlap(a: &Route, b: &Route) -> bool {
    let (x, y) = (&a.pattern.segments, &b.pattern.segments);
    for i in 0.. {
        match (x.get(i), y.get(i)) {
            (Some(Segment::CatchAll(_)), Some(_)) | (Some(_), Some(Segment::CatchAll(_))) => {
                return true;
            }
            (Some(Segment::Static(s)), Some(Segment::Static(t))) if s != t => return false,
            (Some(_), Some(_)) => {}
            (None, None) => return a.pattern.trailing_slash == b.pattern.trailing_slash,
            _ => return false,
        }
    }
    false
}

/// A path both patterns match (they overlap): statics where either has one,
/// `fresh` for parameters.
pub fn example_path(a: &Route, b: &Route, fresh: &str) -> String {
    let (x, y) = (&a.pattern.segments, &b.pattern.segments);
    let mut out = String::new();
    let mut trailing = a.pattern.trailing_slash || b.pattern.trailing_slash;
    for i in 0..x.len().max(y.len()) {
        let seg = match (x.get(i), y.get(i)) {
            (Some(Segment::Static(s)), _) | (_, Some(Segment::Static(s))) => s.as_str(),
            (Some(Segment::CatchAll(_)), None) | (None, Some(Segment::CatchAll(_))) => {
                trailing = false;
                fresh
            }
            _ => fresh,
        };
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() || trailing {
        out.push('/');
    }
    out
}

/// The route index the table picks for `method` (`None`: another method
/// than any listed) and `path`.
fn winner(table: &RouteTable, method: &Option<Method>, path: &str) -> Option<usize> {
    // A method no route lists: any extension method reaches only the
    // any-method routes.
    let m = method
        .clone()
        .unwrap_or_else(|| Method::from_bytes(b"LINT-OTHER").unwrap_or(Method::OPTIONS));
    let found = table.find(&m, path)?;
    let routes = table.routes();
    routes.iter().position(|r| std::ptr::eq(r, found.route))
}

/// Joins method names, or says "every method" when the pair meets in every
/// method's matcher, including that of methods no route lists.
fn methods_phrase(methods: &[&str], all: usize) -> String {
    if methods.len() == all && methods.contains(&method_name(&None)) {
        "every method".into()
    } else {
        methods.join(", ")
    }
}

// ---------------------------------------------------------------- unreachable

/// Catch-all routes every path of which a more specific route of the same
/// method takes. A route without `{*rest}` is never covered like that: a
/// path with an unused value at each `{param}` reaches it.
fn unreachable(table: &RouteTable, sets: &[MethodSet], out: &mut Vec<Finding>) {
    if !table.normalize.merge_slashes {
        // Empty segments reach a catch-all that `{param}`s never take.
        return;
    }
    let routes = table.routes();
    let strict = table.normalize.trailing_slash == TrailingSlash::Strict;
    // route -> (methods where it is covered, covering routes, methods it is in)
    let mut covered: BTreeMap<usize, (Vec<&str>, Vec<usize>, usize)> = BTreeMap::new();
    for set in sets {
        for &r in &set.routes {
            let entry = covered.entry(r).or_default();
            entry.2 += 1;
            if let Some(by) = covering(routes, &set.routes, r, strict) {
                entry.0.push(method_name(&set.method));
                for b in by {
                    if !entry.1.contains(&b) {
                        entry.1.push(b);
                    }
                }
            }
        }
    }
    for (r, (methods, by, present)) in covered {
        if methods.is_empty() {
            continue;
        }
        let route = &routes[r];
        let by_list: Vec<String> = by.iter().map(|&b| label(&routes[b])).collect();
        let whole = methods.len() == present;
        let message = if whole {
            format!(
                "route {} can never match: every path it matches is taken by {}",
                label(route),
                by_list.join(", ")
            )
        } else {
            format!(
                "route {} never matches for {}: every such path is taken by {}",
                label(route),
                methods.join(", "),
                by_list.join(", ")
            )
        };
        let mut involved = vec![r];
        involved.extend(by);
        out.push(Finding {
            severity: Severity::Warning,
            kind: Kind::Unreachable,
            line: route.line,
            routes: involved,
            message,
        });
    }
}

/// If catch-all route `r` is covered within `set`, the routes that cover it.
///
/// `P/{*rest}` is covered exactly when routes `P/{a}`, `P/{a}/{b}`, …,
/// `P/{a}/…/{n}` (each also with a trailing `/` when trailing slashes are
/// significant) and `P/{a}/…/{n}/{*more}` exist: anything else leaves a
/// path with unused values that only the catch-all matches.
fn covering(routes: &[Route], set: &[usize], r: usize, strict: bool) -> Option<Vec<usize>> {
    let segs = &routes[r].pattern.segments;
    let Some((Segment::CatchAll(_), prefix)) = segs.split_last() else {
        return None;
    };
    let k = prefix.len();
    // (params after the prefix, ends with a catch-all, trailing slash) -> route
    let mut suffixes: Vec<(usize, bool, bool, usize)> = Vec::new();
    for &q in set {
        let qs = &routes[q].pattern.segments;
        if q == r || qs.len() <= k || !same_kinds(&qs[..k], prefix) {
            continue;
        }
        let rest = &qs[k..];
        let catch_all = matches!(rest.last(), Some(Segment::CatchAll(_)));
        let params = if catch_all {
            rest.len() - 1
        } else {
            rest.len()
        };
        if params == 0
            || !rest[..params]
                .iter()
                .all(|s| matches!(s, Segment::Param(_)))
        {
            continue;
        }
        suffixes.push((params, catch_all, routes[q].pattern.trailing_slash, q));
    }
    let deepest = suffixes.iter().filter(|s| s.1).min_by_key(|s| s.0)?;
    let mut by = vec![deepest.3];
    for n in 1..=deepest.0 {
        for trailing in [false, true] {
            if trailing && !strict {
                continue;
            }
            let q = suffixes
                .iter()
                .find(|s| s.0 == n && !s.1 && s.2 == trailing)?;
            by.push(q.3);
        }
    }
    by.sort_unstable();
    Some(by)
}

/// Same segment kinds, statics equal, parameters named anyhow.
fn same_kinds(a: &[Segment], b: &[Segment]) -> bool {
    a.iter().zip(b).all(|(x, y)| match (x, y) {
        (Segment::Static(s), Segment::Static(t)) => s == t,
        (Segment::Param(_), Segment::Param(_)) => true,
        (Segment::CatchAll(_), Segment::CatchAll(_)) => true,
        _ => false,
    })
}

// ---------------------------------------------------------------- overlaps

/// Pairs of routes in one method's matcher that match a common path.
fn overlaps(table: &RouteTable, sets: &[MethodSet], fresh: &str, out: &mut Vec<Finding>) {
    let routes = table.routes();
    // (winner, loser) -> (kind, methods, example path both match, a path
    // only the loser takes)
    type Pair<'a> = (Kind, Vec<&'a str>, String, Option<String>);
    let mut pairs: BTreeMap<(usize, usize), Pair<'_>> = BTreeMap::new();
    for set in sets {
        // Bucket by first segment: only routes whose first segments can
        // agree are compared.
        let mut by_first: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut wild: Vec<usize> = Vec::new();
        for &i in &set.routes {
            match routes[i].pattern.segments.first() {
                Some(Segment::Static(s)) => by_first.entry(s.as_str()).or_default().push(i),
                _ => wild.push(i),
            }
        }
        let mut consider = |a: usize, b: usize| {
            let Some((w, l, kind)) = classify(&routes[a], &routes[b]).map(|(first, kind)| {
                if first { (a, b, kind) } else { (b, a, kind) }
            }) else {
                return;
            };
            let path = example_path(&routes[w], &routes[l], fresh);
            if winner(table, &set.method, &path) != Some(w) {
                return;
            }
            let beyond = (kind == Kind::CatchAllSibling)
                .then(|| format!("{}/{fresh}", path.trim_end_matches('/')))
                .filter(|p| winner(table, &set.method, p) == Some(l));
            let entry = pairs
                .entry((w, l))
                .or_insert_with(|| (kind, Vec::new(), path, None));
            entry.1.push(method_name(&set.method));
            if entry.3.is_none() {
                entry.3 = beyond;
            }
        };
        for list in by_first.values() {
            for (n, &a) in list.iter().enumerate() {
                for &b in &list[n + 1..] {
                    consider(a, b);
                }
            }
        }
        for (n, &a) in wild.iter().enumerate() {
            for &b in &wild[n + 1..] {
                consider(a, b);
            }
            for list in by_first.values() {
                for &b in list {
                    consider(a, b);
                }
            }
        }
    }
    for ((w, l), (kind, methods, path, beyond)) in pairs {
        let (win, lose) = (&routes[w], &routes[l]);
        let weaker = strength(win) < strength(lose);
        let methods = methods_phrase(&methods, sets.len());
        let (severity, kind, message) = match kind {
            Kind::StaticOverParam => {
                // Usually an endpoint of its own (`/users/me` beside
                // `/users/{userId}`) that the backend also routes first; it
                // matters when the winner lets anyone in, or only audits.
                let public = win.access == Access::Public && lose.access != Access::Public;
                let audit =
                    win.mode == Mode::Audit && lose.mode == Mode::Enforce && strength(lose) > 0;
                let (severity, kind) = match (public, audit) {
                    (true, _) => (Severity::Warning, Kind::PublicOverlap),
                    (false, true) => (Severity::Warning, Kind::StaticOverParam),
                    _ => (Severity::Note, Kind::StaticOverParam),
                };
                let consequence = if weaker {
                    format!(
                        "; it asks less ({}) than {:?} ({})",
                        describe_access(win),
                        lose.name,
                        describe_access(lose)
                    )
                } else {
                    String::new()
                };
                (
                    severity,
                    kind,
                    format!(
                        "{path} matches both {} and {}; for {methods}, {:?} wins (a static segment beats a parameter){consequence}",
                        label(win),
                        label(lose),
                        win.name,
                    ),
                )
            }
            _ => {
                // The catch-all loses for the sibling's own paths and takes
                // everything else under the shared prefix.
                if same_access(win, lose) {
                    continue;
                }
                let broader = strength(lose) < strength(win);
                let severity = if broader {
                    Severity::Warning
                } else {
                    Severity::Note
                };
                let relation = if broader {
                    "is wider than"
                } else {
                    "differs from"
                };
                let example = beyond.map(|p| format!(" (e.g. {p})")).unwrap_or_default();
                (
                    severity,
                    kind,
                    format!(
                        "catch-all {} takes, for {methods}, the paths under {path} that {} does not match{example}; its access ({}) {relation} that of {:?} ({})",
                        label(lose),
                        label(win),
                        describe_access(lose),
                        win.name,
                        describe_access(win),
                    ),
                )
            }
        };
        out.push(Finding {
            severity,
            kind,
            line: lose.line,
            routes: vec![l, w],
            message,
        });
    }
}

/// For overlapping `a` and `b`: whether `a` wins, and what decides.
fn classify(a: &Route, b: &Route) -> Option<(bool, Kind)> {
    if !overlap(a, b) {
        return None;
    }
    let (x, y) = (&a.pattern.segments, &b.pattern.segments);
    for (s, t) in x.iter().zip(y) {
        let kind = match (s, t) {
            (Segment::Static(_), Segment::Param(_)) | (Segment::Param(_), Segment::Static(_)) => {
                Kind::StaticOverParam
            }
            (Segment::CatchAll(_), Segment::CatchAll(_)) => return None,
            (Segment::CatchAll(_), _) | (_, Segment::CatchAll(_)) => Kind::CatchAllSibling,
            _ => continue,
        };
        let a_wins = matches!(t, Segment::CatchAll(_)) || matches!(s, Segment::Static(_));
        return Some((a_wins, kind));
    }
    None
}

// ---------------------------------------------------------------- other methods

/// Catch-alls and public routes whose paths other methods' routes share.
fn other_methods(table: &RouteTable, sets: &[MethodSet], fresh: &str, out: &mut Vec<Finding>) {
    let routes = table.routes();
    // (route, other) -> methods where `route` serves the path and `other` is absent
    let mut pairs: BTreeMap<(usize, usize), Vec<&str>> = BTreeMap::new();
    for set in sets {
        let members: HashSet<usize> = set.routes.iter().copied().collect();
        for &r in &set.routes {
            let route = &routes[r];
            let catch_all = matches!(route.pattern.segments.last(), Some(Segment::CatchAll(_)));
            let public = route.access == Access::Public;
            if !catch_all && !public {
                continue;
            }
            for (q, other) in routes.iter().enumerate() {
                if members.contains(&q) || !overlap(route, other) {
                    continue;
                }
                if public && other.access == Access::Public {
                    continue;
                }
                // The path of `other` for this method: does `route` take it?
                let path = example_path(route, other, fresh);
                if winner(table, &set.method, &path) == Some(r) {
                    pairs
                        .entry((r, q))
                        .or_default()
                        .push(method_name(&set.method));
                }
            }
        }
    }
    for ((r, q), methods) in pairs {
        let (route, other) = (&routes[r], &routes[q]);
        let methods = methods_phrase(&methods, sets.len());
        if route.access == Access::Public {
            let safe = route.methods.as_deref().is_some_and(|ms| {
                ms.iter()
                    .all(|m| matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS))
            });
            let same_shape = route.pattern.shape() == other.pattern.shape();
            let severity = if safe && same_shape {
                Severity::Note
            } else {
                Severity::Warning
            };
            out.push(Finding {
                severity,
                kind: Kind::PublicOverlap,
                line: route.line,
                routes: vec![r, q],
                message: format!(
                    "public route {} matches, for {methods}, paths of {} ({}, methods {}), e.g. {}",
                    label(route),
                    label(other),
                    describe_access(other),
                    other.methods_label(),
                    example_path(route, other, fresh),
                ),
            });
        } else {
            out.push(Finding {
                severity: Severity::Note,
                kind: Kind::CatchAllOtherMethods,
                line: route.line,
                routes: vec![r, q],
                message: format!(
                    "catch-all {} ({}) takes, for {methods}, the paths of {} (methods {}), e.g. {}",
                    label(route),
                    describe_access(route),
                    label(other),
                    other.methods_label(),
                    example_path(route, other, fresh),
                ),
            });
        }
    }
}

// ---------------------------------------------------------------- method gaps

/// Protected paths where a usual method matches no route and `default`
/// gives that method less than the path's routes ask.
fn method_gaps(table: &RouteTable, fresh: &str, out: &mut Vec<Finding>) {
    let default_strength = match table.default {
        DefaultPolicy::Deny => return,
        DefaultPolicy::Allow => 0,
        DefaultPolicy::Authenticate => 1,
    };
    let routes = table.routes();
    let mut seen: HashSet<String> = HashSet::new();
    for (i, r) in routes.iter().enumerate() {
        if !seen.insert(r.pattern.shape()) {
            continue;
        }
        let path = example_path(r, r, fresh);
        let mut missing: Vec<&str> = Vec::new();
        let mut strongest: Option<usize> = None;
        for m in &USUAL_METHODS {
            match winner(table, &Some(m.clone()), &path) {
                None => missing.push(m.as_str()),
                Some(w) => {
                    if strongest.is_none_or(|s| strength(&routes[w]) > strength(&routes[s])) {
                        strongest = Some(w);
                    }
                }
            }
        }
        let Some(s) = strongest else { continue };
        if missing.is_empty() || strength(&routes[s]) <= default_strength {
            continue;
        }
        let strong = &routes[s];
        out.push(Finding {
            severity: Severity::Warning,
            kind: Kind::MethodGap,
            line: r.line,
            routes: vec![i, s],
            message: format!(
                "{} {path} matches no route, so default = {:?} applies ({}), while {} asks {}",
                missing.join(", "),
                table.default.as_str(),
                match table.default {
                    DefaultPolicy::Allow => "forwarded without a check",
                    _ => "any authenticated caller",
                },
                label(strong),
                describe_access(strong),
            ),
        });
    }
}

#[cfg(test)]
mod tests;
