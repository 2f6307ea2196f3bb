//! Genesys Cloud style `/api/v2/integrations/credentials` endpoints.
//!
//! `GET /{id}` returns `credentialFields` with every field its type marks
//! `sensitive` masked as [`MASK`] (present, so a client can see it is set,
//! but never in clear). Lists and write answers are `CredentialInfo`s, which
//! carry no fields at all.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::{Target, json_response, now_rfc3339, query_pairs, target, with_allow};

/// Where the Genesys style API lives.
pub const PREFIX: &str = "/api/v2/integrations/credentials";

/// What a sensitive credential field reads as.
pub(super) const MASK: &str = "********";

/// First group of the ids of created credentials.
const CREDENTIAL_ID_PREFIX: &str = "d3e0c0de";

/// Default and largest `pageSize` of the list.
const DEFAULT_PAGE_SIZE: usize = 25;
const MAX_PAGE_SIZE: usize = 100;

struct Property {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    sensitive: bool,
}

/// A credential type; `properties` are in display order.
struct CredentialType {
    name: &'static str,
    properties: &'static [Property],
    required: &'static [&'static str],
}

const fn prop(name: &'static str, title: &'static str, description: &'static str) -> Property {
    Property {
        name,
        title,
        description,
        sensitive: false,
    }
}

const fn secret(name: &'static str, title: &'static str, description: &'static str) -> Property {
    Property {
        name,
        title,
        description,
        sensitive: true,
    }
}

const TYPES: &[CredentialType] = &[
    CredentialType {
        name: "basicAuth",
        properties: &[
            prop(
                "userName",
                "Username",
                "The username used for authentication.",
            ),
            secret(
                "password",
                "Password",
                "The password used for authentication.",
            ),
        ],
        required: &["userName"],
    },
    CredentialType {
        name: "userDefinedOAuth",
        properties: &[
            prop("clientId", "Client ID", "The OAuth client id."),
            secret("clientSecret", "Client Secret", "The OAuth client secret."),
            prop("loginUrl", "Login URL", "The OAuth token endpoint."),
        ],
        required: &["clientId", "clientSecret", "loginUrl"],
    },
];

impl CredentialType {
    fn find(name: &str) -> Option<&'static CredentialType> {
        TYPES.iter().find(|t| t.name == name)
    }

    fn is_sensitive(&self, field: &str) -> bool {
        self.properties
            .iter()
            .any(|p| p.sensitive && p.name == field)
    }

    fn to_json(&self) -> Value {
        let mut properties = Map::new();
        for p in self.properties {
            let mut v = json!({ "type": "string", "title": p.title, "description": p.description });
            if p.sensitive {
                v["sensitive"] = json!(true);
                v["confirm"] = json!(true);
            }
            properties.insert(p.name.to_owned(), v);
        }
        let order: Vec<&str> = self.properties.iter().map(|p| p.name).collect();
        json!({
            "name": self.name,
            "properties": properties,
            "displayOrder": order,
            "required": self.required,
        })
    }
}

struct Credential {
    id: String,
    name: String,
    created: String,
    modified: String,
    kind: &'static CredentialType,
    fields: Map<String, Value>,
}

impl Credential {
    /// `CredentialInfo`.
    fn info(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "createdDate": self.created,
            "modifiedDate": self.modified,
            "type": { "name": self.kind.name },
            "selfUri": format!("{PREFIX}/{}", self.id),
        })
    }

    /// `Credential`, sensitive fields masked.
    fn full(&self) -> Value {
        let fields: Map<String, Value> = self
            .fields
            .iter()
            .map(|(k, v)| {
                let v = if self.kind.is_sensitive(k) {
                    json!(MASK)
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        let mut v = self.info();
        v["credentialFields"] = Value::Object(fields);
        v
    }
}

/// The Genesys credentials, in creation order.
pub(super) struct Store {
    credentials: Vec<Credential>,
    /// Feeds new credential ids and error `contextId`s.
    counter: u64,
}

/// A request body that passed validation.
struct Body {
    name: String,
    kind: &'static CredentialType,
    fields: Map<String, Value>,
}

impl Store {
    pub(super) fn seeded() -> Self {
        let seed = |id: &str, name: &str, created: &str, kind: &str, fields: Value| {
            Some(Credential {
                id: id.to_owned(),
                name: name.to_owned(),
                created: created.to_owned(),
                modified: created.to_owned(),
                kind: CredentialType::find(kind)?,
                fields: match fields {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
            })
        };
        let credentials = [
            seed(
                "97f652b5-eb50-4989-9d99-9ed9d6cd5fed",
                "Integration-2cefbe68-cdd8-4f21-89ab-6f3036bafd3d",
                "2019-12-17T16:16:21Z",
                "basicAuth",
                json!({ "userName": "loginname", "password": "p@ssword" }),
            ),
            seed(
                "3c9a1f0e-5b7d-4e2a-9c61-2f8e4d7b0a15",
                "CRM web service",
                "2024-07-01T09:00:00Z",
                "basicAuth",
                json!({ "userName": "crm-svc", "password": "crm-demo-secret" }),
            ),
            seed(
                "b6e2d4a8-1f3c-4a5e-8d7b-9c0e2f4a6b81",
                "Ticketing OAuth client",
                "2024-07-02T10:30:00Z",
                "userDefinedOAuth",
                json!({
                    "clientId": "ticketing-client",
                    "clientSecret": "oauth-demo-secret",
                    "loginUrl": "https://login.example.com/oauth/token",
                }),
            ),
        ];
        Store {
            credentials: credentials.into_iter().flatten().collect(),
            counter: 0,
        }
    }

    pub(super) fn handle(
        &mut self,
        method: &Method,
        rest: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> Response<Bytes> {
        match (target(rest), method) {
            (Target::Collection, &Method::GET) => self.list(query),
            (Target::Collection, &Method::POST) => self.create(body),
            (Target::Collection, _) => self.not_allowed("GET, POST"),
            (Target::Item("types"), &Method::GET) => {
                let entities: Vec<Value> = TYPES.iter().map(CredentialType::to_json).collect();
                json_response(StatusCode::OK, &json!({ "entities": entities }))
            }
            (Target::Item("types"), _) => self.not_allowed("GET"),
            (Target::Item(id), &Method::GET) => match self.position(id) {
                Some(i) => json_response(StatusCode::OK, &self.credentials[i].full()),
                None => self.missing(id),
            },
            (Target::Item(id), &Method::PUT) => self.replace(id, body),
            (Target::Item(id), &Method::DELETE) => match self.position(id) {
                Some(i) => {
                    self.credentials.remove(i);
                    let mut r = Response::new(Bytes::new());
                    *r.status_mut() = StatusCode::NO_CONTENT;
                    r
                }
                None => self.missing(id),
            },
            (Target::Item(_), _) => self.not_allowed("GET, PUT, DELETE"),
            (Target::Unknown, _) => self.error(StatusCode::NOT_FOUND, "No such endpoint."),
        }
    }

    fn list(&mut self, query: Option<&str>) -> Response<Bytes> {
        let (mut size, mut number) = (DEFAULT_PAGE_SIZE, 1usize);
        for (name, value) in query_pairs(query) {
            let slot = match name.as_str() {
                "pageSize" => &mut size,
                "pageNumber" => &mut number,
                _ => continue,
            };
            match value.parse::<usize>() {
                Ok(n) if n >= 1 => *slot = n,
                _ => {
                    let msg = format!("{name} must be a positive integer");
                    return self.error(StatusCode::BAD_REQUEST, &msg);
                }
            }
        }
        if size > MAX_PAGE_SIZE {
            let msg = format!("pageSize must be at most {MAX_PAGE_SIZE}");
            return self.error(StatusCode::BAD_REQUEST, &msg);
        }
        let skip = (number - 1).saturating_mul(size);
        let entities: Vec<Value> = self
            .credentials
            .iter()
            .skip(skip)
            .take(size)
            .map(Credential::info)
            .collect();
        json_response(
            StatusCode::OK,
            &json!({
                "entities": entities,
                "pageSize": size,
                "pageNumber": number,
                "total": self.credentials.len(),
            }),
        )
    }

    fn create(&mut self, body: &[u8]) -> Response<Bytes> {
        let body = match parse_body(body) {
            Ok(b) => b,
            Err(msg) => return self.error(StatusCode::BAD_REQUEST, &msg),
        };
        let mut id = self.next_uuid(CREDENTIAL_ID_PREFIX);
        while self.position(&id).is_some() {
            id = self.next_uuid(CREDENTIAL_ID_PREFIX);
        }
        let now = now_rfc3339();
        let credential = Credential {
            id,
            name: body.name,
            created: now.clone(),
            modified: now,
            kind: body.kind,
            fields: body.fields,
        };
        let info = credential.info();
        self.credentials.push(credential);
        json_response(StatusCode::OK, &info)
    }

    fn replace(&mut self, id: &str, body: &[u8]) -> Response<Bytes> {
        let Some(i) = self.position(id) else {
            return self.missing(id);
        };
        let body = match parse_body(body) {
            Ok(b) => b,
            Err(msg) => return self.error(StatusCode::BAD_REQUEST, &msg),
        };
        let credential = &mut self.credentials[i];
        credential.name = body.name;
        credential.kind = body.kind;
        credential.fields = body.fields;
        credential.modified = now_rfc3339();
        json_response(StatusCode::OK, &credential.info())
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.credentials.iter().position(|c| c.id == id)
    }

    /// A UUID-shaped id (version 4 / variant bits set) from the counter,
    /// its first group `prefix`.
    fn next_uuid(&mut self, prefix: &str) -> String {
        self.counter = self.counter.wrapping_add(1);
        format!(
            "{prefix}-0000-4000-8000-{:012x}",
            self.counter & 0xffff_ffff_ffff
        )
    }

    fn missing(&mut self, id: &str) -> Response<Bytes> {
        self.error(
            StatusCode::NOT_FOUND,
            &format!("Credential {id} not found."),
        )
    }

    fn not_allowed(&mut self, allow: &'static str) -> Response<Bytes> {
        with_allow(
            self.error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed."),
            allow,
        )
    }

    /// A Genesys error body.
    fn error(&mut self, status: StatusCode, message: &str) -> Response<Bytes> {
        let code = match status {
            StatusCode::BAD_REQUEST => "bad.request",
            StatusCode::NOT_FOUND => "not.found",
            StatusCode::METHOD_NOT_ALLOWED => "method.not.allowed",
            _ => "error",
        };
        let context_id = self.next_uuid("c0ffee00");
        json_response(
            status,
            &json!({
                "status": status.as_u16(),
                "code": code,
                "message": message,
                "contextId": context_id,
                "details": [],
                "errors": [],
            }),
        )
    }
}

/// Validates a create/replace body: `name`, a known `type.name`, string
/// `credentialFields` including every field the type requires.
fn parse_body(body: &[u8]) -> Result<Body, String> {
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        "The request could not be understood by the server due to malformed syntax.".to_owned()
    })?;
    let Value::Object(mut obj) = value else {
        return Err("The request body must be a JSON object.".to_owned());
    };
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err("name is required.".to_owned()),
    };
    let kind = match obj.get("type").and_then(|t| t.get("name")) {
        Some(Value::String(t)) => {
            CredentialType::find(t).ok_or_else(|| format!("Unknown credential type '{t}'."))?
        }
        _ => return Err("type.name is required.".to_owned()),
    };
    let fields = match obj.remove("credentialFields") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("credentialFields must be an object.".to_owned()),
    };
    if let Some((k, _)) = fields.iter().find(|(_, v)| !v.is_string()) {
        return Err(format!("credentialFields.{k} must be a string."));
    }
    for required in kind.required {
        if fields
            .get(*required)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!(
                "credentialFields.{required} is required for type {}.",
                kind.name
            ));
        }
    }
    Ok(Body { name, kind, fields })
}
