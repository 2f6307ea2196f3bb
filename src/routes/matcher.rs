//! Path matching with the route table's priorities (README, "Configuration")
//! on top of matchit.
//!
//! Matching goes segment by segment: static before `{param}` before
//! `{*rest}`, backtracking when the preferred branch fails. matchit does this
//! within one router but refuses some combinations the route table allows (a
//! `{param}` and a `{*rest}` at the same position). So each method's routes
//! are spread over as few matchit routers ("layers") as will take them, every
//! layer is asked, and the match with the lexicographically smallest segment
//! ranks wins — which is exactly the route a left-to-right, backtracking
//! search would find.

use super::pattern::{MAX_PARAMS, PathPattern};

/// Path parameter values of a match, in path order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params<'p> {
    values: [&'p str; MAX_PARAMS],
    len: usize,
}

impl<'p> Params<'p> {
    /// The values in path order.
    pub fn as_slice(&self) -> &[&'p str] {
        &self.values[..self.len]
    }

    fn from_match(params: &matchit::Params<'_, 'p>) -> Self {
        let mut out = Self::default();
        for (key, value) in params.iter() {
            // Keys are the positional names `p0`, `p1`, … of `matchit_pattern`.
            if let Some(i) = key.get(1..).and_then(|n| n.parse::<usize>().ok()) {
                if i < MAX_PARAMS {
                    out.values[i] = value;
                    out.len = out.len.max(i + 1);
                }
            }
        }
        out
    }
}

/// The routes of one method (or of any method), spread over matchit layers.
#[derive(Default)]
pub struct MethodMatcher {
    layers: Vec<matchit::Router<usize>>,
}

impl MethodMatcher {
    /// Adds route `index`. The caller has already refused a second route of
    /// the same shape, so a matchit conflict only means "another layer".
    pub fn insert(&mut self, pattern: &PathPattern, index: usize) -> Result<(), String> {
        let text = pattern.matchit_pattern();
        for layer in &mut self.layers {
            match layer.insert(text.clone(), index) {
                Ok(()) => return Ok(()),
                Err(matchit::InsertError::Conflict { .. }) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        let mut layer = matchit::Router::new();
        layer.insert(text, index).map_err(|e| e.to_string())?;
        self.layers.push(layer);
        Ok(())
    }

    /// The best route for `path`, with `ranks[i]` the segment ranks of route `i`.
    pub fn find<'p>(&self, path: &'p str, ranks: &[Box<[u8]>]) -> Option<(usize, Params<'p>)> {
        let mut best: Option<(usize, Params<'p>)> = None;
        for layer in &self.layers {
            let Ok(m) = layer.at(path) else { continue };
            let index = *m.value;
            let better = match &best {
                None => true,
                Some((current, _)) => ranks[index] < ranks[*current],
            };
            if better {
                best = Some((index, Params::from_match(&m.params)));
            }
        }
        best
    }

    /// Number of matchit routers in use.
    pub fn layer_count(&self) -> usize {
        self.layers.len()
    }
}
