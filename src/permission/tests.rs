use super::*;
use proptest::prelude::*;
use std::sync::Arc;

fn p(s: &str) -> Permission {
    Permission::parse(s).unwrap()
}

fn set(items: &[&str]) -> PermissionSet {
    items.iter().map(|s| p(s)).collect()
}

/// Whether `grant` implies the concrete requirement `req`.
fn implies(grant: &str, req: &str) -> bool {
    p(grant).implies(req.split(':'))
}

fn check_str(req: &str, grants: &[&str], denies: &[&str]) -> bool {
    let r = Requirement::parse(req, &[]).unwrap();
    check(&r, &[], &set(grants), &set(denies)).is_satisfied()
}

#[test]
fn exact_grant_implies_requirement() {
    assert!(implies(
        "integrations:integration:view",
        "integrations:integration:view"
    ));
    assert!(!implies(
        "integrations:integration:view",
        "integrations:integration:add"
    ));
}

#[test]
fn wildcard_part_implies_any_token() {
    assert!(implies(
        "integrations:integration:*",
        "integrations:integration:delete"
    ));
    assert!(implies("integrations:*:view", "integrations:action:view"));
    assert!(!implies("integrations:*:view", "integrations:action:edit"));
    assert!(implies("*", "anything:at:all"));
}

#[test]
fn comma_tokens_list_alternatives() {
    assert!(implies(
        "integrations:integration:view,edit",
        "integrations:integration:edit"
    ));
    assert!(!implies(
        "integrations:integration:view,edit",
        "integrations:integration:delete"
    ));
    assert!(implies("a,b:c", "b:c"));
}

#[test]
fn shorter_grant_implies_everything_below() {
    assert!(implies("integrations", "integrations:integration:view"));
    assert!(implies(
        "integrations:integration",
        "integrations:integration:view"
    ));
    assert!(!implies("integrations", "routing:queue:view"));
}

#[test]
fn longer_grant_implies_only_when_extra_parts_are_wildcards() {
    assert!(implies(
        "integrations:integration:*",
        "integrations:integration"
    ));
    assert!(implies("integrations:*:*", "integrations"));
    assert!(!implies(
        "integrations:integration:view",
        "integrations:integration"
    ));
    assert!(implies(
        "integrations:integration:view,*",
        "integrations:integration"
    ));
}

#[test]
fn comparison_ignores_ascii_case() {
    assert!(implies(
        "Integrations:Integration:VIEW",
        "integrations:integration:view"
    ));
    assert!(implies(
        "integrations:integration:view",
        "INTEGRATIONS:integration:View"
    ));
    assert_eq!(p("A:B").as_str(), "a:b");
}

#[test]
fn deny_wins_over_grant() {
    assert!(check_str("a:b:c", &["a:b:*"], &[]));
    assert!(!check_str("a:b:c", &["a:b:*"], &["a:b:c"]));
    assert!(
        !check_str("a:b:c", &["a"], &["a:b"]),
        "a shorter deny covers deeper requirements"
    );
    assert!(!check_str("a:b:c", &["a:b:c"], &["*"]));
    assert!(
        check_str("a:b:d", &["a:b:*"], &["a:b:c"]),
        "a deny only removes what it implies"
    );
}

#[test]
fn check_reports_which_permission_decided() {
    let r = Requirement::parse("a:b:c", &[]).unwrap();
    let grants = set(&["x", "a:b:*"]);
    let denies = set(&["a:b:c,d"]);
    assert_eq!(
        check(&r, &[], &grants, &PermissionSet::empty()),
        Check::Satisfied(&p("a:b:*"))
    );
    assert_eq!(
        check(&r, &[], &grants, &denies),
        Check::Denied(&p("a:b:c,d"))
    );
    assert_eq!(
        check(&r, &[], &set(&["x"]), &PermissionSet::empty()),
        Check::NotGranted
    );
}

#[test]
fn parse_rejects_malformed_permissions() {
    assert_eq!(Permission::parse(""), Err(PermissionError::Empty));
    assert_eq!(
        Permission::parse("a::b"),
        Err(PermissionError::EmptyPart { part: 2 })
    );
    assert_eq!(
        Permission::parse("a:"),
        Err(PermissionError::EmptyPart { part: 2 })
    );
    assert_eq!(
        Permission::parse("a:b,:c"),
        Err(PermissionError::EmptyToken { part: 2 })
    );
    assert_eq!(
        Permission::parse("a:vi*"),
        Err(PermissionError::PartialWildcard { part: 2 })
    );
    assert!(matches!(
        Permission::parse("a b"),
        Err(PermissionError::InvalidChar { ch: ' ', offset: 1 })
    ));
    assert!(matches!(
        Permission::parse("a:{id}"),
        Err(PermissionError::InvalidChar { ch: '{', .. })
    ));
    assert!(matches!(
        Permission::parse("intégration"),
        Err(PermissionError::InvalidChar { ch: 'é', .. })
    ));
    assert!(Permission::parse("a-b_c.d:*:x,y").is_ok());
}

#[test]
fn equal_permissions_share_one_allocation() {
    let a = p("Integrations:Integration:VIEW");
    let b = p("integrations:integration:view");
    assert_eq!(a, b);
    assert!(Arc::ptr_eq(&a.0, &b.0), "interned");
    assert_ne!(a, p("integrations:integration:edit"));
}

#[test]
fn requirements_are_concrete() {
    assert_eq!(
        Requirement::parse("a:*:c", &[]),
        Err(PermissionError::NotConcrete { part: 2 })
    );
    assert_eq!(
        Requirement::parse("a:b,c", &[]),
        Err(PermissionError::NotConcrete { part: 2 })
    );
    assert_eq!(
        Requirement::parse("a:x{id}:c", &["id"]),
        Err(PermissionError::BadTemplate { part: 2 })
    );
    assert_eq!(
        Requirement::parse("integration:{other}:admin", &["id"]),
        Err(PermissionError::UnknownParam {
            name: "other".into()
        })
    );
}

#[test]
fn template_substitutes_path_parameter() {
    let r = Requirement::parse("integration:{integrationId}:admin", &["integrationId"]).unwrap();
    assert!(r.is_templated());
    let grants = set(&["integration:abc:admin"]);
    let none = PermissionSet::empty();
    assert!(check(&r, &["abc"], &grants, &none).is_satisfied());
    assert!(
        check(&r, &["ABC"], &grants, &none).is_satisfied(),
        "case-insensitive"
    );
    assert_eq!(check(&r, &["other"], &grants, &none), Check::NotGranted);
    assert_eq!(r.render(&["abc"]), "integration:abc:admin");
}

#[test]
fn template_values_that_are_not_tokens_never_match() {
    let r = Requirement::parse("integration:{id}:admin", &["id"]).unwrap();
    let everything = set(&["*", "integration:*:admin"]);
    let none = PermissionSet::empty();
    for bad in ["", "*", "a:b", "x,y", "a%3Ab", "a b", "é", "a/b", "{id}"] {
        assert_eq!(
            check(&r, &[bad], &everything, &none),
            Check::Unformable,
            "value {bad:?} must not form a permission"
        );
        assert_eq!(r.render(&[bad]), "integration:<invalid>:admin");
    }
}

// ---- properties ----

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]{1,6}"
}

fn part() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => token(),
        1 => Just("*".to_string()),
        1 => prop::collection::vec(token(), 2..4).prop_map(|v| v.join(",")),
    ]
}

fn permission() -> impl Strategy<Value = String> {
    prop::collection::vec(part(), 1..5).prop_map(|v| v.join(":"))
}

fn concrete() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 1..5).prop_map(|v| v.join(":"))
}

proptest! {
    #[test]
    fn a_concrete_grant_implies_itself(req in concrete()) {
        prop_assert!(implies(&req, &req));
    }

    #[test]
    fn parsing_is_case_insensitive(perm in permission(), req in concrete()) {
        prop_assert_eq!(implies(&perm, &req), implies(&perm.to_uppercase(), &req.to_lowercase()));
    }

    #[test]
    fn a_prefix_of_a_grant_implies_at_least_as_much(perm in permission(), req in concrete(), cut in 1usize..5) {
        let parts: Vec<&str> = perm.split(':').collect();
        let prefix = parts[..cut.min(parts.len())].join(":");
        if implies(&perm, &req) {
            prop_assert!(implies(&prefix, &req));
        }
    }

    #[test]
    fn adding_a_deny_never_turns_a_deny_into_an_allow(
        req in concrete(),
        grants in prop::collection::vec(permission(), 0..6),
        denies in prop::collection::vec(permission(), 0..4),
        extra in permission(),
    ) {
        let g: Vec<&str> = grants.iter().map(String::as_str).collect();
        let d: Vec<&str> = denies.iter().map(String::as_str).collect();
        let mut d2 = d.clone();
        d2.push(&extra);
        if !check_str(&req, &g, &d) {
            prop_assert!(!check_str(&req, &g, &d2));
        }
    }

    #[test]
    fn adding_a_grant_never_turns_an_allow_into_a_deny(
        req in concrete(),
        grants in prop::collection::vec(permission(), 0..6),
        denies in prop::collection::vec(permission(), 0..4),
        extra in permission(),
    ) {
        let g: Vec<&str> = grants.iter().map(String::as_str).collect();
        let d: Vec<&str> = denies.iter().map(String::as_str).collect();
        let mut g2 = g.clone();
        g2.push(&extra);
        if check_str(&req, &g, &d) {
            prop_assert!(check_str(&req, &g2, &d));
        }
    }

    #[test]
    fn a_templated_value_with_a_separator_never_matches(
        prefix in "[a-z0-9]{0,4}",
        sep in prop::sample::select(vec![":", ",", "*", "/", "%", " ", "{", "}", "\u{e9}"]),
        suffix in "[a-z0-9]{0,4}",
    ) {
        let value = format!("{prefix}{sep}{suffix}");
        let r = Requirement::parse("integration:{id}:admin", &["id"]).unwrap();
        let everything = set(&["*", "integration", "integration:*:*"]);
        let none = PermissionSet::empty();
        prop_assert_eq!(check(&r, &[&value], &everything, &none), Check::Unformable);
    }

    #[test]
    fn templated_and_literal_requirements_agree(value in token(), grants in prop::collection::vec(permission(), 0..6)) {
        let g: Vec<&str> = grants.iter().map(String::as_str).collect();
        let templ = Requirement::parse("integration:{id}:admin", &["id"]).unwrap();
        let literal = format!("integration:{value}:admin");
        let via_template = check(&templ, &[&value], &set(&g), &PermissionSet::empty()).is_satisfied();
        prop_assert_eq!(via_template, check_str(&literal, &g, &[]));
    }

    #[test]
    fn parse_accepts_exactly_the_grammar(s in "\\PC{0,40}") {
        let grammar = s.split(':').all(|part| {
            part.split(',').all(|t| t == "*" || is_token(t))
        });
        match Permission::parse(&s) {
            Ok(perm) => {
                prop_assert!(grammar);
                prop_assert_eq!(perm.as_str(), s.to_ascii_lowercase());
            }
            Err(_) => prop_assert!(!grammar),
        }
        if let Ok(req) = Requirement::parse(&s, &["id"]) {
            prop_assert!(!req.as_str().contains('*') && !req.as_str().contains(','));
        }
    }
}

/// The parser as first written (split on `:`, then on `,`): the one-pass
/// parser must give the same permission or the same error.
fn parse_by_splitting(s: &str) -> Result<String, PermissionError> {
    if s.is_empty() {
        return Err(PermissionError::Empty);
    }
    let mut offset = 0;
    for (i, part) in s.split(':').enumerate() {
        let part_no = i + 1;
        if part.is_empty() {
            return Err(PermissionError::EmptyPart { part: part_no });
        }
        for token in part.split(',') {
            if token.is_empty() {
                return Err(PermissionError::EmptyToken { part: part_no });
            }
            if token != "*" {
                for (j, b) in token.bytes().enumerate() {
                    if b == b'*' {
                        return Err(PermissionError::PartialWildcard { part: part_no });
                    }
                    if !is_token_byte(b) {
                        let ch = token[j..].chars().next().unwrap_or('?');
                        return Err(PermissionError::InvalidChar {
                            ch,
                            offset: offset + j,
                        });
                    }
                }
            }
            offset += token.len() + 1;
        }
    }
    Ok(s.to_ascii_lowercase())
}

proptest! {
    #[test]
    fn one_pass_parsing_agrees_with_splitting(s in "[aZ9_.*,:é -]{0,14}") {
        let one_pass = Permission::parse(&s).map(|p| p.as_str().to_string());
        prop_assert_eq!(one_pass, parse_by_splitting(&s), "{:?}", s);
    }
}

#[test]
fn one_pass_parsing_agrees_with_splitting_on_edge_cases() {
    for s in [
        "", ":", ",", "a:", ":a", "a,", ",a", "a::b", "a,,b", "a:,b", "a,:b", "*", "**", "*a",
        "a*", "a:*", "a:*,b", "a:b,*", "a:b*", "a:*:*", "A:B", "a:é", "a b", "a:b,c:d",
    ] {
        let one_pass = Permission::parse(s).map(|p| p.as_str().to_string());
        assert_eq!(one_pass, parse_by_splitting(s), "{s:?}");
    }
}
