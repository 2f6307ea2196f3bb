use super::*;
use proptest::prelude::*;
use std::path::Path;

fn table(text: &str) -> Result<RouteTable, crate::config::ConfigError> {
    parse(
        text,
        Path::new("routes.toml"),
        &["default".into(), "other".into()],
    )
}

fn route_name(t: &RouteTable, method: &str, path: &str) -> Option<String> {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    t.find(&m, path).map(|m| m.route.name.to_string())
}

const SEED_TABLE: &str = r#"
[[route]]
name = "credentials.list"
methods = ["GET"]
path = "/api/v2/integrations/credentials"
require = ["integrations:integration:view"]

[[route]]
name = "credentials.types"
methods = ["GET"]
path = "/api/v2/integrations/credentials/types"
require = ["integrations:integration:view"]

[[route]]
name = "credentials.get"
methods = ["GET"]
path = "/api/v2/integrations/credentials/{credentialId}"
require = ["integrations:integration:view"]

[[route]]
name = "credentials.delete"
methods = ["DELETE"]
path = "/api/v2/integrations/credentials/{id}"
require = ["integrations:integration:delete"]
"#;

#[test]
fn static_beats_param_and_methods_are_separate() {
    let t = table(SEED_TABLE).unwrap();
    assert_eq!(
        route_name(&t, "GET", "/api/v2/integrations/credentials/types").unwrap(),
        "credentials.types"
    );
    assert_eq!(
        route_name(&t, "GET", "/api/v2/integrations/credentials/42").unwrap(),
        "credentials.get"
    );
    assert_eq!(
        route_name(&t, "DELETE", "/api/v2/integrations/credentials/42").unwrap(),
        "credentials.delete"
    );
    assert_eq!(
        route_name(&t, "PUT", "/api/v2/integrations/credentials/42"),
        None,
        "other methods' routes do not match"
    );
    assert_eq!(
        route_name(&t, "GET", "/api/v2/integrations/credentials/42/x"),
        None
    );
    let m = t
        .find(&Method::GET, "/api/v2/integrations/credentials/42")
        .unwrap();
    assert_eq!(m.params.as_slice(), ["42"]);
}

#[test]
fn spec_backtracking_example() {
    let t = table(
        r#"
[[route]]
name = "messages"
methods = ["GET"]
path = "/c/messages/{id}"
[[route]]
name = "suggestions"
methods = ["GET"]
path = "/c/{id}/suggestions"
"#,
    )
    .unwrap();
    assert_eq!(route_name(&t, "GET", "/c/messages/x").unwrap(), "messages");
    assert_eq!(
        route_name(&t, "GET", "/c/abc/suggestions").unwrap(),
        "suggestions"
    );
    assert_eq!(
        route_name(&t, "GET", "/c/messages/suggestions").unwrap(),
        "messages"
    );
}

#[test]
fn param_beside_catch_all_at_the_same_position() {
    // matchit alone refuses this pair; the README's matching rules prefer {param} and fall back.
    let t = table(
        r#"
[[route]]
name = "one"
methods = ["GET"]
path = "/x/{p}/y"
[[route]]
name = "rest"
methods = ["GET"]
path = "/x/{*rest}"
[[route]]
name = "static"
methods = ["GET"]
path = "/x/static/{*rest}"
"#,
    )
    .unwrap();
    assert!(t.max_layers() >= 2);
    assert_eq!(route_name(&t, "GET", "/x/q/y").unwrap(), "one");
    assert_eq!(route_name(&t, "GET", "/x/q/z").unwrap(), "rest");
    assert_eq!(
        route_name(&t, "GET", "/x/static/y").unwrap(),
        "static",
        "static at position 2 wins over {{p}}"
    );
    let m = t.find(&Method::GET, "/x/q/z/w").unwrap();
    assert_eq!(m.params.as_slice(), ["q/z/w"]);
}

#[test]
fn different_param_names_are_fine_when_shapes_differ() {
    let t = table(
        r#"
[[route]]
methods = ["GET"]
path = "/roles/{roleId}"
[[route]]
methods = ["GET"]
path = "/roles/{leftRoleId}/compare/{rightRoleId}"
[[route]]
methods = ["PUT"]
path = "/roles/{id}"
"#,
    )
    .unwrap();
    let m = t.find(&Method::GET, "/roles/a/compare/b").unwrap();
    assert_eq!(
        &*m.route.params,
        [Box::from("leftRoleId"), Box::from("rightRoleId")]
    );
    assert_eq!(m.params.as_slice(), ["a", "b"]);
    assert_eq!(
        route_name(&t, "GET", "/roles/a").unwrap(),
        "GET /roles/{roleId}"
    );
}

#[test]
fn any_method_routes_apply_to_every_method_unless_overridden() {
    let t = table(
        r#"
[[route]]
name = "any"
path = "/items/{id}"
require = ["items:item:admin"]
[[route]]
name = "get"
methods = ["GET"]
path = "/items/{id}"
require = ["items:item:view"]
[[route]]
name = "special"
methods = ["*"]
path = "/items/special"
"#,
    )
    .unwrap();
    assert_eq!(route_name(&t, "GET", "/items/1").unwrap(), "get");
    assert_eq!(route_name(&t, "DELETE", "/items/1").unwrap(), "any");
    assert_eq!(route_name(&t, "PROPFIND", "/items/1").unwrap(), "any");
    assert_eq!(
        route_name(&t, "GET", "/items/special").unwrap(),
        "special",
        "the more specific path wins"
    );
}

#[test]
fn load_errors_name_the_line() {
    let cases = [
        (
            "[[route]]\nmethods=[\"GET\"]\npath=\"/c/{a}\"\n[[route]]\nmethods=[\"GET\"]\npath=\"/c/{b}\"\n",
            6,
            "conflicts with route",
        ),
        (
            "[[route]]\nmethods=[\"GET\"]\npath=\"/c\"\n[[route]]\nmethods=[\"GET\",\"POST\"]\npath=\"/c\"\n",
            6,
            "conflicts",
        ),
        (
            "[[route]]\npath=\"/c\"\nupstream=\"nope\"\n",
            3,
            "unknown upstream \"nope\"",
        ),
        (
            "[[route]]\npath=\"/c/{id}\"\nrequire=[\"a:{other}:b\"]\n",
            3,
            "not a parameter",
        ),
        (
            "[[route]]\npath=\"/c\"\nrequire=[\"a b\"]\n",
            3,
            "not allowed",
        ),
        (
            "[[route]]\npath=\"/c\"\nrequire=[\"a:*\"]\n",
            3,
            "one token per part",
        ),
        (
            "[[route]]\npath=\"/c\"\nrequires=[\"a\"]\n",
            3,
            "unknown field `requires`",
        ),
        ("[[route]]\npath=\"c/x\"\n", 2, "must start with '/'"),
        (
            "[[route]]\npath=\"/c\"\npublic=true\nrequire=[\"a\"]\n",
            3,
            "public route cannot",
        ),
        (
            "[[route]]\npath=\"/c\"\nmethods=[]\n",
            3,
            "methods is empty",
        ),
        (
            "[[route]]\npath=\"/c\"\nmethods=[\"GET\",\"*\"]\n",
            3,
            "cannot be combined",
        ),
        (
            "[[route]]\npath=\"/c\"\nmethods=[\"G T\"]\n",
            3,
            "invalid method",
        ),
        ("default = \"maybe\"\n", 1, "unknown variant `maybe`"),
        (
            "[normalize]\ntrailing_slash = \"loose\"\n",
            2,
            "unknown variant",
        ),
        (
            "[[route]]\npath = \"/c\"\n[[test]]\nmethod=\"GET\"\npath=\"/c\"\nexpect=\"maybe\"\n",
            6,
            "unknown variant",
        ),
        ("[[route]]\npath = \n", 2, ""),
    ];
    for (text, line, needle) in cases {
        let err = table(text).unwrap_err();
        assert_eq!(err.line(), Some(line), "{text:?}: {err}");
        assert!(err.to_string().contains(needle), "{text:?}: {err}");
        assert!(err.to_string().starts_with("routes.toml:"), "{err}");
    }
}

#[test]
fn access_and_mode_compile() {
    let t = table(
        r#"
mode = "audit"
[[route]]
path = "/pub"
public = true
[[route]]
path = "/auth"
[[route]]
path = "/perm"
require_any = ["a:b:c", "a:b:d"]
mode = "enforce"
upstream = "other"
"#,
    )
    .unwrap();
    let r = t.routes();
    assert_eq!(r[0].access, Access::Public);
    assert_eq!(r[0].mode, Mode::Audit);
    assert_eq!(r[1].access, Access::Authenticated);
    assert!(
        matches!(&r[2].access, Access::Permissions { all, any } if all.is_empty() && any.len() == 2)
    );
    assert_eq!(r[2].mode, Mode::Enforce);
    assert_eq!(r[2].upstream, 1);
    assert_eq!(&*r[2].upstream_name, "other");
    assert_eq!(t.source.sha256.len(), 64);
}

#[test]
fn the_real_genesys_table_loads() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/genesys-routes.toml");
    let t = load(&file, &["default".into()]).unwrap();
    assert_eq!(t.routes().len(), 3265);
    assert_eq!(
        route_name(&t, "GET", "/api/v2/integrations/credentials/types").unwrap(),
        "GET /api/v2/integrations/credentials/types"
    );
    let m = t
        .find(
            &Method::GET,
            "/api/v2/authorization/roles/r1/comparedefault/r2",
        )
        .unwrap();
    assert_eq!(m.params.as_slice(), ["r1", "r2"]);
}

// ---- the layered matcher against a literal reading of the matching rules ----

/// A pattern as the generator writes it.
#[derive(Clone, Debug)]
enum Seg {
    S(&'static str),
    P,
    C,
}

fn pattern_text(segs: &[Seg], trailing: bool) -> String {
    let mut s = String::new();
    for (i, seg) in segs.iter().enumerate() {
        s.push('/');
        match seg {
            Seg::S(t) => s.push_str(t),
            Seg::P => s.push_str(&format!("{{p{i}}}")),
            Seg::C => s.push_str(&format!("{{*c{i}}}")),
        }
    }
    if s.is_empty() || trailing {
        s.push('/');
    }
    s
}

/// Whether `segs` (+ trailing slash) matches `path`, segment by segment.
fn reference_matches(segs: &[Seg], trailing: bool, path: &str) -> bool {
    let parts: Vec<&str> = path[1..].split('/').collect();
    let mut want: Vec<&Seg> = segs.iter().collect();
    let empty = Seg::S("");
    if trailing || segs.is_empty() {
        want.push(&empty);
    }
    for (i, seg) in want.iter().enumerate() {
        match seg {
            Seg::C => return i < parts.len() && !parts[i..].join("/").is_empty(),
            Seg::P => {
                if parts.get(i).is_none_or(|p| p.is_empty()) {
                    return false;
                }
            }
            Seg::S(t) => {
                if parts.get(i) != Some(t) {
                    return false;
                }
            }
        }
    }
    want.len() == parts.len()
}

fn rank(segs: &[Seg]) -> Vec<u8> {
    segs.iter()
        .map(|s| match s {
            Seg::S(_) => 0,
            Seg::P => 1,
            Seg::C => 2,
        })
        .collect()
}

fn seg() -> impl Strategy<Value = Seg> {
    prop_oneof![
        3 => prop::sample::select(vec!["a", "b", "c"]).prop_map(Seg::S),
        2 => Just(Seg::P),
        1 => Just(Seg::C),
    ]
}

fn pattern() -> impl Strategy<Value = (Vec<Seg>, bool)> {
    (
        prop::collection::vec(seg(), 0..4),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(mut segs, t)| {
            if let Some(i) = segs.iter().position(|s| matches!(s, Seg::C)) {
                segs.truncate(i + 1);
                return (segs, false);
            }
            let t = t && !segs.is_empty();
            (segs, t)
        })
}

fn request_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "x"]), 0..5),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(segs, t)| {
            let mut p = format!("/{}", segs.join("/"));
            if t && !segs.is_empty() {
                p.push('/');
            }
            p
        })
}

proptest! {
    #[test]
    fn layered_matchit_agrees_with_the_spec(
        patterns in prop::collection::vec(pattern(), 1..10),
        paths in prop::collection::vec(request_path(), 1..20),
    ) {
        // Keep the first pattern of each shape; compile them as GET routes.
        let mut kept: Vec<(Vec<Seg>, bool)> = Vec::new();
        let mut shapes = std::collections::HashSet::new();
        for (segs, t) in patterns {
            let shape = (rank(&segs), segs.iter().map(|s| match s { Seg::S(x) => *x, _ => "" }).collect::<Vec<_>>(), t);
            if shapes.insert(shape) {
                kept.push((segs, t));
            }
        }
        let mut text = String::new();
        for (i, (segs, t)) in kept.iter().enumerate() {
            text.push_str(&format!("[[route]]\nname = \"r{i}\"\nmethods = [\"GET\"]\npath = \"{}\"\n", pattern_text(segs, *t)));
        }
        let t = table(&text).unwrap();
        for path in &paths {
            let expected = kept
                .iter()
                .enumerate()
                .filter(|(_, (segs, tr))| reference_matches(segs, *tr, path))
                .min_by(|(_, (a, _)), (_, (b, _))| rank(a).cmp(&rank(b)))
                .map(|(i, _)| format!("r{i}"));
            prop_assert_eq!(route_name(&t, "GET", path), expected, "path {} in\n{}", path, text);
        }
    }
}
