//! Canonical request paths (README, "Path normalization").
//!
//! [`normalize`] turns the path of a request target into the one path that is
//! matched, checked and forwarded, or rejects it. The output is ASCII only:
//!
//! * percent-encoded unreserved characters (`%41`, `%7E`, `%2E`) are decoded;
//!   every other escape is kept, with upper-case hex, and never decoded twice
//!   (`%252F` stays `%252F`);
//! * bytes that may not appear raw in a path (`"`, `{`, `|`, non-ASCII UTF-8…)
//!   are percent-encoded;
//! * `merge_slashes`, `trailing_slash = "ignore"` and `case_insensitive` apply;
//! * anything a backend could read in two ways is rejected: encoded `/` or
//!   `\`, raw `\`, `.`/`..` segments (also encoded), `;` unless allowed, NUL and
//!   control bytes (raw or encoded), invalid escapes, escapes that decode to
//!   invalid UTF-8 (overlong forms such as `%C0%AE`), and Unicode look-alikes
//!   of `.`, `/` and `\` that some platforms fold into them (NFKC, Windows
//!   best-fit code pages).
//!
//! When the input is already canonical the result borrows it.

use std::borrow::Cow;
use std::fmt;

/// What `trailing_slash` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrailingSlash {
    /// `/a/` and `/a` are different paths.
    #[default]
    Strict,
    /// A trailing slash is removed: `/a/` is matched and forwarded as `/a`.
    Ignore,
}

/// The `[normalize]` settings of the routes file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// Collapse runs of `/` into one.
    pub merge_slashes: bool,
    /// Lower-case the path (for backends that ignore case).
    pub case_insensitive: bool,
    /// How a trailing slash is treated.
    pub trailing_slash: TrailingSlash,
    /// Accept `;` in the path (Java matrix parameters).
    pub allow_semicolon: bool,
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        Self {
            merge_slashes: true,
            case_insensitive: false,
            trailing_slash: TrailingSlash::Strict,
            allow_semicolon: false,
        }
    }
}

/// Why a path was rejected (answered with 400 before any grant lookup).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathRejection {
    /// The path does not start with `/` (e.g. `*` or an authority-form target).
    NotOriginForm,
    /// `%2F` or `%5C` in any case.
    EncodedSlash,
    /// A raw `\`.
    Backslash,
    /// A `.` or `..` segment, raw or percent-encoded.
    DotSegment,
    /// A `;` while `allow_semicolon` is false, or a segment made only of
    /// `;` parameters before the last one.
    Semicolon,
    /// `%3B`: backends disagree on whether it is data or a `;` delimiter.
    EncodedSemicolon,
    /// A NUL or other control byte, raw or percent-encoded.
    ControlByte,
    /// A `%` not followed by two hex digits.
    InvalidPercentEncoding,
    /// Percent-decoded bytes that are not UTF-8 (overlong or truncated forms).
    InvalidUtf8,
    /// A Unicode character that some platforms fold into `.`, `/` or `\`:
    /// its NFKC form contains one, or Windows best-fit conversion maps it
    /// to one.
    LookalikeSeparator,
}

impl PathRejection {
    /// A short message for the 400 answer and the log.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotOriginForm => "request target is not an absolute path",
            Self::EncodedSlash => "encoded slash or backslash in path",
            Self::Backslash => "backslash in path",
            Self::DotSegment => "dot segment in path",
            Self::Semicolon => "semicolon in path",
            Self::EncodedSemicolon => "encoded semicolon in path",
            Self::ControlByte => "control character in path",
            Self::InvalidPercentEncoding => "invalid percent-encoding in path",
            Self::InvalidUtf8 => "percent-encoding in path is not UTF-8",
            Self::LookalikeSeparator => "look-alike of '.', '/' or '\\' in path",
        }
    }
}

impl fmt::Display for PathRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for PathRejection {}

/// Normalizes a request path (without its query) per `opts`.
pub fn normalize<'a>(
    path: &'a str,
    opts: &NormalizeOptions,
) -> Result<Cow<'a, str>, PathRejection> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathRejection::NotOriginForm);
    }
    if is_already_canonical(bytes, opts) {
        return Ok(Cow::Borrowed(path));
    }
    normalize_full(path, opts)
}

/// The full pass of [`normalize`], without the fast path.
fn normalize_full<'a>(
    path: &'a str,
    opts: &NormalizeOptions,
) -> Result<Cow<'a, str>, PathRejection> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathRejection::NotOriginForm);
    }
    let mut out = Emitter::new(bytes);
    out.push(b'/');
    let mut body = &bytes[1..];
    if opts.trailing_slash == TrailingSlash::Ignore {
        while let Some(rest) = body.strip_suffix(b"/") {
            body = rest;
        }
    }
    let mut segments = body.split(|b| *b == b'/').peekable();
    let mut emitted_any = false;
    while let Some(seg) = segments.next() {
        let is_last = segments.peek().is_none();
        if seg.is_empty() && opts.merge_slashes && !is_last {
            continue;
        }
        if seg.first() == Some(&b';') && !is_last {
            // Only parameters: a backend that drops them reads `//` here.
            return Err(PathRejection::Semicolon);
        }
        if emitted_any {
            out.push(b'/');
        }
        canonical_segment_into(seg, opts, &mut out)?;
        emitted_any = true;
    }
    Ok(out.finish())
}

/// The path routes are matched on. With `allow_semicolon`, each segment is
/// cut at its first `;`: a backend that takes `;` path parameters (Java
/// servlet containers) routes on that path, so the gateway must too, while
/// the normalized path, parameters and all, is what is forwarded. Without
/// `allow_semicolon` a normalized path has no `;` and this is the path itself.
pub fn routing_path<'a>(normalized: &'a str, opts: &NormalizeOptions) -> Cow<'a, str> {
    if !opts.allow_semicolon || !normalized.contains(';') {
        return Cow::Borrowed(normalized);
    }
    let mut out = String::with_capacity(normalized.len());
    for (i, seg) in normalized.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(seg.split(';').next().unwrap_or(""));
    }
    if opts.trailing_slash == TrailingSlash::Ignore && out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    Cow::Owned(out)
}

/// Canonicalizes one static segment of a route pattern the way [`normalize`]
/// treats a request path, so patterns and requests compare equal.
pub fn canonical_segment(seg: &str, opts: &NormalizeOptions) -> Result<String, PathRejection> {
    let mut out = Emitter::new(seg.as_bytes());
    canonical_segment_into(seg.as_bytes(), opts, &mut out)?;
    Ok(out.finish().into_owned())
}

/// Bytes the full pass would copy unchanged in every profile: unreserved
/// characters, the sub-delims other than `;`, `:`, `@` and `/`.
const PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b'='
                    | b':'
                    | b'@'
                    | b'/'
            );
        b += 1;
    }
    t
};

/// The common case in one scan: a path of plain bytes with no empty, `.` or
/// `..` segment, no trailing slash to drop and no upper case to fold is its
/// own canonical form. Anything else takes the full pass (which also gives
/// the same answer for these paths; a property test checks that).
fn is_already_canonical(bytes: &[u8], opts: &NormalizeOptions) -> bool {
    let mut seg_start = 1;
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        if !PLAIN[usize::from(b)] || (opts.case_insensitive && b.is_ascii_uppercase()) {
            return false;
        }
        if b == b'/' {
            if !segment_is_plain(&bytes[seg_start..i], opts) {
                return false;
            }
            seg_start = i + 1;
        }
    }
    let last = &bytes[seg_start..];
    if last.is_empty() {
        // A trailing slash (or the root): kept unless `ignore` drops it.
        return bytes.len() == 1 || opts.trailing_slash == TrailingSlash::Strict;
    }
    segment_is_plain(last, opts)
}

fn segment_is_plain(seg: &[u8], opts: &NormalizeOptions) -> bool {
    match seg {
        b"." | b".." => false,
        b"" => !opts.merge_slashes,
        _ => true,
    }
}

/// Whether a byte may stand raw in a canonical path segment: RFC 3986
/// unreserved, sub-delims, `:` and `@`. `;` is handled separately.
fn is_raw_pchar(b: u8) -> bool {
    is_unreserved(b)
        || matches!(
            b,
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'=' | b':' | b'@'
        )
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7F
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Writes the canonical form of one segment (no `/` inside) to `out`.
fn canonical_segment_into(
    seg: &[u8],
    opts: &NormalizeOptions,
    out: &mut Emitter<'_>,
) -> Result<(), PathRejection> {
    let mut units = 0usize;
    let mut dots = 0usize;
    // `units` and `dots` before the first `;`: a Java backend drops `;` path
    // parameters before it resolves dot segments, so it reads `..;x`
    // (allowed with `allow_semicolon`) as `..`.
    let mut before_params: Option<(usize, usize)> = None;
    let mut non_ascii = false;
    let mut i = 0;
    while i < seg.len() {
        let raw = seg[i];
        let (value, escaped) = if raw == b'%' {
            let hi = seg.get(i + 1).copied().and_then(hex_value);
            let lo = seg.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(h), Some(l)) => {
                    i += 3;
                    ((h << 4) | l, true)
                }
                _ => return Err(PathRejection::InvalidPercentEncoding),
            }
        } else {
            i += 1;
            (raw, false)
        };
        if value == b';' && before_params.is_none() {
            before_params = Some((units, dots));
        }
        units += 1;
        if value == b'.' {
            dots += 1;
        }
        match value {
            b'/' if escaped => return Err(PathRejection::EncodedSlash),
            b'\\' if escaped => return Err(PathRejection::EncodedSlash),
            b'\\' => return Err(PathRejection::Backslash),
            b if is_control(b) => return Err(PathRejection::ControlByte),
            b';' if escaped => return Err(PathRejection::EncodedSemicolon),
            b';' if !opts.allow_semicolon => return Err(PathRejection::Semicolon),
            b if b >= 0x80 => {
                non_ascii = true;
                out.push_escape(b);
            }
            b if is_unreserved(b) || (!escaped && (is_raw_pchar(b) || b == b';')) => {
                out.push(if opts.case_insensitive {
                    b.to_ascii_lowercase()
                } else {
                    b
                });
            }
            b => out.push_escape(b),
        }
    }
    if units > 0 && units <= 2 && units == dots {
        return Err(PathRejection::DotSegment);
    }
    if let Some((units, dots)) = before_params {
        if units > 0 && units <= 2 && units == dots {
            return Err(PathRejection::DotSegment);
        }
    }
    if non_ascii {
        check_non_ascii(seg)?;
    }
    Ok(())
}

/// Decodes a segment that carries non-ASCII bytes and rejects invalid UTF-8
/// and look-alikes of `.`, `/` and `\`.
fn check_non_ascii(seg: &[u8]) -> Result<(), PathRejection> {
    let decoded: Vec<u8> = percent_encoding::percent_decode(seg).collect();
    let text = std::str::from_utf8(&decoded).map_err(|_| PathRejection::InvalidUtf8)?;
    if text.chars().any(is_lookalike_separator) {
        return Err(PathRejection::LookalikeSeparator);
    }
    Ok(())
}

/// Look-alikes that NFKC leaves alone but Windows best-fit conversion
/// (`WideCharToMultiByte` to an ANSI code page) maps to `/` or `\`.
const BEST_FIT_SEPARATORS: [char; 3] = [
    '\u{2044}', // FRACTION SLASH
    '\u{2215}', // DIVISION SLASH
    '\u{2216}', // SET MINUS
];

/// Whether non-ASCII `c` folds into `.`, `/` or `\`. Its compatibility
/// decomposition is checked: NFKC composes that decomposition again, and no
/// composition yields these ASCII characters, so the answer is the same as
/// for the NFKC form.
fn is_lookalike_separator(c: char) -> bool {
    if c.is_ascii() {
        return false;
    }
    if BEST_FIT_SEPARATORS.contains(&c) {
        return true;
    }
    let mut folds = false;
    unicode_normalization::char::decompose_compatible(c, |d| {
        folds |= matches!(d, '.' | '/' | '\\');
    });
    folds
}

/// Builds the output, copying only once it first differs from the input.
struct Emitter<'a> {
    src: &'a [u8],
    /// Length of the output while it is still a prefix of `src`.
    same: usize,
    out: Option<Vec<u8>>,
}

impl<'a> Emitter<'a> {
    fn new(src: &'a [u8]) -> Self {
        Self {
            src,
            same: 0,
            out: None,
        }
    }

    #[inline]
    fn push(&mut self, b: u8) {
        match &mut self.out {
            Some(out) => out.push(b),
            None if self.src.get(self.same) == Some(&b) => self.same += 1,
            None => {
                let mut out = Vec::with_capacity(self.src.len() + 8);
                out.extend_from_slice(&self.src[..self.same]);
                out.push(b);
                self.out = Some(out);
            }
        }
    }

    fn push_escape(&mut self, b: u8) {
        self.push(b'%');
        self.push(HEX_UPPER[usize::from(b >> 4)]);
        self.push(HEX_UPPER[usize::from(b & 0x0F)]);
    }

    /// The output; it is ASCII by construction.
    fn finish(self) -> Cow<'a, str> {
        let bytes: Cow<'a, [u8]> = match self.out {
            Some(out) => Cow::Owned(out),
            None => Cow::Borrowed(&self.src[..self.same]),
        };
        match bytes {
            Cow::Borrowed(b) => Cow::Borrowed(std::str::from_utf8(b).unwrap_or_default()),
            Cow::Owned(v) => Cow::Owned(String::from_utf8(v).unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests;
