use super::*;
use std::path::Path;

fn table(text: &str) -> RouteTable {
    crate::routes::parse(text, Path::new("routes.toml"), &["default".into()])
        .unwrap_or_else(|e| panic!("{e}"))
}

fn shape(method: &str, shape: &str, example: &str) -> Unmatched {
    Unmatched {
        method: method.into(),
        shape: shape.into(),
        count: 3,
        example: example.into(),
    }
}

#[test]
fn parameters_are_named_after_the_segment_before_them() {
    assert_eq!(param_name("users"), "userId");
    assert_eq!(param_name("user-groups"), "userGroupId");
    assert_eq!(param_name("user_groups"), "userGroupId");
    assert_eq!(param_name("policies"), "policyId");
    assert_eq!(param_name("addresses"), "addressId");
    assert_eq!(param_name("boxes"), "boxId");
    assert_eq!(param_name("batches"), "batchId");
    assert_eq!(param_name("status"), "statusId");
    assert_eq!(param_name("analysis"), "analysisId");
    assert_eq!(param_name("access"), "accessId");
    assert_eq!(param_name("userGroups"), "userGroupId");
    assert_eq!(param_name("Credentials"), "credentialId");
    assert_eq!(param_name("v2"), "v2Id");
    assert_eq!(param_name("42"), "id");
    assert_eq!(param_name(""), "id");
    assert_eq!(singular("s"), "s");
    assert_eq!(singular("POLICIES"), "POLICY");
}

#[test]
fn names_are_unique_within_a_path_and_across_routes() {
    let t = table("[[route]]\nname = \"users.get\"\nmethods = [\"PUT\"]\npath = \"/zzz\"\n");
    let names = |shape: &str| route_name(&segments_of(shape));
    assert_eq!(names("/api/widgets"), "widgets");
    assert_eq!(names("/api/widgets/{id}"), "widget");
    assert_eq!(names("/api/widgets/{id}/history"), "widget.history");
    assert_eq!(names("/api/widgets/export"), "export");
    assert_eq!(names("/{id}"), "root");
    assert_eq!(names("/"), "root");
    let p = plan(
        &t,
        &[
            shape("GET", "/users/{id}/{id}", "/users/1/2"),
            shape("GET", "/users/{id}/users/{id}", "/users/1/users/2"),
            shape("GET", "/users/{id}", "/users/1"),
        ],
    );
    assert_eq!(p[0].path, "/users/{userId}/{id}");
    assert_eq!(p[1].path, "/users/{userId}/users/{userId2}");
    assert_eq!(p[2].path, "/users/{userId}");
    assert_eq!(p[0].name, "user.get");
    assert_eq!(p[1].name, "user.user.get");
    assert_eq!(p[2].name, "user.get.2", "user.get is taken");
    for q in &p {
        assert!(matches!(q.outcome, Outcome::NoSibling { .. }), "{q:?}");
    }
}

const SIBLINGS: &str = r#"
[[route]]
name = "keys.list"
methods = ["GET"]
path = "/orgs/{orgId}/keys"
require = ["org:{orgId}:keys:view"]

[[route]]
name = "keys.destroy"
methods = ["POST"]
path = "/orgs/{orgId}/keys/{keyId}/destroy"
require = ["org:{orgId}:keydestroy"]
require_any = ["keys:admin", "keys:{keyId}:owner"]

[[route]]
name = "keys.export"
methods = ["GET"]
path = "/orgs/{id}/keys/export"
public = true

[[route]]
name = "key.put"
methods = ["PUT"]
path = "/orgs/{o}/keys/{k}"
require = ["keys:{k}:edit"]
"#;

#[test]
fn require_comes_from_a_sibling_of_the_same_method_and_parent() {
    let t = table(SIBLINGS);
    let p = plan(
        &t,
        &[
            shape(
                "POST",
                "/orgs/{id}/keys/{id}/rotate",
                "/orgs/7/keys/9/rotate",
            ),
            shape("GET", "/orgs/{id}/keys/{id}", "/orgs/7/keys/9"),
            shape("DELETE", "/orgs/{id}/keys/{id}", "/orgs/7/keys/9"),
            shape("GET", "/orgs/{id}/users", "/orgs/7/users"),
        ],
    );
    // Parent /orgs/{}/keys/{}: "keys.destroy" is the POST sibling; its
    // parameter names are taken so its templates stay valid.
    assert_eq!(p[0].path, "/orgs/{orgId}/keys/{keyId}/rotate");
    assert_eq!(p[0].outcome, Outcome::Route { sibling: 1 });
    assert_eq!(p[0].require, ["org:{orgId}:keydestroy"]);
    assert_eq!(p[0].require_any, ["keys:admin", "keys:{keyId}:owner"]);
    // GET under /orgs/{}/keys: "keys.export" is public (nothing to copy),
    // so the route of the parent path, "keys.list", gives its access and
    // names; the PUT route of this very shape names the last parameter.
    assert_eq!(p[1].path, "/orgs/{orgId}/keys/{k}");
    assert_eq!(p[1].outcome, Outcome::Route { sibling: 0 });
    assert_eq!(p[1].require, ["org:{orgId}:keys:view"]);
    // DELETE: no route of that method at all; names from the PUT route.
    assert_eq!(p[2].path, "/orgs/{o}/keys/{k}");
    assert_eq!(
        p[2].outcome,
        Outcome::NoSibling {
            parent: "DELETE /orgs/{o}/keys".into()
        }
    );
    // GET /orgs/{}/users: parent /orgs/{}, sibling "keys.list".
    assert_eq!(p[3].path, "/orgs/{orgId}/users");
    assert_eq!(p[3].outcome, Outcome::Route { sibling: 0 });
    assert_eq!(p[3].require, ["org:{orgId}:keys:view"]);
}

#[test]
fn a_sibling_whose_templates_name_its_own_last_parameter_is_not_copied() {
    let t = table(
        "[[route]]\nname = \"item.get\"\nmethods = [\"GET\"]\npath = \"/items/{itemId}/\"\nrequire = [\"item:{itemId}:view\"]\n",
    );
    let p = plan(&t, &[shape("GET", "/items/export", "/items/export")]);
    assert!(
        matches!(p[0].outcome, Outcome::NoSibling { .. }),
        "{:?}",
        p[0]
    );
}

#[test]
fn shapes_the_table_matches_now_or_cannot_express_are_skipped() {
    let t = table(SIBLINGS);
    let p = plan(
        &t,
        &[
            shape("GET", "/orgs/{id}/keys", "/orgs/7/keys"),
            shape("G{T", "/x", "/x"),
        ],
    );
    match &p[0].outcome {
        Outcome::Skipped(why) => assert!(why.contains("now matched by \"keys.list\""), "{why}"),
        o => panic!("{o:?}"),
    }
    assert!(matches!(p[1].outcome, Outcome::Skipped(_)));
}

#[test]
fn a_proposal_that_would_take_an_existing_routes_paths_is_refused() {
    // "/{a}/admin/profile" answers GET /users/admin/profile today; a new
    // "/users/{userId}/profile" would win that path (static first).
    let text = "[[route]]\nname = \"admin.profile\"\nmethods = [\"GET\"]\npath = \"/{tenant}/admin/profile\"\nrequire = [\"admin\"]\n";
    let old = table(text);
    let mut p = plan(
        &old,
        &[shape("GET", "/users/{id}/profile", "/users/1/profile")],
    );
    // Make it active as if a sibling had been found, then check it.
    p[0].outcome = Outcome::Route { sibling: 0 };
    let combined = table(&format!(
        "{text}\n[[route]]\nname = \"x\"\nmethods = [\"GET\"]\npath = \"{}\"\n",
        p[0].path
    ));
    assert!(refuse_takeovers(&old, &combined, &mut p));
    match &p[0].outcome {
        Outcome::Skipped(why) => {
            assert!(
                why.contains("would take /users/admin/profile from \"admin.profile\""),
                "{why}"
            )
        }
        o => panic!("{o:?}"),
    }
    // A proposal beside unrelated routes is kept.
    let other = table("[[route]]\nmethods = [\"GET\"]\npath = \"/teams\"\n");
    let mut p = plan(&other, &[shape("GET", "/users/{id}", "/users/1")]);
    p[0].outcome = Outcome::Route { sibling: 0 };
    let combined = table(&format!(
        "[[route]]\nmethods = [\"GET\"]\npath = \"/teams\"\n[[route]]\nmethods = [\"GET\"]\npath = \"{}\"\n",
        p[0].path
    ));
    assert!(!refuse_takeovers(&other, &combined, &mut p));
    assert!(p[0].is_route());
}
