//! One route per operation, in a stable order, with same-shape conflicts
//! resolved without widening access: operations whose paths match the same
//! requests share one route that needs what each of them needs, or, when
//! one route cannot say that, are all left out.

use std::collections::BTreeMap;

use super::document::{METHODS, Operation};
use super::paths::PathParams;
use super::source::Needs;
use super::writer::LeftOut;

/// A route to write.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The route's name: the operation's label.
    pub name: String,
    /// Upper-case method.
    pub method: String,
    /// The path as the document writes it.
    pub source_path: String,
    /// The permgate pattern and its parameters.
    pub params: PathParams,
    /// What the route requires.
    pub needs: Needs,
    /// Comment lines above the route.
    pub notes: Vec<String>,
}

impl Entry {
    /// An entry for `op`, with the warnings its permissions gave.
    pub fn new(
        op: &Operation<'_>,
        name: String,
        params: PathParams,
        needs: Needs,
        warnings: Vec<String>,
    ) -> Entry {
        let mut notes: Vec<String> = warnings
            .into_iter()
            .chain(params.notes.iter().cloned())
            .map(|w| format!("warning: {w}"))
            .collect();
        if needs.is_empty() {
            notes.push("no permission in the description: any authenticated caller".into());
        }
        Entry {
            name,
            method: op.method.clone(),
            source_path: op.path.clone(),
            params,
            needs,
            notes,
        }
    }

    fn sort_key(&self) -> (String, usize, String) {
        let method = METHODS
            .iter()
            .position(|m| m.eq_ignore_ascii_case(&self.method))
            .unwrap_or(METHODS.len());
        (self.params.pattern.clone(), method, self.name.clone())
    }
}

/// The routes to write, and what became of conflicting operations.
#[derive(Debug, Default)]
pub struct Plan {
    /// Routes in output order.
    pub entries: Vec<Entry>,
    /// One line per conflict.
    pub conflicts: Vec<String>,
    /// Operations left out because of a conflict.
    pub left_out: Vec<LeftOut>,
}

/// Sorts the entries and resolves conflicts.
pub fn plan(mut entries: Vec<Entry>) -> Plan {
    entries.sort_by_cached_key(Entry::sort_key);
    let mut groups: BTreeMap<(String, String), Vec<Entry>> = BTreeMap::new();
    let mut order = Vec::new();
    for e in entries {
        let key = (e.method.clone(), e.params.shape.clone());
        let group = groups.entry(key.clone()).or_default();
        if group.is_empty() {
            order.push(key);
        }
        group.push(e);
    }
    let mut out = Plan::default();
    for key in order {
        let mut group = groups.remove(&key).unwrap_or_default();
        if group.len() == 1 {
            out.entries.extend(group);
            continue;
        }
        let mut kept = group.remove(0);
        let mut merged = Some(kept.needs.clone());
        for other in &group {
            let renamed = rename(&other.needs, &other.params.names, &kept.params.names);
            merged = merged.and_then(|m| merge(&m, &renamed));
        }
        let others: Vec<String> = group
            .iter()
            .map(|o| format!("{} ({} {})", o.name, o.method, o.source_path))
            .collect();
        let both = format!(
            "{} ({} {}) and {}",
            kept.name,
            kept.method,
            kept.source_path,
            others.join(" and ")
        );
        match merged {
            Some(needs) => {
                let how = if needs == kept.needs
                    && group
                        .iter()
                        .all(|o| rename(&o.needs, &o.params.names, &kept.params.names) == needs)
                {
                    "the same permissions; one route for both"
                } else {
                    "one route that needs the permissions of each"
                };
                out.conflicts
                    .push(format!("{both} match the same requests: {how}"));
                kept.notes
                    .push(format!("conflict: also {}; {how}", others.join(", ")));
                if !needs.is_empty() {
                    kept.notes
                        .retain(|n| !n.starts_with("no permission in the description"));
                }
                kept.needs = needs;
                out.entries.push(kept);
            }
            None => {
                out.conflicts.push(format!(
                    "{both} match the same requests with alternatives one route cannot combine: all left out"
                ));
                for e in std::iter::once(&kept).chain(&group) {
                    out.left_out.push(LeftOut {
                        label: e.name.clone(),
                        method: e.method.clone(),
                        path: e.source_path.clone(),
                        why: "conflicts with another operation on the same paths".into(),
                    });
                }
            }
        }
    }
    out
}

/// `needs` with path parameters renamed by position from `from` to `to`.
fn rename(needs: &Needs, from: &[String], to: &[String]) -> Needs {
    let one = |p: &String| -> String {
        p.split(':')
            .map(|part| {
                part.strip_prefix('{')
                    .and_then(|x| x.strip_suffix('}'))
                    .and_then(|name| from.iter().position(|f| f == name))
                    .and_then(|i| to.get(i))
                    .map_or_else(|| part.to_string(), |n| format!("{{{n}}}"))
            })
            .collect::<Vec<_>>()
            .join(":")
    };
    Needs {
        all: needs.all.iter().map(one).collect(),
        any: needs.any.iter().map(one).collect(),
    }
}

/// Needs that hold only when both `a` and `b` hold, if one route can say so.
fn merge(a: &Needs, b: &Needs) -> Option<Needs> {
    let mut all = a.all.clone();
    for p in &b.all {
        if !all.contains(p) {
            all.push(p.clone());
        }
    }
    let same_any = {
        let (mut x, mut y) = (a.any.clone(), b.any.clone());
        x.sort();
        y.sort();
        x == y
    };
    let any = match (a.any.is_empty(), b.any.is_empty()) {
        (_, true) => a.any.clone(),
        (true, false) => b.any.clone(),
        (false, false) if same_any => a.any.clone(),
        (false, false) => return None,
    };
    Some(Needs { all, any })
}
