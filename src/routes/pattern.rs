//! Route path patterns: `/api/v2/credentials/{credentialId}`, `/files/{*rest}`.

use crate::path::{NormalizeOptions, TrailingSlash, canonical_segment};

/// Most path parameters one pattern may have.
pub const MAX_PARAMS: usize = 16;

/// One segment of a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Literal text, in canonical form (see [`crate::path`]).
    Static(String),
    /// `{name}`: one non-empty segment.
    Param(String),
    /// `{*name}`: the non-empty rest of the path; last segment only.
    CatchAll(String),
}

/// Priority of a segment kind when several routes match: lower wins.
fn rank(seg: &Segment) -> u8 {
    match seg {
        Segment::Static(_) => 0,
        Segment::Param(_) => 1,
        Segment::CatchAll(_) => 2,
    }
}

/// A parsed path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    /// The segments after the leading `/`; empty for `/`.
    pub segments: Vec<Segment>,
    /// Whether the pattern ends with `/` (and is not `/` itself).
    pub trailing_slash: bool,
}

impl PathPattern {
    /// Parses a pattern; static segments are canonicalized with `opts` so they
    /// compare equal to normalized request paths.
    pub fn parse(text: &str, opts: &NormalizeOptions) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err("a path pattern must start with '/'".into());
        };
        let mut segments = Vec::new();
        let mut trailing_slash = false;
        if !rest.is_empty() {
            let pieces: Vec<&str> = rest.split('/').collect();
            let last = pieces.len() - 1;
            for (i, piece) in pieces.iter().enumerate() {
                if piece.is_empty() {
                    if i == last {
                        trailing_slash = opts.trailing_slash == TrailingSlash::Strict;
                        continue;
                    }
                    return Err("empty segment ('//') in path pattern".into());
                }
                if matches!(segments.last(), Some(Segment::CatchAll(_))) {
                    return Err("a catch-all {*name} must be the last segment".into());
                }
                segments.push(parse_segment(piece, opts)?);
            }
        }
        if trailing_slash && matches!(segments.last(), Some(Segment::CatchAll(_))) {
            return Err("a catch-all {*name} must be the last segment".into());
        }
        let names = params_of(&segments);
        if names.len() > MAX_PARAMS {
            return Err(format!("at most {MAX_PARAMS} parameters per path"));
        }
        for (i, name) in names.iter().enumerate() {
            if names[..i].contains(name) {
                return Err(format!("parameter {{{name}}} appears twice"));
            }
        }
        Ok(Self {
            segments,
            trailing_slash,
        })
    }

    /// Parameter names in path order.
    pub fn param_names(&self) -> Vec<&str> {
        params_of(&self.segments)
    }

    /// The pattern with parameter names erased: two patterns with the same
    /// shape match exactly the same paths.
    pub fn shape(&self) -> String {
        self.render(|_, seg| match seg {
            Segment::Param(_) => "{}".into(),
            _ => "{*}".into(),
        })
    }

    /// The pattern in matchit syntax with positional parameter names
    /// (`{p0}`, `{*p1}`), so routes may name parameters differently.
    pub fn matchit_pattern(&self) -> String {
        self.render(|i, seg| match seg {
            Segment::Param(_) => format!("{{p{i}}}"),
            _ => format!("{{*p{i}}}"),
        })
    }

    /// Segment priorities, compared lexicographically between matches.
    pub fn ranks(&self) -> Box<[u8]> {
        self.segments.iter().map(rank).collect()
    }

    fn render(&self, param: impl Fn(usize, &Segment) -> String) -> String {
        let mut out = String::from("/");
        let mut index = 0;
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            match seg {
                Segment::Static(s) => out.push_str(s),
                other => {
                    out.push_str(&param(index, other));
                    index += 1;
                }
            }
        }
        if self.trailing_slash {
            out.push('/');
        }
        out
    }
}

fn params_of(segments: &[Segment]) -> Vec<&str> {
    segments
        .iter()
        .filter_map(|s| match s {
            Segment::Param(n) | Segment::CatchAll(n) => Some(n.as_str()),
            Segment::Static(_) => None,
        })
        .collect()
}

fn parse_segment(piece: &str, opts: &NormalizeOptions) -> Result<Segment, String> {
    if let Some(inner) = piece.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        let (catch_all, name) = match inner.strip_prefix('*') {
            Some(name) => (true, name),
            None => (false, inner),
        };
        let valid = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!(
                "invalid parameter name {name:?}: use letters, digits and '_', starting with a letter"
            ));
        }
        return Ok(if catch_all {
            Segment::CatchAll(name.to_string())
        } else {
            Segment::Param(name.to_string())
        });
    }
    if piece.contains(['{', '}']) {
        return Err(format!(
            "segment {piece:?}: a parameter must fill a whole segment, as in /items/{{id}}"
        ));
    }
    canonical_segment(piece, opts)
        .map(Segment::Static)
        .map_err(|e| format!("segment {piece:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PathPattern, String> {
        PathPattern::parse(s, &NormalizeOptions::default())
    }

    #[test]
    fn parses_params_and_catch_all() {
        let p = parse("/api/{id}/files/{*rest}").unwrap();
        assert_eq!(p.param_names(), ["id", "rest"]);
        assert_eq!(p.shape(), "/api/{}/files/{*}");
        assert_eq!(p.matchit_pattern(), "/api/{p0}/files/{*p1}");
        assert_eq!(&*p.ranks(), &[0, 1, 0, 2]);
    }

    #[test]
    fn root_and_trailing_slash() {
        assert_eq!(parse("/").unwrap().matchit_pattern(), "/");
        assert_eq!(parse("/a/").unwrap().matchit_pattern(), "/a/");
        let ignore = NormalizeOptions {
            trailing_slash: TrailingSlash::Ignore,
            ..Default::default()
        };
        assert_eq!(
            PathPattern::parse("/a/", &ignore)
                .unwrap()
                .matchit_pattern(),
            "/a"
        );
    }

    #[test]
    fn static_segments_are_canonical() {
        assert_eq!(parse("/api/%76%32").unwrap().shape(), "/api/v2");
        let ci = NormalizeOptions {
            case_insensitive: true,
            ..Default::default()
        };
        assert_eq!(
            PathPattern::parse("/API/{Id}", &ci).unwrap().shape(),
            "/api/{}"
        );
    }

    #[test]
    fn rejects_bad_patterns() {
        for (p, why) in [
            ("api", "must start with '/'"),
            ("/a//b", "empty segment"),
            ("/a/{*rest}/b", "must be the last"),
            ("/a/{*rest}/", "must be the last"),
            ("/a/x{id}", "whole segment"),
            ("/a/{id", "whole segment"),
            ("/a/{}", "invalid parameter name"),
            ("/a/{1x}", "invalid parameter name"),
            ("/a/{id}/{id}", "appears twice"),
            ("/a/../b", "dot segment"),
            ("/a;b", "semicolon"),
        ] {
            let err = parse(p).unwrap_err();
            assert!(err.contains(why), "{p}: {err}");
        }
    }
}
