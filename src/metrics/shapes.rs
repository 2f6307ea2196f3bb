//! The shapes of requests no route matched, for coverage and `suggest`:
//! the method and the normalized path with identifier-like segments
//! replaced by `{id}`, a count and one example path (never a query).

use std::collections::{HashMap, HashSet};

use http::Method;

/// Shapes kept at most (per worker, and in the merged view).
pub const MAX_SHAPES: usize = 1000;

/// Distinct values of one segment under one parent (same method, same
/// segments before and after it) from which that segment counts as an
/// identifier: `/users/alice`, `/users/bob`, … become `/users/{id}`.
const VARYING: usize = 4;

/// Longest example path kept.
const MAX_EXAMPLE: usize = 256;

/// The placeholder of an identifier-like segment.
pub const ID: &str = "{id}";

/// One unmatched shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// The request method.
    pub method: Method,
    /// The path with identifiers replaced by `{id}`.
    pub shape: String,
    /// Requests seen with this shape.
    pub count: u64,
    /// One normalized path of this shape.
    pub example: String,
}

/// A bounded table of unmatched shapes.
#[derive(Debug, Default)]
pub struct Shapes {
    table: HashMap<(Method, String), (u64, String)>,
    /// Requests whose shape found no room.
    pub dropped: u64,
}

impl Shapes {
    /// Counts one request that matched no route.
    pub fn record(&mut self, method: &Method, path: &str) {
        let shape = shape_of(path);
        self.add(method.clone(), shape, 1, || example_of(path));
    }

    fn add(&mut self, method: Method, shape: String, n: u64, example: impl FnOnce() -> String) {
        let key = (method, shape);
        if let Some((count, _)) = self.table.get_mut(&key) {
            *count += n;
            return;
        }
        if self.table.len() >= MAX_SHAPES {
            self.collapse();
            if let Some((count, _)) = self.table.get_mut(&key) {
                *count += n;
                return;
            }
            if self.table.len() >= MAX_SHAPES {
                self.dropped += n;
                return;
            }
        }
        self.table.insert(key, (n, example()));
    }

    /// Adds every shape of `other` into this table.
    pub fn merge(&mut self, other: &Shapes) {
        for ((method, shape), (count, example)) in &other.table {
            self.add(method.clone(), shape.clone(), *count, || example.clone());
        }
        self.dropped += other.dropped;
    }

    /// The shapes, segments that vary under one parent collapsed, most
    /// frequent first.
    pub fn rows(mut self) -> Vec<Shape> {
        self.collapse();
        let mut rows: Vec<Shape> = self
            .table
            .into_iter()
            .map(|((method, shape), (count, example))| Shape {
                method,
                shape,
                count,
                example,
            })
            .collect();
        rows.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.shape.cmp(&b.shape))
                .then_with(|| a.method.as_str().cmp(b.method.as_str()))
        });
        rows
    }

    /// Replaces by `{id}` every segment that takes [`VARYING`] or more
    /// values under one parent, merging the shapes that then coincide.
    fn collapse(&mut self) {
        let depth = self
            .table
            .keys()
            .map(|(_, s)| s.split('/').count())
            .max()
            .unwrap_or(0);
        for i in 1..depth {
            let mut values: HashMap<(Method, String, String), HashSet<String>> = HashMap::new();
            for (method, shape) in self.table.keys() {
                if let Some((parent, seg, rest)) = split_at_segment(shape, i) {
                    if seg != ID {
                        values
                            .entry((method.clone(), parent.to_string(), rest.to_string()))
                            .or_default()
                            .insert(seg.to_string());
                    }
                }
            }
            let varying: HashSet<(Method, String, String)> = values
                .into_iter()
                .filter(|(_, v)| v.len() >= VARYING)
                .map(|(k, _)| k)
                .collect();
            if varying.is_empty() {
                continue;
            }
            let old = std::mem::take(&mut self.table);
            for ((method, shape), (count, example)) in old {
                let shape = match split_at_segment(&shape, i) {
                    Some((parent, _, rest))
                        if varying.contains(&(method.clone(), parent.into(), rest.into())) =>
                    {
                        format!("{parent}/{ID}{rest}")
                    }
                    _ => shape,
                };
                let entry = self.table.entry((method, shape)).or_insert((0, example));
                entry.0 += count;
            }
        }
    }
}

/// `shape` cut around its `i`-th segment (1-based after the leading `/`):
/// the part before (without the trailing `/`), the segment, and the rest
/// (with its leading `/`).
fn split_at_segment(shape: &str, i: usize) -> Option<(&str, &str, &str)> {
    let mut start = 0;
    for _ in 0..i {
        start += shape[start..].find('/')? + 1;
    }
    let end = shape[start..].find('/').map_or(shape.len(), |e| start + e);
    Some((&shape[..start - 1], &shape[start..end], &shape[end..]))
}

/// The path with identifier-like segments replaced by `{id}`.
pub fn shape_of(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_identifier(seg) { ID } else { seg });
    }
    out
}

fn example_of(path: &str) -> String {
    let mut end = path.len().min(MAX_EXAMPLE);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path[..end].to_string()
}

/// Digits, a UUID, or 16 or more hex digits.
fn is_identifier(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    if b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_become_placeholders() {
        assert_eq!(
            shape_of("/api/v2/users/42/roles/97f652b5-eb50-4989-9d99-9ed9d6cd5fed"),
            "/api/v2/users/{id}/roles/{id}"
        );
        assert_eq!(shape_of("/objects/0123456789abcdefAB"), "/objects/{id}");
        assert_eq!(
            shape_of("/objects/cafe"),
            "/objects/cafe",
            "short hex is a word"
        );
        assert_eq!(shape_of("/v2/items"), "/v2/items");
        assert_eq!(shape_of("/"), "/");
    }

    #[test]
    fn counts_and_one_example_per_shape() {
        let mut s = Shapes::default();
        s.record(&Method::GET, "/users/1/x");
        s.record(&Method::GET, "/users/2/x");
        s.record(&Method::POST, "/users/3/x");
        let rows = s.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].shape, "/users/{id}/x");
        assert_eq!((rows[0].method.as_str(), rows[0].count), ("GET", 2));
        assert_eq!(rows[0].example, "/users/1/x");
    }

    #[test]
    fn a_segment_that_varies_under_one_parent_is_an_identifier() {
        let mut s = Shapes::default();
        for name in ["alice", "bob", "carol"] {
            s.record(&Method::GET, &format!("/users/{name}/profile"));
        }
        s.record(&Method::GET, "/teams/red/profile");
        assert_eq!(s.rows().len(), 4, "three values are not yet a pattern");
        let mut s = Shapes::default();
        for name in ["alice", "bob", "carol", "dave"] {
            s.record(&Method::GET, &format!("/users/{name}/profile"));
        }
        s.record(&Method::GET, "/teams/red/profile");
        let rows = s.rows();
        assert_eq!(rows[0].shape, "/users/{id}/profile");
        assert_eq!(rows[0].count, 4);
        assert_eq!(rows[1].shape, "/teams/red/profile");
    }

    #[test]
    fn the_table_is_bounded() {
        let mut s = Shapes::default();
        for i in 0..MAX_SHAPES + 10 {
            // No segment varies under a shared parent and rest: nothing
            // collapses.
            s.record(&Method::GET, &format!("/p{i}/w{i}"));
        }
        assert_eq!(s.dropped, 10);
        assert_eq!(s.rows().len(), MAX_SHAPES);
        let mut s = Shapes::default();
        for i in 0..MAX_SHAPES + 10 {
            s.record(&Method::GET, &format!("/users/u{i}x"));
        }
        assert_eq!(
            s.dropped, 0,
            "a full table collapses varying segments first"
        );
        assert_eq!(s.rows()[0].count, (MAX_SHAPES + 10) as u64);
    }
}
