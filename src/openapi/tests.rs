use std::path::Path;

use serde_json::{Value, json};

use super::*;
use crate::decision::{ExplainRequest, Grants, explain};
use crate::permission::PermissionSet;
use crate::routes::{Access, RouteTable};

fn run(doc: &Value, source: &str) -> Import {
    let text = serde_json::to_string_pretty(doc).unwrap();
    import(&text, Path::new("api.json"), &source.parse().unwrap()).unwrap()
}

/// Loads the output with the real loader and runs every `[[test]]`.
fn load(out: &Import) -> RouteTable {
    let table = crate::routes::parse(&out.text, Path::new("r.toml"), &["default".into()])
        .unwrap_or_else(|e| panic!("{e}\n{}", out.text));
    assert_eq!(table.default, crate::routes::DefaultPolicy::Deny);
    for t in table.tests.iter() {
        let grants = t.grants.as_ref().map(|g| Grants {
            subject: "t".into(),
            allow: g.iter().cloned().collect::<PermissionSet>(),
            deny: PermissionSet::empty(),
        });
        let request = ExplainRequest {
            method: t.method.clone(),
            target: t.path.clone(),
            headers: http::HeaderMap::new(),
        };
        let e = explain(&table, &request, grants.as_ref());
        assert_eq!(e.word(), t.expect.as_str(), "test at line {}", t.line);
    }
    table
}

/// `(require, require_any)` of the route named `name`.
fn access(table: &RouteTable, name: &str) -> Option<(Vec<String>, Vec<String>)> {
    let route = table.routes().iter().find(|r| &*r.name == name)?;
    let strings =
        |rs: &[crate::permission::Requirement]| rs.iter().map(|r| r.as_str().to_string()).collect();
    Some(match &route.access {
        Access::Permissions { all, any } => (strings(all), strings(any)),
        _ => (Vec::new(), Vec::new()),
    })
}

fn strs(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn oas(paths: Value) -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "components": {"securitySchemes": {
            "oauth": {"type": "oauth2", "flows": {}},
            "key": {"type": "apiKey", "name": "k", "in": "header"}
        }},
        "paths": paths
    })
}

#[test]
fn scopes_one_object_several_single_scopes_and_a_mix() {
    let doc = oas(json!({
        "/all": {"get": {"operationId": "all", "security": [{"oauth": ["a:read", "b:read"], "key": []}]}},
        "/any": {"get": {"operationId": "any", "security": [{"oauth": ["a:read"]}, {"oauth": ["b:read"]}]}},
        "/mix": {"get": {"operationId": "mix", "security": [{"oauth": ["a:read", "b:read"]}, {"oauth": ["c:read"]}]}},
        "/none": {"get": {"operationId": "none", "security": []}},
        "/keyonly": {"get": {"operationId": "keyonly", "security": [{"key": []}]}},
        "/roles": {"get": {"operationId": "roles", "security": [{"key": ["admin"]}]}},
        "/undefined": {"get": {"operationId": "undefined", "security": [{"nope": ["u:read"]}]}},
        "/broken": {"get": {"operationId": "broken", "security": {"oauth": ["a:read"]}}}
    }));
    let out = run(&doc, "scopes");
    let table = load(&out);
    assert_eq!(
        access(&table, "all").unwrap(),
        (strs(&["a:read", "b:read"]), vec![])
    );
    assert_eq!(
        access(&table, "any").unwrap(),
        (vec![], strs(&["a:read", "b:read"]))
    );
    assert_eq!(
        access(&table, "mix").unwrap(),
        (strs(&["a:read", "b:read"]), vec![]),
        "a mix takes the first object, never wider"
    );
    assert!(
        out.report
            .warnings
            .iter()
            .any(|(op, w)| op == "mix" && w.contains("first"))
    );
    for name in ["none", "keyonly"] {
        assert_eq!(access(&table, name).unwrap(), (vec![], vec![]));
    }
    assert_eq!(out.report.authenticated_only, 2);
    // Lists of other or undefined schemes are required too: never wider.
    assert_eq!(access(&table, "roles").unwrap(), (strs(&["admin"]), vec![]));
    assert_eq!(
        access(&table, "undefined").unwrap(),
        (strs(&["u:read"]), vec![])
    );
    assert!(
        out.report
            .warnings
            .iter()
            .any(|(op, w)| op == "undefined" && w.contains("not a defined OAuth2"))
    );
    assert!(
        access(&table, "broken").is_none(),
        "a malformed security is left out"
    );
    assert!(
        out.text
            .contains("# no permission in the description: any authenticated caller\n[[route]]\nname = \"keyonly\"")
    );
}

#[test]
fn scopes_fall_back_to_the_document_security() {
    let mut doc = oas(json!({"/x": {"get": {"operationId": "x"}}}));
    doc["security"] = json!([{"oauth": ["x:read"]}]);
    let table = load(&run(&doc, "default"));
    assert_eq!(access(&table, "x").unwrap(), (strs(&["x:read"]), vec![]));
}

#[test]
fn extension_any_and_all_and_the_default_source() {
    let doc = oas(json!({
        "/a": {
            "get": {"operationId": "any", "x-perm": {"type": "ANY", "permissions": ["a:b:view", "a:b:edit"]}},
            "put": {"operationId": "all", "x-perm": {"type": "ALL", "permissions": ["a:b:edit", "c:d:view"]}},
            "post": {"operationId": "one", "x-perm": {"type": "ANY", "permissions": ["a:b:add"]}},
            "delete": {"operationId": "bad", "x-perm": {"type": "SOME", "permissions": ["a:b:delete"]}}
        },
        "/d": {
            "get": {"operationId": "ext", "x-permissions": {"type": "ALL", "permissions": ["d:view"]},
                    "security": [{"oauth": ["d:scope"]}]},
            "put": {"operationId": "scope", "security": [{"oauth": ["d:scope"]}]}
        }
    }));
    let out = run(&doc, "extension:x-perm");
    let table = load(&out);
    assert_eq!(
        access(&table, "any").unwrap(),
        (vec![], strs(&["a:b:view", "a:b:edit"]))
    );
    assert_eq!(
        access(&table, "all").unwrap(),
        (strs(&["a:b:edit", "c:d:view"]), vec![])
    );
    assert_eq!(access(&table, "one").unwrap(), (strs(&["a:b:add"]), vec![]));
    assert!(
        access(&table, "bad").is_none(),
        "an unknown type leaves it out"
    );
    assert!(out.report.left_out.iter().any(|(op, _)| op == "bad"));

    let table = load(&run(&doc, "default"));
    assert_eq!(access(&table, "ext").unwrap(), (strs(&["d:view"]), vec![]));
    assert_eq!(
        access(&table, "scope").unwrap(),
        (strs(&["d:scope"]), vec![])
    );
}

#[test]
fn invalid_strings_narrow_or_leave_the_operation_out() {
    let ext = |t: &str, p: &[&str]| json!({"type": t, "permissions": p});
    let doc = oas(json!({
        "/r": {
            "get": {"operationId": "skip-alt", "x-permissions": ext("ANY", &["ok:view", "bad perm", "ok:edit"])},
            "put": {"operationId": "last-alt", "x-permissions": ext("ANY", &["bad perm", "also/bad"])},
            "post": {"operationId": "bad-all", "x-permissions": ext("ALL", &["ok:view", "no*wild"])},
            "delete": {"operationId": "one-left", "x-permissions": ext("ANY", &["x y", "ok:delete"])}
        }
    }));
    let out = run(&doc, "default");
    let table = load(&out);
    assert_eq!(
        access(&table, "skip-alt").unwrap(),
        (vec![], strs(&["ok:view", "ok:edit"]))
    );
    assert_eq!(
        access(&table, "one-left").unwrap(),
        (strs(&["ok:delete"]), vec![])
    );
    for gone in ["last-alt", "bad-all"] {
        assert!(
            access(&table, gone).is_none(),
            "{gone} must not become authenticated-only"
        );
        assert!(out.text.contains(&format!("#   {gone} (")), "{gone} listed");
    }
    assert_eq!(out.report.routes, 2);
    assert_eq!(out.report.authenticated_only, 0);
    let skipped = out
        .report
        .warnings
        .iter()
        .filter(|(_, w)| w.contains("skipped"))
        .count();
    assert_eq!(skipped, 4, "{:?}", out.report.warnings);
}

#[test]
fn template_expands_tag_resource_action_and_path_params() {
    let doc = oas(json!({
        "/orgs/{org}/teams/{team-slug}": {
            "get": {"operationId": "get", "tags": ["teams"]},
            "patch": {"operationId": "edit", "tags": ["teams"]},
            "options": {"operationId": "opts", "tags": ["teams"]}
        },
        "/orgs/{org}/hooks": {"post": {"operationId": "untagged"}},
        "/users/{user}": {"delete": {"operationId": "noorg", "tags": ["users"]}}
    }));
    let out = run(&doc, "template:{tag}:{resource}:{org}:{action}");
    let table = load(&out);
    assert_eq!(
        access(&table, "get").unwrap(),
        (strs(&["teams:teams:{org}:view"]), vec![])
    );
    assert_eq!(
        access(&table, "edit").unwrap(),
        (strs(&["teams:teams:{org}:edit"]), vec![])
    );
    for gone in ["opts", "untagged", "noorg"] {
        assert!(access(&table, gone).is_none(), "{gone}");
    }
    let route = table.routes().iter().find(|r| &*r.name == "get").unwrap();
    assert_eq!(&*route.path, "/orgs/{org}/teams/{team_slug}");
    let out = run(&doc, "template:team:{team-slug}:{action}");
    let table = load(&out);
    assert_eq!(
        access(&table, "edit").unwrap(),
        (strs(&["team:{team_slug}:edit"]), vec![]),
        "a template may name the parameter as the document does"
    );
}

#[test]
fn same_shape_conflicts_never_widen() {
    let ext = |p: &[&str], t: &str| json!({"type": t, "permissions": p});
    let doc = oas(json!({
        "/a/{x}": {"get": {"operationId": "a-x", "x-permissions": ext(&["a:{x}:view"], "ALL")}},
        "/a/{y}": {"get": {"operationId": "a-y", "x-permissions": ext(&["b:{y}:view"], "ALL")}},
        "/b/{x}": {"get": {"operationId": "b-x", "x-permissions": ext(&["p:view"], "ALL")}},
        "/b/{y}": {"get": {"operationId": "b-y", "x-permissions": ext(&["p:view"], "ALL")}},
        "/c/{x}": {"get": {"operationId": "c-x", "x-permissions": ext(&["p:a", "p:b"], "ANY")}},
        "/c/{y}": {"get": {"operationId": "c-y", "x-permissions": ext(&["p:c", "p:d"], "ANY")}},
        "/d%65": {"get": {"operationId": "de-encoded", "x-permissions": ext(&["d:one"], "ALL")}},
        "/de": {"get": {"operationId": "de", "x-permissions": ext(&["d:two"], "ALL")}},
        "/e/{x}": {"put": {"operationId": "e-put"}, "get": {"operationId": "e-get"}},
        "/e/{y}": {"delete": {"operationId": "e-delete"}}
    }));
    let out = run(&doc, "default");
    let table = load(&out);
    assert_eq!(
        access(&table, "a-x").unwrap(),
        (strs(&["a:{x}:view", "b:{x}:view"]), vec![]),
        "merged: both are needed, parameters renamed by position"
    );
    assert!(access(&table, "a-y").is_none());
    assert_eq!(access(&table, "b-x").unwrap(), (strs(&["p:view"]), vec![]));
    assert!(access(&table, "c-x").is_none() && access(&table, "c-y").is_none());
    assert!(out.text.contains("#   c-x (GET /c/{x})"));
    assert_eq!(
        access(&table, "de-encoded").unwrap(),
        (strs(&["d:one", "d:two"]), vec![]),
        "/d%65 is /de once canonical"
    );
    assert!(
        access(&table, "e-delete").is_some(),
        "other methods do not conflict"
    );
    assert_eq!(out.report.conflicts.len(), 4, "{:?}", out.report.conflicts);
    assert!(
        out.report
            .conflicts
            .iter()
            .any(|c| c.contains("a-x (GET /a/{x})") && c.contains("a-y (GET /a/{y})"))
    );
}

#[test]
fn output_is_deterministic() {
    let doc = oas(json!({
        "/z/{id}": {"delete": {"operationId": "z", "x-permissions": {"type": "ALL", "permissions": ["z:delete"]}}},
        "/a": {"get": {"operationId": "a"}, "post": {"operationId": "a-post"}},
        "/m/{x}.json": {"get": {"operationId": "m"}}
    }));
    let first = run(&doc, "default").text;
    assert_eq!(first, run(&doc, "default").text);
    let yaml = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\ncomponents:\n  securitySchemes:\n    oauth: {type: oauth2, flows: {}}\n    key: {type: apiKey, name: k, in: header}\npaths:\n  /m/{x}.json:\n    get: {operationId: m}\n  /a:\n    post: {operationId: a-post}\n    get: {operationId: a}\n  /z/{id}:\n    delete:\n      operationId: z\n      x-permissions: {type: ALL, permissions: [z:delete]}\n";
    let from_yaml = import(yaml, Path::new("api.json"), &PermissionSource::Default).unwrap();
    assert_eq!(from_yaml.text, first, "key order and format do not matter");
    let a = first.find("name = \"a\"").unwrap();
    let a_post = first.find("name = \"a-post\"").unwrap();
    let z = first.find("name = \"z\"").unwrap();
    assert!(a < a_post && a_post < z, "sorted by path, then method");
}

#[test]
fn refs_to_path_items_resolve_inside_the_document() {
    let mut doc = oas(json!({
        "/items/{id}": {"$ref": "#/x-items/item"},
        "/other": {"$ref": "other.yaml#/paths/~1x"},
        "/loop": {"$ref": "#/paths/~1loop"}
    }));
    doc["x-items"] = json!({"item": {
        "get": {"operationId": "item", "x-permissions": {"type": "ALL", "permissions": ["items:view"]}},
        "put": {"$ref": "#/x-ops/~1put"}
    }});
    doc["x-ops"] =
        json!({"/put": {"operationId": "item-put", "x-permissions": {"$ref": "#/x-perm"}}});
    doc["x-perm"] = json!({"type": "ALL", "permissions": ["items:edit"]});
    let out = run(&doc, "default");
    let table = load(&out);
    assert_eq!(
        access(&table, "item").unwrap(),
        (strs(&["items:view"]), vec![])
    );
    assert_eq!(
        access(&table, "item-put").unwrap(),
        (strs(&["items:edit"]), vec![])
    );
    let why = |label: &str| {
        out.report
            .left_out
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, w)| w.clone())
            .unwrap_or_default()
    };
    assert!(
        why("/other").contains("outside the document"),
        "{:?}",
        out.report.left_out
    );
    assert!(why("/loop").contains("loop"));
}

#[test]
fn swagger_base_path_and_openapi_server_paths() {
    let swagger = json!({
        "swagger": "2.0", "basePath": "/api/v2/",
        "securityDefinitions": {"o": {"type": "oauth2", "flow": "implicit", "scopes": {}}},
        "security": [{"o": ["read"]}],
        "paths": {"/things/{id}": {"get": {"operationId": "thing"}}}
    });
    let table = load(&run(&swagger, "scopes"));
    let r = &table.routes()[0];
    assert_eq!(&*r.path, "/api/v2/things/{id}");
    assert_eq!(access(&table, "thing").unwrap(), (strs(&["read"]), vec![]));

    let server = |url: &str| {
        let mut d = oas(json!({"/x": {"get": {"operationId": "x"}}}));
        d["servers"] = json!([
            {"url": url, "variables": {"v": {"default": "v3"}}},
            {"url": "https://other/ignored"}
        ]);
        load(&run(&d, "default")).routes()[0].path.to_string()
    };
    assert_eq!(server("https://api.example.com"), "/x");
    assert_eq!(server("https://api.example.com/base/"), "/base/x");
    assert_eq!(server("https://api.example.com/api/{v}"), "/api/v3/x");
    assert_eq!(server("/rel"), "/rel/x");
    assert_eq!(server("//host:8443/h"), "/h/x");

    let mut d = oas(json!({"/x": {"servers": [{"url": "/own"}], "get": {"operationId": "x"}}}));
    d["servers"] = json!([{"url": "/doc"}]);
    assert_eq!(&*load(&run(&d, "default")).routes()[0].path, "/own/x");
}

#[test]
fn paths_permgate_cannot_express_are_reported() {
    let doc = oas(json!({
        "/files/{name}.json": {"get": {"operationId": "file"}},
        "/files/{name}": {"get": {"operationId": "plain"}},
        "/glob/*": {"get": {"operationId": "star"}},
        "/a//b": {"get": {"operationId": "empty"}}
    }));
    let out = run(&doc, "default");
    let table = load(&out);
    assert!(access(&table, "file").is_none());
    assert!(access(&table, "empty").is_none());
    let star = table.routes().iter().find(|r| &*r.name == "star").unwrap();
    assert_eq!(&*star.path, "/glob/*", "kept, literal");
    let word = |path: &str| {
        let grants = Grants::from_lists("t", &[], &[]).unwrap();
        let request = ExplainRequest::parse("GET", path, []).unwrap();
        let e = explain(&table, &request, Some(&grants));
        (e.route.map(|r| r.name.to_string()), e.word())
    };
    assert_eq!(word("/glob/*"), (Some("star".into()), "allow"));
    assert_eq!(word("/glob/anything"), (None, "deny"), "not a wildcard");
    assert!(
        out.report
            .warnings
            .iter()
            .any(|(op, w)| op == "star" && w.contains("literally"))
    );
    assert!(
        out.report
            .left_out
            .iter()
            .any(|(op, w)| op == "file" && w.contains("inside"))
    );
    // The left-out file is not reachable through /files/{name}: its sample
    // path would be, so no misleading test is written for it.
    assert!(!out.text.contains("path = \"/files/v1.json\""));
}

#[test]
fn errors_name_the_file_and_position() {
    let file = Path::new("bad.yaml");
    let e = import(
        "openapi: 3.0.0\npaths:\n  /a: [\n",
        file,
        &PermissionSource::Default,
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("bad.yaml:"), "{e}");
    assert!(e.position.is_some(), "{e}");
    let e = import(
        "{\n  \"openapi\": 3\n  ,,\n}",
        Path::new("bad.json"),
        &PermissionSource::Default,
    )
    .unwrap_err();
    assert_eq!(e.position.map(|p| p.0), Some(3), "{e}");
    let e = import(
        "{\"info\": {}}",
        Path::new("x.json"),
        &PermissionSource::Default,
    )
    .unwrap_err();
    assert!(e.to_string().contains("not an OpenAPI"), "{e}");
    let e = import(
        "swagger: '1.2'\n",
        Path::new("x.yaml"),
        &PermissionSource::Default,
    )
    .unwrap_err();
    assert!(e.to_string().contains("unsupported version"), "{e}");
}

#[test]
fn sources_parse() {
    assert_eq!(
        "extension:x-a".parse::<PermissionSource>(),
        Ok(PermissionSource::Extension("x-a".into()))
    );
    assert_eq!("scopes".parse(), Ok(PermissionSource::Scopes));
    assert!("template:".parse::<PermissionSource>().is_err());
    assert!("tags".parse::<PermissionSource>().is_err());
}
