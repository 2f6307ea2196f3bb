//! The bypass corpus (`tests/data/bypass-corpus.txt`): one hostile request
//! target per line, `<0xHH>` and `<*N:TEXT>` expanded; and the one-pass
//! percent-decoding a backend may apply to a forwarded path. Used by the
//! bypass test and by the soak (`examples/soak`), which includes this file.

/// The corpus text.
pub const CORPUS: &str = include_str!("../data/bypass-corpus.txt");

/// One corpus vector.
pub struct Vector {
    /// Line in the corpus file.
    pub line: usize,
    /// The line as written.
    pub text: String,
    /// The request target, expanded.
    pub bytes: Vec<u8>,
}

/// Parses the corpus: one target per line, `<0xHH>` and `<*N:TEXT>` expanded.
pub fn corpus() -> Vec<Vector> {
    CORPUS
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| Vector {
            line: i + 1,
            text: l.to_string(),
            bytes: expand(l).unwrap_or_else(|e| panic!("corpus line {}: {e}: {l}", i + 1)),
        })
        .collect()
}

/// Expands `<0xHH>` (one raw byte) and `<*N:TEXT>` (TEXT N times).
pub fn expand(line: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('<') {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let tail = &rest[start..];
        if let Some(hex) = tail.strip_prefix("<0x").and_then(|t| t.get(..3)) {
            if let (Some(h), true) = (hex.get(..2), hex.ends_with('>')) {
                let b = u8::from_str_radix(h, 16).map_err(|e| format!("bad <0x{h}>: {e}"))?;
                out.push(b);
                rest = &tail[6..];
                continue;
            }
        }
        if let Some(spec) = tail.strip_prefix("<*") {
            let end = spec.find('>').ok_or("unterminated <*N:TEXT>")?;
            let (n, text) = spec[..end].split_once(':').ok_or("<*N:TEXT> needs ':'")?;
            let n: usize = n.parse().map_err(|e| format!("bad repeat count: {e}"))?;
            out.extend_from_slice(text.repeat(n).as_bytes());
            rest = &spec[end + 1..];
            continue;
        }
        out.push(b'<');
        rest = &tail[1..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

/// Percent-decodes once. `None` for a `%` not followed by two hex digits.
pub fn decode_once(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}
