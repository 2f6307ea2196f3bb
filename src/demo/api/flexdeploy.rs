//! FlexDeploy Credential API v2 style endpoints.
//!
//! As in FlexDeploy's documentation, `inputValue`s are returned as stored
//! (in clear). Errors are `{"message": "..."}` with the status.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::{Target, json_response, query_pairs, target, with_allow};

/// Where the FlexDeploy style API lives.
pub const PREFIX: &str = "/flexdeploy/rest/v2/administration/security/credential";

/// The allowed `credentialScope`s.
const SCOPES: &[&str] = &["ENDPOINT", "INST", "ENVINST"];

/// The id of the first credential created through the API.
const FIRST_NEW_ID: i64 = 11300;

struct Input {
    version: i64,
    value: Value,
    def_id: i64,
}

struct Credential {
    id: i64,
    version: i64,
    name: String,
    active: bool,
    scope: String,
    store_id: i64,
    inputs: Vec<Input>,
}

impl Credential {
    fn to_json(&self) -> Value {
        let inputs: Vec<Value> = self
            .inputs
            .iter()
            .map(|i| {
                json!({
                    "versionNumber": i.version,
                    "inputValue": i.value,
                    "credentialStoreInputDefId": i.def_id,
                })
            })
            .collect();
        json!({
            "credentialId": self.id,
            "versionNumber": self.version,
            "credentialName": self.name,
            "isActive": self.active,
            "credentialScope": self.scope,
            "credentialStoreId": self.store_id,
            "credentialInputs": inputs,
        })
    }
}

/// The FlexDeploy credentials, by id.
pub(super) struct Store {
    credentials: BTreeMap<i64, Credential>,
    next_id: i64,
}

/// A validated POST/PUT body.
struct Full {
    name: String,
    active: bool,
    scope: String,
    store_id: i64,
    /// `(inputValue, credentialStoreInputDefId)`, def ids distinct.
    inputs: Vec<(Value, i64)>,
}

type Result<T> = std::result::Result<T, String>;

impl Store {
    pub(super) fn seeded() -> Self {
        let seed = |id, name: &str, active, scope: &str, store_id, inputs: &[(&str, i64)]| {
            let inputs = inputs
                .iter()
                .map(|&(value, def_id)| Input {
                    version: 1,
                    value: json!(value),
                    def_id,
                })
                .collect();
            let name = name.to_owned();
            let scope = scope.to_owned();
            (
                id,
                Credential {
                    id,
                    version: 1,
                    name,
                    active,
                    scope,
                    store_id,
                    inputs,
                },
            )
        };
        let credentials = BTreeMap::from([
            seed(
                11004,
                "GET Example Name",
                true,
                "ENVINST",
                11000,
                &[("TestPassword", 12000)],
            ),
            seed(
                11104,
                "Build Server Account",
                true,
                "INST",
                11100,
                &[("builder", 12100), ("BuildPassword", 12101)],
            ),
            seed(
                11204,
                "Example SSH Endpoint",
                false,
                "ENDPOINT",
                11000,
                &[("SshPassword", 12000)],
            ),
        ]);
        Store {
            credentials,
            next_id: FIRST_NEW_ID,
        }
    }

    pub(super) fn handle(
        &mut self,
        method: &Method,
        rest: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> Response<Bytes> {
        let result = match (target(rest), method) {
            (Target::Collection, &Method::GET) => self.search(query),
            (Target::Collection, &Method::POST) => self.create(body),
            (Target::Collection, _) => {
                return with_allow(
                    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
                    "GET, POST",
                );
            }
            (Target::Item(seg), m) if [Method::GET, Method::PUT, Method::PATCH].contains(m) => {
                let Ok(id) = seg.parse::<i64>() else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("credential id '{seg}' is not a number"),
                    );
                };
                if !self.credentials.contains_key(&id) {
                    return error(StatusCode::NOT_FOUND, &format!("credential {id} not found"));
                }
                match *m {
                    Method::GET => Ok(self.json(StatusCode::OK, id)),
                    Method::PUT => self.replace(id, body),
                    _ => self.patch(id, body),
                }
            }
            (Target::Item(_), _) => {
                return with_allow(
                    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
                    "GET, PUT, PATCH",
                );
            }
            (Target::Unknown, _) => return error(StatusCode::NOT_FOUND, "no such endpoint"),
        };
        result.unwrap_or_else(|msg| error(StatusCode::BAD_REQUEST, &msg))
    }

    /// `GET ?credentialId=&credentialName=&credentialScope=&credentialStoreId=`:
    /// every filter given must match; parameter names ignore case.
    fn search(&self, query: Option<&str>) -> Result<Response<Bytes>> {
        enum Filter {
            Id(i64),
            Name(String),
            Scope(String),
            Store(i64),
        }
        let mut filters = Vec::new();
        for (name, value) in query_pairs(query) {
            let number = || {
                value
                    .parse::<i64>()
                    .map_err(|_| format!("{name} must be a number"))
            };
            filters.push(match name.to_ascii_lowercase().as_str() {
                "credentialid" => Filter::Id(number()?),
                "credentialname" => Filter::Name(value.to_lowercase()),
                "credentialscope" => Filter::Scope(value),
                "credentialstoreid" => Filter::Store(number()?),
                _ => continue,
            });
        }
        let found: Vec<Value> = self
            .credentials
            .values()
            .filter(|c| {
                filters.iter().all(|f| match f {
                    Filter::Id(id) => c.id == *id,
                    Filter::Name(part) => c.name.to_lowercase().contains(part.as_str()),
                    Filter::Scope(scope) => c.scope.eq_ignore_ascii_case(scope),
                    Filter::Store(id) => c.store_id == *id,
                })
            })
            .map(Credential::to_json)
            .collect();
        Ok(json_response(StatusCode::OK, &Value::Array(found)))
    }

    fn create(&mut self, body: &[u8]) -> Result<Response<Bytes>> {
        let full = parse_full(&object(body)?)?;
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        let inputs = full
            .inputs
            .into_iter()
            .map(|(value, def_id)| Input {
                version: 1,
                value,
                def_id,
            })
            .collect();
        let credential = Credential {
            id,
            version: 1,
            name: full.name,
            active: full.active,
            scope: full.scope,
            store_id: full.store_id,
            inputs,
        };
        self.credentials.insert(id, credential);
        let mut response = self.json(StatusCode::CREATED, id);
        if let Ok(location) = HeaderValue::try_from(format!("{PREFIX}/{id}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    }

    /// PUT: every attribute replaced; inputs not in the body are dropped.
    fn replace(&mut self, id: i64, body: &[u8]) -> Result<Response<Bytes>> {
        let obj = object(body)?;
        check_body_id(&obj, id)?;
        let full = parse_full(&obj)?;
        if let Some(c) = self.credentials.get_mut(&id) {
            let inputs = full
                .inputs
                .into_iter()
                .map(|(value, def_id)| {
                    let old = c.inputs.iter().find(|i| i.def_id == def_id);
                    let version = old.map_or(1, |i| i.version.saturating_add(1));
                    Input {
                        version,
                        value,
                        def_id,
                    }
                })
                .collect();
            c.version = c.version.saturating_add(1);
            c.name = full.name;
            c.active = full.active;
            c.scope = full.scope;
            c.store_id = full.store_id;
            c.inputs = inputs;
        }
        Ok(self.json(StatusCode::OK, id))
    }

    /// PATCH: non-null attributes change; scope and store are locked; inputs
    /// are merged by `credentialStoreInputDefId` (updated or appended, none
    /// removed). Validates everything before changing anything.
    fn patch(&mut self, id: i64, body: &[u8]) -> Result<Response<Bytes>> {
        let obj = object(body)?;
        check_body_id(&obj, id)?;
        let name = present(&obj, "credentialName")
            .map(name_field)
            .transpose()?;
        let active = present(&obj, "isActive").map(active_field).transpose()?;
        let scope = present(&obj, "credentialScope")
            .map(scope_field)
            .transpose()?;
        let store = present(&obj, "credentialStoreId")
            .map(|v| long_field("credentialStoreId", v))
            .transpose()?;
        let inputs = present(&obj, "credentialInputs")
            .map(inputs_field)
            .transpose()?;
        let Some(c) = self.credentials.get_mut(&id) else {
            return Ok(error(
                StatusCode::NOT_FOUND,
                &format!("credential {id} not found"),
            ));
        };
        if scope.is_some_and(|s| s != c.scope) {
            return Err("credentialScope cannot be changed by PATCH".to_owned());
        }
        if store.is_some_and(|s| s != c.store_id) {
            return Err("credentialStoreId cannot be changed by PATCH".to_owned());
        }
        if let Some(name) = name {
            c.name = name;
        }
        if let Some(active) = active {
            c.active = active;
        }
        for (value, def_id) in inputs.unwrap_or_default() {
            match c.inputs.iter_mut().find(|i| i.def_id == def_id) {
                Some(i) => {
                    i.value = value;
                    i.version = i.version.saturating_add(1);
                }
                None => c.inputs.push(Input {
                    version: 1,
                    value,
                    def_id,
                }),
            }
        }
        c.version = c.version.saturating_add(1);
        Ok(self.json(StatusCode::OK, id))
    }

    /// The credential `id` as JSON with `status` (404 if it is gone).
    fn json(&self, status: StatusCode, id: i64) -> Response<Bytes> {
        match self.credentials.get(&id) {
            Some(c) => json_response(status, &c.to_json()),
            None => error(StatusCode::NOT_FOUND, &format!("credential {id} not found")),
        }
    }
}

fn error(status: StatusCode, message: &str) -> Response<Bytes> {
    json_response(status, &json!({ "message": message }))
}

fn object(body: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(obj)) => Ok(obj),
        Ok(_) => Err("request body must be a JSON object".to_owned()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

/// `key`'s value unless missing or null.
fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn parse_full(obj: &Map<String, Value>) -> Result<Full> {
    let required = |key: &str| present(obj, key).ok_or_else(|| format!("{key} is required"));
    Ok(Full {
        name: name_field(required("credentialName")?)?,
        active: present(obj, "isActive")
            .map(active_field)
            .transpose()?
            .unwrap_or(true),
        scope: scope_field(required("credentialScope")?)?,
        store_id: long_field("credentialStoreId", required("credentialStoreId")?)?,
        inputs: inputs_field(required("credentialInputs")?)?,
    })
}

/// A `credentialId` in a PUT/PATCH body must name the URL's credential.
fn check_body_id(obj: &Map<String, Value>, id: i64) -> Result<()> {
    match present(obj, "credentialId") {
        Some(v) if v.as_i64() != Some(id) => {
            Err(format!("credentialId in the body does not match {id}"))
        }
        _ => Ok(()),
    }
}

fn name_field(v: &Value) -> Result<String> {
    match v.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(s.to_owned()),
        _ => Err("credentialName must be a non-empty string".to_owned()),
    }
}

fn active_field(v: &Value) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| "isActive must be true or false".to_owned())
}

/// One of [`SCOPES`], any case; returned upper case.
fn scope_field(v: &Value) -> Result<String> {
    v.as_str()
        .and_then(|s| SCOPES.iter().find(|scope| scope.eq_ignore_ascii_case(s)))
        .map(|s| (*s).to_owned())
        .ok_or_else(|| format!("credentialScope must be one of {}", SCOPES.join(", ")))
}

fn long_field(key: &str, v: &Value) -> Result<i64> {
    v.as_i64()
        .ok_or_else(|| format!("{key} must be an integer"))
}

fn inputs_field(v: &Value) -> Result<Vec<(Value, i64)>> {
    let Some(items) = v.as_array() else {
        return Err("credentialInputs must be a list".to_owned());
    };
    let mut inputs: Vec<(Value, i64)> = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let Some(item) = item.as_object() else {
            return Err(format!("credentialInputs[{n}] must be an object"));
        };
        let Some(value) = present(item, "inputValue") else {
            return Err(format!("credentialInputs[{n}].inputValue is required"));
        };
        let def_id = match present(item, "credentialStoreInputDefId") {
            Some(d) => long_field("credentialStoreInputDefId", d)?,
            None => {
                return Err(format!(
                    "credentialInputs[{n}].credentialStoreInputDefId is required"
                ));
            }
        };
        if inputs.iter().any(|(_, d)| *d == def_id) {
            return Err(format!("credentialStoreInputDefId {def_id} is given twice"));
        }
        inputs.push((value.clone(), def_id));
    }
    Ok(inputs)
}
