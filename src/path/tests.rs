use super::*;
use proptest::prelude::*;

fn norm(p: &str) -> Result<String, PathRejection> {
    normalize(p, &NormalizeOptions::default()).map(Cow::into_owned)
}

fn norm_with(p: &str, f: impl FnOnce(&mut NormalizeOptions)) -> Result<String, PathRejection> {
    let mut o = NormalizeOptions::default();
    f(&mut o);
    normalize(p, &o).map(Cow::into_owned)
}

#[test]
fn canonical_paths_are_borrowed_unchanged() {
    for p in [
        "/",
        "/api/v2/integrations/credentials/42",
        "/a-b_c.d~e/x:y@z/!$&'()*+,=",
    ] {
        let got = normalize(p, &NormalizeOptions::default()).unwrap();
        assert!(matches!(got, Cow::Borrowed(_)), "{p} should not be copied");
        assert_eq!(got, p);
    }
}

#[test]
fn unreserved_escapes_are_decoded() {
    assert_eq!(norm("/api/%76%32/x").unwrap(), "/api/v2/x");
    assert_eq!(norm("/%41%7e%2D%5f").unwrap(), "/A~-_");
    assert_eq!(norm("/a%2Eb").unwrap(), "/a.b");
}

#[test]
fn other_escapes_are_kept_with_upper_case_hex() {
    assert_eq!(norm("/a%20b").unwrap(), "/a%20b");
    assert_eq!(norm("/a%3ab").unwrap(), "/a%3Ab");
    assert_eq!(norm("/caf%c3%a9").unwrap(), "/caf%C3%A9");
    assert_eq!(norm("/a%3Fb%23c").unwrap(), "/a%3Fb%23c");
}

#[test]
fn double_encoding_is_not_decoded_twice() {
    assert_eq!(norm("/a%252Fb").unwrap(), "/a%252Fb");
    assert_eq!(norm("/%252e%252e/admin").unwrap(), "/%252e%252e/admin");
}

#[test]
fn raw_bytes_outside_pchar_are_encoded() {
    assert_eq!(norm("/a\"b").unwrap(), "/a%22b");
    assert_eq!(norm("/{x}").unwrap(), "/%7Bx%7D");
    assert_eq!(norm("/a|b^c").unwrap(), "/a%7Cb%5Ec");
    assert_eq!(norm("/[x]").unwrap(), "/%5Bx%5D");
    assert_eq!(norm("/café").unwrap(), "/caf%C3%A9");
}

#[test]
fn encoded_slashes_and_backslashes_are_rejected() {
    for p in ["/a%2Fb", "/a%2fb", "/a%5Cb", "/a%5cb", "/%2F", "/a/%2f/b"] {
        assert_eq!(norm(p), Err(PathRejection::EncodedSlash), "{p}");
    }
    assert_eq!(norm("/a\\b"), Err(PathRejection::Backslash));
}

#[test]
fn dot_segments_are_rejected_raw_and_encoded() {
    for p in [
        "/.",
        "/..",
        "/a/./b",
        "/a/../b",
        "/a/..",
        "/%2e",
        "/%2E%2e",
        "/.%2e/x",
        "/a/%2e%2E/",
        "/a/.%2E",
    ] {
        assert_eq!(norm(p), Err(PathRejection::DotSegment), "{p}");
    }
    assert_eq!(norm("/.../a").unwrap(), "/.../a");
    assert_eq!(norm("/.well-known/x").unwrap(), "/.well-known/x");
    assert_eq!(norm("/a..b").unwrap(), "/a..b");
}

#[test]
fn semicolons_need_allow_semicolon() {
    assert_eq!(norm("/a;jsessionid=1/b"), Err(PathRejection::Semicolon));
    assert_eq!(
        norm_with("/a;v=1/b", |o| o.allow_semicolon = true).unwrap(),
        "/a;v=1/b"
    );
    for p in ["/a%3Bb", "/a%3bb", "/export%3Bx", "/a/..%3B/b"] {
        assert_eq!(
            norm(p),
            Err(PathRejection::EncodedSemicolon),
            "{p}: data to some backends, a delimiter to others"
        );
        assert_eq!(
            norm_with(p, |o| o.allow_semicolon = true),
            Err(PathRejection::EncodedSemicolon),
            "{p}"
        );
    }
    // A Java backend strips `;` parameters before resolving dot segments:
    // `..;x` is `..` to it (the Tomcat `..;/` traversal).
    for p in [
        "/a/..;/b",
        "/a/..;x=1/b",
        "/a/.;/b",
        "/a/%2e%2E;/b",
        "/a/..;",
    ] {
        assert_eq!(
            norm_with(p, |o| o.allow_semicolon = true),
            Err(PathRejection::DotSegment),
            "{p}"
        );
    }
    assert_eq!(
        norm_with("/a/x..;v=1/b", |o| o.allow_semicolon = true).unwrap(),
        "/a/x..;v=1/b"
    );
}

#[test]
fn matrix_parameters_are_matched_the_way_java_routes_them() {
    let semi = |o: &mut NormalizeOptions| o.allow_semicolon = true;
    let opts = NormalizeOptions {
        allow_semicolon: true,
        ..Default::default()
    };
    let n = norm_with("/creds/export;jsessionid=1/x;v=2", semi).unwrap();
    assert_eq!(
        n, "/creds/export;jsessionid=1/x;v=2",
        "forwarded with its parameters"
    );
    assert_eq!(
        routing_path(&n, &opts),
        "/creds/export/x",
        "matched without them"
    );
    let n = norm_with("/app/;jsessionid=1", semi).unwrap();
    assert_eq!(
        routing_path(&n, &opts),
        "/app/",
        "a last segment of parameters is a trailing slash"
    );
    let ignore = NormalizeOptions {
        trailing_slash: TrailingSlash::Ignore,
        ..opts
    };
    assert_eq!(routing_path(&n, &ignore), "/app");
    assert_eq!(
        norm_with("/a/;x/b", semi),
        Err(PathRejection::Semicolon),
        "a middle segment of parameters reads as //"
    );
    assert!(matches!(
        routing_path("/plain/path", &opts),
        Cow::Borrowed(_)
    ));
    assert!(matches!(
        routing_path("/a;b", &NormalizeOptions::default()),
        Cow::Borrowed(_)
    ));
}

#[test]
fn control_bytes_are_rejected_raw_and_encoded() {
    for p in [
        "/a%00b", "/a%0Ab", "/a%0d", "/a%7F", "/a%1f", "/a\u{1}b", "/a\u{7f}",
    ] {
        assert_eq!(norm(p), Err(PathRejection::ControlByte), "{p:?}");
    }
}

#[test]
fn invalid_percent_encoding_is_rejected() {
    for p in [
        "/a%",
        "/a%2",
        "/a%zz",
        "/a%2g",
        "/%u002e%u002e",
        "/a%%32%66",
    ] {
        assert_eq!(norm(p), Err(PathRejection::InvalidPercentEncoding), "{p}");
    }
}

#[test]
fn escapes_that_are_not_utf8_are_rejected() {
    for p in [
        "/%C0%AE%C0%AE/x",
        "/%C0%AF",
        "/%E0%80%AE",
        "/%C3",
        "/%FF",
        "/a%C3/b",
    ] {
        assert_eq!(norm(p), Err(PathRejection::InvalidUtf8), "{p}");
    }
}

#[test]
fn unicode_lookalikes_of_separators_are_rejected() {
    for p in [
        "/%EF%BC%8E%EF%BC%8E/x",
        "/a%EF%BC%8Fb",
        "/a%E2%88%95b",
        "/a\u{ff3c}b",
        "/\u{2025}",
    ] {
        assert_eq!(norm(p), Err(PathRejection::LookalikeSeparator), "{p}");
    }
}

#[test]
fn presentation_forms_the_hand_written_list_missed_are_rejected() {
    // What NFKC folds them into: U+FE30 "..", U+2026 and U+FE19 "...",
    // U+2488 "1.", U+2100 "a/c", U+33C2 "a.m.".
    for p in [
        "/%EF%B8%B0/x",
        "/a/%ef%b8%b0",
        "/a/\u{fe30}/b",
        "/%E2%80%A6",
        "/%EF%B8%99",
        "/%E2%92%88",
        "/%E2%84%80",
        "/%E3%8F%82",
    ] {
        assert_eq!(norm(p), Err(PathRejection::LookalikeSeparator), "{p}");
    }
}

/// Every non-ASCII scalar value whose NFKC form has a `.`, `/` or `\`, or
/// that Windows best-fit conversion maps to `/` or `\`.
fn folds_into_a_separator(c: char) -> bool {
    use unicode_normalization::UnicodeNormalization;
    const BEST_FIT: [char; 3] = ['\u{2044}', '\u{2215}', '\u{2216}'];
    BEST_FIT.contains(&c)
        || std::iter::once(c)
            .nfkc()
            .any(|d| matches!(d, '.' | '/' | '\\'))
}

#[test]
fn best_fit_lookalikes_are_the_ones_nfkc_leaves_alone() {
    use unicode_normalization::UnicodeNormalization;
    for c in ['\u{2044}', '\u{2215}', '\u{2216}'] {
        assert_eq!(c.to_string().nfkc().collect::<String>(), c.to_string());
        let p = format!("/a/{c}/b");
        assert_eq!(norm(&p), Err(PathRejection::LookalikeSeparator), "{p}");
    }
}

#[test]
fn every_non_ascii_code_point_is_rejected_exactly_when_it_folds_into_a_separator() {
    use std::fmt::Write;
    // All scalar values from U+0080, surrogates excluded. UTF-8 of a scalar
    // value is valid and has no ASCII byte, so no other rejection applies;
    // C1 controls (U+0085) and U+2028/U+2029 are not control bytes and are
    // kept, percent-encoded, like any other character.
    let opts = NormalizeOptions::default();
    let scalars = (0x80..0xD800_u32).chain(0xE000..=0x10FFFF);
    let (mut escaped, mut raw) = (String::new(), String::new());
    let mut wrong = Vec::new();
    let mut rejected = 0;
    for cp in scalars {
        let c = char::from_u32(cp).expect("a scalar value");
        escaped.clear();
        escaped.push_str("/a/");
        let mut utf8 = [0u8; 4];
        for b in c.encode_utf8(&mut utf8).bytes() {
            write!(escaped, "%{b:02X}").expect("writing to a String");
        }
        escaped.push_str("/b");
        raw.clear();
        raw.push_str("/a/");
        raw.push(c);
        raw.push_str("/b");
        let expected = if folds_into_a_separator(c) {
            rejected += 1;
            Err(PathRejection::LookalikeSeparator)
        } else {
            Ok(escaped.as_str())
        };
        let got = normalize(&escaped, &opts);
        // The raw character is read the same way (and forwarded escaped).
        let got_raw = normalize(&raw, &opts);
        if got.as_deref().map_err(|e| *e) != expected
            || got_raw.as_deref().map_err(|e| *e) != expected
        {
            wrong.push(format!("U+{cp:04X} {got:?} raw {got_raw:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} code points misjudged, first: {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(40)]
    );
    assert!(
        rejected > 30,
        "only {rejected} look-alikes: is NFKC in use?"
    );
}

#[test]
fn paths_that_are_not_origin_form_are_rejected() {
    assert_eq!(norm("*"), Err(PathRejection::NotOriginForm));
    assert_eq!(norm(""), Err(PathRejection::NotOriginForm));
    assert_eq!(norm("a/b"), Err(PathRejection::NotOriginForm));
}

#[test]
fn merge_slashes() {
    assert_eq!(norm("//a///b//").unwrap(), "/a/b/");
    assert_eq!(norm("//").unwrap(), "/");
    assert_eq!(
        norm_with("//a//b", |o| o.merge_slashes = false).unwrap(),
        "//a//b"
    );
}

#[test]
fn trailing_slash_modes() {
    assert_eq!(norm("/a/").unwrap(), "/a/");
    let ignore = |o: &mut NormalizeOptions| o.trailing_slash = TrailingSlash::Ignore;
    assert_eq!(norm_with("/a/", ignore).unwrap(), "/a");
    assert_eq!(norm_with("/a//", ignore).unwrap(), "/a");
    assert_eq!(norm_with("/", ignore).unwrap(), "/");
    assert!(matches!(
        normalize(
            "/a/b/",
            &NormalizeOptions {
                trailing_slash: TrailingSlash::Ignore,
                ..Default::default()
            }
        )
        .unwrap(),
        Cow::Borrowed("/a/b")
    ));
}

#[test]
fn case_insensitive_lowers_everything_but_escapes() {
    let ci = |o: &mut NormalizeOptions| o.case_insensitive = true;
    assert_eq!(
        norm_with("/API/V2/%41b%c3%a9", ci).unwrap(),
        "/api/v2/ab%C3%A9"
    );
}

#[test]
fn pattern_segments_use_the_same_rules() {
    let o = NormalizeOptions::default();
    assert_eq!(canonical_segment("%76%32", &o).unwrap(), "v2");
    assert_eq!(canonical_segment("..", &o), Err(PathRejection::DotSegment));
    assert_eq!(canonical_segment("a;b", &o), Err(PathRejection::Semicolon));
}

// ---- properties ----

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_~-]{1,6}",
        1 => Just(".".to_string()),
        1 => Just("..".to_string()),
        1 => Just("".to_string()),
        1 => "%[0-9a-fA-F]{2}",
        1 => "%[0-9a-zA-Z%]{0,3}",
        1 => "[!$&'()*+,;=:@]{1,3}",
        1 => "[\\\\\"{}|^ \u{e9}\u{ff0e}]{1,2}",
        1 => "%(2[eE]|2[fF]|5[cC]|00|C0%AE|25)",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (prop::collection::vec(segment(), 0..7), any::<bool>()).prop_map(|(segs, trailing)| {
        let mut p = format!("/{}", segs.join("/"));
        if trailing {
            p.push('/');
        }
        p
    })
}

fn options() -> impl Strategy<Value = NormalizeOptions> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(m, c, t, s)| {
        NormalizeOptions {
            merge_slashes: m,
            case_insensitive: c,
            trailing_slash: if t {
                TrailingSlash::Ignore
            } else {
                TrailingSlash::Strict
            },
            allow_semicolon: s,
        }
    })
}

proptest! {
    #[test]
    fn the_fast_path_agrees_with_the_full_pass(p in path(), o in options()) {
        if is_already_canonical(p.as_bytes(), &o) {
            let full = normalize_full(&p, &o);
            prop_assert_eq!(full.as_deref(), Ok(p.as_str()));
        }
        prop_assert_eq!(normalize(&p, &o), normalize_full(&p, &o));
    }

    #[test]
    fn normalization_is_idempotent(p in path(), o in options()) {
        if let Ok(once) = normalize(&p, &o) {
            let twice = normalize(&once, &o);
            prop_assert_eq!(twice.as_deref(), Ok(&*once));
        }
    }

    #[test]
    fn accepted_paths_are_plain_ascii_without_ambiguity(p in path(), o in options()) {
        if let Ok(n) = normalize(&p, &o) {
            prop_assert!(n.starts_with('/'));
            prop_assert!(n.is_ascii());
            prop_assert!(!n.contains('\\'));
            let upper = n.to_ascii_uppercase();
            prop_assert!(!upper.contains("%2F") && !upper.contains("%5C") && !upper.contains("%2E"));
            for seg in n.split('/') {
                prop_assert!(seg != "." && seg != "..");
            }
            if !o.allow_semicolon { prop_assert!(!n.contains(';')); }
            if o.merge_slashes { prop_assert!(!n.contains("//")); }
        }
    }

    #[test]
    fn decoding_the_output_once_gives_the_same_segments(p in path(), o in options()) {
        // What a backend sees after one percent-decoding pass has exactly the
        // segments the gateway matched: no escape turns into a separator.
        if let Ok(n) = normalize(&p, &o) {
            let decoded: Vec<u8> = percent_encoding::percent_decode(n.as_bytes()).collect();
            let count = |b: &[u8]| b.iter().filter(|c| **c == b'/').count();
            prop_assert_eq!(count(n.as_bytes()), count(&decoded));
            prop_assert!(!decoded.contains(&b'\\'));
            prop_assert!(!decoded.iter().any(|b| *b < 0x20 || *b == 0x7f));
        }
    }
}
