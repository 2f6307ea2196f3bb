use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::genesys::MASK;
use super::{ExampleApi, FLEXDEPLOY_PREFIX as FD, GENESYS_PREFIX as GC};

/// Sends one request; checks the content type of every non-empty answer.
fn call(api: &ExampleApi, method: Method, uri: &str, body: &str) -> Response<Bytes> {
    let (path, query) = match uri.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (uri, None),
    };
    let response = api.handle(&method, path, query, body.as_bytes());
    if !response.body().is_empty() {
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(&b"application/json"[..]),
            "{method} {uri}"
        );
    }
    response
}

/// Sends one request, expects `status`, returns the JSON body.
fn expect(api: &ExampleApi, method: Method, uri: &str, body: &str, status: StatusCode) -> Value {
    let response = call(api, method.clone(), uri, body);
    let text = String::from_utf8_lossy(response.body()).into_owned();
    assert_eq!(response.status(), status, "{method} {uri}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {uri}: not JSON ({e}): {text}"))
}

fn allow(response: &Response<Bytes>) -> &str {
    response
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Asserts a Genesys error body with `status` and `code`.
fn genesys_error(v: &Value, status: u16, code: &str) {
    assert_eq!(v["status"], status, "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(
        v["contextId"].as_str().is_some_and(|c| c.len() == 36),
        "{v}"
    );
    assert_eq!(v["details"], json!([]));
    assert_eq!(v["errors"], json!([]));
}

/// Asserts a FlexDeploy error body.
fn flex_error(v: &Value) {
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

const BASIC_ID: &str = "97f652b5-eb50-4989-9d99-9ed9d6cd5fed";
const OAUTH_ID: &str = "b6e2d4a8-1f3c-4a5e-8d7b-9c0e2f4a6b81";

fn basic(name: &str, user: &str, password: &str) -> String {
    json!({
        "name": name,
        "type": { "name": "basicAuth" },
        "credentialFields": { "userName": user, "password": password },
    })
    .to_string()
}

// ---- Genesys ----

#[test]
fn genesys_list_returns_credential_infos() {
    let api = ExampleApi::new();
    let v = expect(&api, Method::GET, GC, "", StatusCode::OK);
    assert_eq!(v["pageSize"], 25);
    assert_eq!(v["pageNumber"], 1);
    assert_eq!(v["total"], 3);
    let entities = v["entities"].as_array().cloned().unwrap_or_default();
    assert_eq!(entities.len(), 3);
    assert_eq!(
        entities[0],
        json!({
            "id": BASIC_ID,
            "name": "Integration-2cefbe68-cdd8-4f21-89ab-6f3036bafd3d",
            "createdDate": "2019-12-17T16:16:21Z",
            "modifiedDate": "2019-12-17T16:16:21Z",
            "type": { "name": "basicAuth" },
            "selfUri": format!("{GC}/{BASIC_ID}"),
        })
    );
    assert!(entities.iter().all(|e| e.get("credentialFields").is_none()));
}

#[test]
fn genesys_list_pages() {
    let api = ExampleApi::new();
    let v = expect(
        &api,
        Method::GET,
        &format!("{GC}?pageSize=1&pageNumber=2"),
        "",
        StatusCode::OK,
    );
    assert_eq!(v["pageSize"], 1);
    assert_eq!(v["pageNumber"], 2);
    assert_eq!(v["total"], 3);
    assert_eq!(v["entities"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["entities"][0]["name"], "CRM web service");
    for bad in [
        "pageSize=0",
        "pageNumber=x",
        "pageSize=101",
        "pageNumber=99999999999999999999999",
    ] {
        let v = expect(
            &api,
            Method::GET,
            &format!("{GC}?{bad}"),
            "",
            StatusCode::BAD_REQUEST,
        );
        genesys_error(&v, 400, "bad.request");
    }
}

#[test]
fn genesys_types_include_basic_auth_with_sensitive_password() {
    let api = ExampleApi::new();
    let v = expect(
        &api,
        Method::GET,
        &format!("{GC}/types"),
        "",
        StatusCode::OK,
    );
    let types = v["entities"].as_array().cloned().unwrap_or_default();
    assert!(types.len() >= 2, "{v}");
    let basic = types
        .iter()
        .find(|t| t["name"] == "basicAuth")
        .cloned()
        .unwrap_or_default();
    assert_eq!(basic["properties"]["password"]["sensitive"], true);
    assert_eq!(basic["properties"]["userName"]["type"], "string");
    assert!(basic["properties"]["userName"].get("sensitive").is_none());
    assert_eq!(basic["displayOrder"], json!(["userName", "password"]));
    assert_eq!(basic["required"], json!(["userName"]));
    assert!(types.iter().any(|t| t["name"] == "userDefinedOAuth"));
}

#[test]
fn genesys_get_masks_sensitive_fields() {
    let api = ExampleApi::new();
    let v = expect(
        &api,
        Method::GET,
        &format!("{GC}/{BASIC_ID}"),
        "",
        StatusCode::OK,
    );
    assert_eq!(v["id"], BASIC_ID);
    assert_eq!(v["type"]["name"], "basicAuth");
    assert_eq!(
        v["credentialFields"],
        json!({ "userName": "loginname", "password": MASK })
    );
    let v = expect(
        &api,
        Method::GET,
        &format!("{GC}/{OAUTH_ID}"),
        "",
        StatusCode::OK,
    );
    assert_eq!(v["credentialFields"]["clientSecret"], MASK);
    assert_eq!(v["credentialFields"]["clientId"], "ticketing-client");
    let raw = call(&api, Method::GET, &format!("{GC}/{OAUTH_ID}"), "");
    assert!(!String::from_utf8_lossy(raw.body()).contains("oauth-demo-secret"));
}

#[test]
fn genesys_unknown_credential_is_404() {
    let api = ExampleApi::new();
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        let body = basic("x", "u", "p");
        let v = expect(
            &api,
            method,
            &format!("{GC}/nope"),
            &body,
            StatusCode::NOT_FOUND,
        );
        genesys_error(&v, 404, "not.found");
    }
    let v = expect(
        &api,
        Method::GET,
        &format!("{GC}/{BASIC_ID}/extra"),
        "",
        StatusCode::NOT_FOUND,
    );
    genesys_error(&v, 404, "not.found");
}

#[test]
fn genesys_post_creates_a_credential() {
    let api = ExampleApi::new();
    let body = basic("New one", "alice", "s3cret");
    let info = expect(&api, Method::POST, GC, &body, StatusCode::OK);
    let id = info["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(id.len(), 36, "{info}");
    assert_eq!(id.matches('-').count(), 4, "{info}");
    assert_eq!(info["name"], "New one");
    assert_eq!(info["type"], json!({ "name": "basicAuth" }));
    assert_eq!(info["selfUri"], format!("{GC}/{id}"));
    assert_eq!(info["createdDate"], info["modifiedDate"]);
    assert!(info.get("credentialFields").is_none());
    let second = expect(&api, Method::POST, GC, &body, StatusCode::OK);
    assert_ne!(second["id"], info["id"]);

    let v = expect(&api, Method::GET, &format!("{GC}/{id}"), "", StatusCode::OK);
    assert_eq!(
        v["credentialFields"],
        json!({ "userName": "alice", "password": MASK })
    );
    let list = expect(&api, Method::GET, GC, "", StatusCode::OK);
    assert_eq!(list["total"], 5);
}

#[test]
fn genesys_post_rejects_bad_bodies() {
    let api = ExampleApi::new();
    let no_user = json!({ "name": "n", "type": { "name": "basicAuth" }, "credentialFields": { "password": "p" } });
    let bad = [
        "{not json".to_owned(),
        String::new(),
        "[1,2]".to_owned(),
        json!({ "type": { "name": "basicAuth" }, "credentialFields": { "userName": "u" } }).to_string(),
        json!({ "name": " ", "type": { "name": "basicAuth" }, "credentialFields": { "userName": "u" } })
            .to_string(),
        json!({ "name": "n", "credentialFields": { "userName": "u" } }).to_string(),
        json!({ "name": "n", "type": { "name": "kerberos" }, "credentialFields": {} }).to_string(),
        no_user.to_string(),
        json!({ "name": "n", "type": { "name": "userDefinedOAuth" }, "credentialFields": { "clientId": "c" } })
            .to_string(),
        json!({ "name": "n", "type": { "name": "basicAuth" }, "credentialFields": { "userName": 7 } })
            .to_string(),
        json!({ "name": "n", "type": { "name": "basicAuth" }, "credentialFields": "u" }).to_string(),
    ];
    for body in &bad {
        let v = expect(&api, Method::POST, GC, body, StatusCode::BAD_REQUEST);
        genesys_error(&v, 400, "bad.request");
    }
    let list = expect(&api, Method::GET, GC, "", StatusCode::OK);
    assert_eq!(list["total"], 3, "nothing was created");
}

#[test]
fn genesys_put_replaces_a_credential() {
    let api = ExampleApi::new();
    let uri = format!("{GC}/{BASIC_ID}");
    let info = expect(
        &api,
        Method::PUT,
        &uri,
        &basic("Renamed", "bob", "pw"),
        StatusCode::OK,
    );
    assert_eq!(info["id"], BASIC_ID);
    assert_eq!(info["name"], "Renamed");
    assert_eq!(info["createdDate"], "2019-12-17T16:16:21Z");
    assert_ne!(info["modifiedDate"], "2019-12-17T16:16:21Z");
    let v = expect(&api, Method::GET, &uri, "", StatusCode::OK);
    assert_eq!(v["name"], "Renamed");
    assert_eq!(v["credentialFields"]["userName"], "bob");

    let v = expect(
        &api,
        Method::PUT,
        &uri,
        "{\"name\":",
        StatusCode::BAD_REQUEST,
    );
    genesys_error(&v, 400, "bad.request");
    let v = expect(
        &api,
        Method::PUT,
        &uri,
        &json!({ "name": "x" }).to_string(),
        StatusCode::BAD_REQUEST,
    );
    genesys_error(&v, 400, "bad.request");
    let v = expect(&api, Method::GET, &uri, "", StatusCode::OK);
    assert_eq!(v["name"], "Renamed", "a rejected PUT changes nothing");
}

#[test]
fn genesys_delete_removes_a_credential() {
    let api = ExampleApi::new();
    let uri = format!("{GC}/{BASIC_ID}");
    let response = call(&api, Method::DELETE, &uri, "");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.body().is_empty());
    let v = expect(&api, Method::GET, &uri, "", StatusCode::NOT_FOUND);
    genesys_error(&v, 404, "not.found");
    let v = expect(&api, Method::DELETE, &uri, "", StatusCode::NOT_FOUND);
    genesys_error(&v, 404, "not.found");
    assert_eq!(
        expect(&api, Method::GET, GC, "", StatusCode::OK)["total"],
        2
    );
}

#[test]
fn genesys_wrong_method_is_405_with_allow() {
    let api = ExampleApi::new();
    for (method, uri, allowed) in [
        (Method::DELETE, GC.to_owned(), "GET, POST"),
        (Method::PUT, format!("{GC}/types"), "GET"),
        (
            Method::PATCH,
            format!("{GC}/{BASIC_ID}"),
            "GET, PUT, DELETE",
        ),
        (Method::POST, format!("{GC}/{BASIC_ID}"), "GET, PUT, DELETE"),
    ] {
        let response = call(&api, method.clone(), &uri, "");
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        assert_eq!(allow(&response), allowed, "{method} {uri}");
        let v: Value = serde_json::from_slice(response.body()).unwrap_or_default();
        genesys_error(&v, 405, "method.not.allowed");
    }
}

// ---- FlexDeploy ----

fn seed_11004() -> Value {
    json!({
        "credentialId": 11004,
        "versionNumber": 1,
        "credentialName": "GET Example Name",
        "isActive": true,
        "credentialScope": "ENVINST",
        "credentialStoreId": 11000,
        "credentialInputs": [
            { "versionNumber": 1, "inputValue": "TestPassword", "credentialStoreInputDefId": 12000 }
        ],
    })
}

fn new_flex() -> Value {
    json!({
        "credentialName": "Posted",
        "credentialScope": "endpoint",
        "credentialStoreId": 11000,
        "credentialInputs": [ { "inputValue": "pw", "credentialStoreInputDefId": 12000 } ],
    })
}

/// The ids of a search answer.
fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["credentialId"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn flex_get_by_id_matches_the_documented_example() {
    let api = ExampleApi::new();
    let v = expect(
        &api,
        Method::GET,
        &format!("{FD}/11004"),
        "",
        StatusCode::OK,
    );
    assert_eq!(v, seed_11004());
}

#[test]
fn flex_get_by_id_errors() {
    let api = ExampleApi::new();
    flex_error(&expect(
        &api,
        Method::GET,
        &format!("{FD}/11005"),
        "",
        StatusCode::NOT_FOUND,
    ));
    for id in ["abc", "1.5", "99999999999999999999999", "%31"] {
        let v = expect(
            &api,
            Method::GET,
            &format!("{FD}/{id}"),
            "",
            StatusCode::BAD_REQUEST,
        );
        flex_error(&v);
    }
    flex_error(&expect(
        &api,
        Method::GET,
        &format!("{FD}/11004/x"),
        "",
        StatusCode::NOT_FOUND,
    ));
    flex_error(&expect(
        &api,
        Method::GET,
        &format!("{FD}/"),
        "",
        StatusCode::NOT_FOUND,
    ));
}

#[test]
fn flex_search_filters() {
    let api = ExampleApi::new();
    let search = |q: &str| {
        ids(&expect(
            &api,
            Method::GET,
            &format!("{FD}{q}"),
            "",
            StatusCode::OK,
        ))
    };
    assert_eq!(search(""), [11004, 11104, 11204]);
    assert_eq!(search("?"), [11004, 11104, 11204]);
    // Name: contains, ignoring case.
    assert_eq!(search("?credentialName=example"), [11004, 11204]);
    assert_eq!(search("?credentialName=EXAMPLE%20NAME"), [11004]);
    assert_eq!(search("?credentialName=get+example"), [11004]);
    assert_eq!(
        search("?credentialName=nothing-like-this"),
        Vec::<i64>::new()
    );
    // Parameter names ignore case.
    assert_eq!(search("?CREDENTIALNAME=server"), [11104]);
    assert_eq!(search("?credentialscope=inst"), [11104]);
    // Scope: equals ignoring case (INST is not ENVINST).
    assert_eq!(search("?credentialScope=envinst"), [11004]);
    assert_eq!(search("?credentialStoreId=11000"), [11004, 11204]);
    assert_eq!(search("?credentialId=11104"), [11104]);
    // All filters must match.
    assert_eq!(
        search("?credentialName=example&credentialScope=ENDPOINT"),
        [11204]
    );
    assert_eq!(
        search("?credentialName=GET&credentialStoreId=11100"),
        Vec::<i64>::new()
    );
    // Unknown parameters are ignored.
    assert_eq!(search("?unrelated=1"), [11004, 11104, 11204]);
    // The full objects come back.
    let v = expect(
        &api,
        Method::GET,
        &format!("{FD}?credentialId=11004"),
        "",
        StatusCode::OK,
    );
    assert_eq!(v, json!([seed_11004()]));
}

#[test]
fn flex_search_rejects_non_numeric_ids() {
    let api = ExampleApi::new();
    for q in [
        "credentialId=abc",
        "credentialStoreId=1x",
        "credentialId=",
        "CredentialStoreId=99999999999999999999",
    ] {
        flex_error(&expect(
            &api,
            Method::GET,
            &format!("{FD}?{q}"),
            "",
            StatusCode::BAD_REQUEST,
        ));
    }
}

#[test]
fn flex_post_creates_with_location() {
    let api = ExampleApi::new();
    let response = call(&api, Method::POST, FD, &new_flex().to_string());
    assert_eq!(response.status(), StatusCode::CREATED);
    let v: Value = serde_json::from_slice(response.body()).unwrap_or_default();
    let id = v["credentialId"].as_i64().unwrap_or_default();
    assert!(![0, 11004, 11104, 11204].contains(&id), "{v}");
    assert_eq!(v["versionNumber"], 1);
    assert_eq!(v["isActive"], true);
    assert_eq!(v["credentialScope"], "ENDPOINT");
    assert_eq!(
        v["credentialInputs"],
        json!([{ "versionNumber": 1, "inputValue": "pw", "credentialStoreInputDefId": 12000 }])
    );
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok());
    assert_eq!(location, Some(format!("{FD}/{id}").as_str()));
    assert_eq!(
        expect(&api, Method::GET, &format!("{FD}/{id}"), "", StatusCode::OK),
        v
    );

    let mut inactive = new_flex();
    inactive["isActive"] = json!(false);
    let w = expect(
        &api,
        Method::POST,
        FD,
        &inactive.to_string(),
        StatusCode::CREATED,
    );
    assert_eq!(w["isActive"], false);
    assert_ne!(w["credentialId"], v["credentialId"]);
}

/// Bodies POST and PUT must refuse.
fn bad_full_bodies() -> Vec<String> {
    let mut bodies = vec!["{oops".to_owned(), String::new(), "\"str\"".to_owned()];
    for key in [
        "credentialName",
        "credentialScope",
        "credentialStoreId",
        "credentialInputs",
    ] {
        let mut missing = new_flex();
        missing.as_object_mut().map(|o| o.remove(key));
        bodies.push(missing.to_string());
        let mut null = new_flex();
        null[key] = Value::Null;
        bodies.push(null.to_string());
    }
    let broken = [
        ("credentialScope", json!("GLOBAL")),
        ("credentialName", json!("")),
        ("credentialStoreId", json!("11000")),
        ("credentialStoreId", json!(1e30)),
        ("isActive", json!("yes")),
        ("credentialInputs", json!({})),
        (
            "credentialInputs",
            json!([{ "credentialStoreInputDefId": 12000 }]),
        ),
        ("credentialInputs", json!([{ "inputValue": "v" }])),
        (
            "credentialInputs",
            json!([{ "inputValue": "v", "credentialStoreInputDefId": "x" }]),
        ),
        ("credentialInputs", json!(["v"])),
        (
            "credentialInputs",
            json!([
                { "inputValue": "a", "credentialStoreInputDefId": 1 },
                { "inputValue": "b", "credentialStoreInputDefId": 1 }
            ]),
        ),
    ];
    for (key, value) in broken {
        let mut body = new_flex();
        body[key] = value;
        bodies.push(body.to_string());
    }
    bodies
}

#[test]
fn flex_post_rejects_bad_bodies() {
    let api = ExampleApi::new();
    for body in bad_full_bodies() {
        let response = call(&api, Method::POST, FD, &body);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        flex_error(&serde_json::from_slice(response.body()).unwrap_or_default());
    }
    assert_eq!(
        ids(&expect(&api, Method::GET, FD, "", StatusCode::OK)).len(),
        3
    );
}

#[test]
fn flex_put_replaces_everything() {
    let api = ExampleApi::new();
    let uri = format!("{FD}/11104");
    let body = json!({
        "credentialName": "Replaced",
        "credentialScope": "ENVINST",
        "credentialStoreId": 11000,
        "credentialInputs": [
            { "inputValue": "new-pw", "credentialStoreInputDefId": 12101 },
            { "inputValue": "token", "credentialStoreInputDefId": 12200 }
        ],
    });
    let v = expect(&api, Method::PUT, &uri, &body.to_string(), StatusCode::OK);
    assert_eq!(
        v,
        json!({
            "credentialId": 11104,
            "versionNumber": 2,
            "credentialName": "Replaced",
            "isActive": true,
            "credentialScope": "ENVINST",
            "credentialStoreId": 11000,
            "credentialInputs": [
                { "versionNumber": 2, "inputValue": "new-pw", "credentialStoreInputDefId": 12101 },
                { "versionNumber": 1, "inputValue": "token", "credentialStoreInputDefId": 12200 }
            ],
        })
    );
    assert_eq!(expect(&api, Method::GET, &uri, "", StatusCode::OK), v);

    let v = expect(
        &api,
        Method::PUT,
        &format!("{FD}/999"),
        &body.to_string(),
        StatusCode::NOT_FOUND,
    );
    flex_error(&v);
    flex_error(&expect(
        &api,
        Method::PUT,
        &format!("{FD}/x"),
        &body.to_string(),
        StatusCode::BAD_REQUEST,
    ));
    let mut other_id = body.clone();
    other_id["credentialId"] = json!(11004);
    flex_error(&expect(
        &api,
        Method::PUT,
        &uri,
        &other_id.to_string(),
        StatusCode::BAD_REQUEST,
    ));
    for bad in bad_full_bodies() {
        let response = call(&api, Method::PUT, &uri, &bad);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        expect(&api, Method::GET, &uri, "", StatusCode::OK)["versionNumber"],
        2
    );
}

#[test]
fn flex_patch_changes_only_given_fields_and_merges_inputs() {
    let api = ExampleApi::new();
    let uri = format!("{FD}/11104");
    let body = json!({
        "credentialName": "Patched",
        "isActive": null,
        "credentialScope": "inst",
        "credentialStoreId": 11100,
        "credentialInputs": [
            { "inputValue": "NewBuildPassword", "credentialStoreInputDefId": 12101 },
            { "inputValue": "extra", "credentialStoreInputDefId": 12102 }
        ],
    });
    let v = expect(&api, Method::PATCH, &uri, &body.to_string(), StatusCode::OK);
    assert_eq!(
        v,
        json!({
            "credentialId": 11104,
            "versionNumber": 2,
            "credentialName": "Patched",
            "isActive": true,
            "credentialScope": "INST",
            "credentialStoreId": 11100,
            "credentialInputs": [
                { "versionNumber": 1, "inputValue": "builder", "credentialStoreInputDefId": 12100 },
                { "versionNumber": 2, "inputValue": "NewBuildPassword", "credentialStoreInputDefId": 12101 },
                { "versionNumber": 1, "inputValue": "extra", "credentialStoreInputDefId": 12102 }
            ],
        })
    );
    let v = expect(
        &api,
        Method::PATCH,
        &uri,
        r#"{"isActive": false}"#,
        StatusCode::OK,
    );
    assert_eq!(v["isActive"], false);
    assert_eq!(v["credentialName"], "Patched");
    assert_eq!(v["versionNumber"], 3);
    assert_eq!(v["credentialInputs"].as_array().map(Vec::len), Some(3));
}

#[test]
fn flex_patch_refuses_locked_fields_and_bad_bodies() {
    let api = ExampleApi::new();
    let uri = format!("{FD}/11004");
    for body in [
        json!({ "credentialScope": "INST", "credentialName": "changed" }).to_string(),
        json!({ "credentialStoreId": 11100, "credentialName": "changed" }).to_string(),
        json!({ "credentialScope": "NOPE" }).to_string(),
        json!({ "credentialName": 5 }).to_string(),
        json!({ "credentialId": 11104 }).to_string(),
        json!({ "credentialInputs": [{ "inputValue": "v" }], "credentialName": "changed" })
            .to_string(),
        "{bad json".to_owned(),
        "null".to_owned(),
    ] {
        let v = expect(&api, Method::PATCH, &uri, &body, StatusCode::BAD_REQUEST);
        flex_error(&v);
    }
    assert_eq!(
        expect(&api, Method::GET, &uri, "", StatusCode::OK),
        seed_11004(),
        "nothing changed"
    );
    flex_error(&expect(
        &api,
        Method::PATCH,
        &format!("{FD}/42"),
        "{}",
        StatusCode::NOT_FOUND,
    ));
    flex_error(&expect(
        &api,
        Method::PATCH,
        &format!("{FD}/4x2"),
        "{}",
        StatusCode::BAD_REQUEST,
    ));
}

#[test]
fn flex_wrong_method_is_405_with_allow() {
    let api = ExampleApi::new();
    for (method, uri, allowed) in [
        (Method::DELETE, format!("{FD}/11004"), "GET, PUT, PATCH"),
        (Method::POST, format!("{FD}/11004"), "GET, PUT, PATCH"),
        (Method::PATCH, FD.to_owned(), "GET, POST"),
        (Method::DELETE, FD.to_owned(), "GET, POST"),
    ] {
        let response = call(&api, method.clone(), &uri, "");
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}"
        );
        assert_eq!(allow(&response), allowed, "{method} {uri}");
        flex_error(&serde_json::from_slice(response.body()).unwrap_or_default());
    }
    assert_eq!(
        expect(
            &api,
            Method::GET,
            &format!("{FD}/11004"),
            "",
            StatusCode::OK
        ),
        seed_11004()
    );
}

// ---- Everything else ----

#[test]
fn unknown_paths_are_404_json() {
    let api = ExampleApi::new();
    for uri in [
        "/",
        "/api/v2/integrations",
        "/api/v2/integrations/credentialsX",
        "/flexdeploy/rest/v2/x",
        "",
    ] {
        let v = expect(&api, Method::GET, uri, "", StatusCode::NOT_FOUND);
        assert!(v["message"].is_string(), "{uri}: {v}");
    }
}

fn any_method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::PATCH),
        Just(Method::DELETE),
        Just(Method::HEAD),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::default())]

    /// Whatever arrives, the answer is a status below 500 and, unless
    /// empty, JSON.
    #[test]
    fn any_input_gets_a_client_answer(
        method in any_method(),
        prefix in prop_oneof![Just(GC), Just(FD), Just("")],
        tail in "(/[a-zA-Z0-9%.+-]{0,24}){0,3}",
        query in proptest::option::of("[a-zA-Z0-9=&%+]{0,40}"),
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            Just(new_flex().to_string().into_bytes()),
            Just(basic("p", "u", "pw").into_bytes()),
            Just(br#"{"credentialInputs":[{"inputValue":1,"credentialStoreInputDefId":1e400}]}"#.to_vec()),
        ],
    ) {
        let api = ExampleApi::new();
        let path = format!("{prefix}{tail}");
        let response = api.handle(&method, &path, query.as_deref(), &body);
        prop_assert!(response.status().as_u16() < 500);
        if !response.body().is_empty() {
            prop_assert!(serde_json::from_slice::<Value>(response.body()).is_ok());
        }
    }
}

// ---- serve ----

#[tokio::test]
async fn serve_answers_http_and_stops_on_shutdown() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api = ExampleApi::new();
    let server = tokio::spawn(Arc::clone(&api).serve(listener, async {
        let _ = stop_rx.await;
    }));

    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let client = tokio::spawn(conn);
    let request = http::Request::get(format!("{FD}?credentialName=get%20EXAMPLE"))
        .header(header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v, json!([seed_11004()]));

    // The connection stays open (keep-alive); the server keeps running.
    tokio::task::yield_now().await;
    assert!(!server.is_finished());

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    // The idle keep-alive connection was closed, and nothing listens any more.
    tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
