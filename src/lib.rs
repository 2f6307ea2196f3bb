//! permgate: an HTTP reverse proxy that enforces a route table of
//! permissions in front of an API that has none.
//!
//! # Layout
//!
//! | module | owns |
//! | --- | --- |
//! | [`config`] | the main config file: raw TOML, validation, file:line errors |
//! | [`routes`] | the routes file, compiled into an immutable [`routes::RouteTable`] |
//! | [`path`] | the one canonical path that is matched, checked and forwarded |
//! | [`permission`] | the permission grammar: grants, denies, requirements |
//! | [`decision`] | the decision core (no I/O): prepare, route, authorize, permit |
//! | [`grants`] | resolving a caller's grants: credentials, cache (in-process, and shared in Redis), permission API |
//! | [`gateway`] | shared state (one swappable snapshot) and per-worker state |
//! | [`proxy`] | the hot path: one request from arrival to forwarded or refused |
//! | [`reload`] | hot reload of the routes file: file watch, poll, SIGHUP, admin |
//! | [`transport`] | pooled HTTP/1.1 client connections (plain or TLS), one pool per worker and origin |
//! | [`server`] | listeners, worker threads, graceful stop; [`run`] |
//! | [`cli`] | the command line |
//! | [`admin`] | the admin listener: health, readiness, `/metrics`, `/admin/*` and its dashboard page |
//! | [`telemetry`] | tracing setup and the access log |
//! | [`metrics`] | per-worker counters, `/metrics`, route coverage |
//! | [`openapi`] | `import-openapi`: an OpenAPI or Swagger document turned into a routes file |
//! | [`demo`] | the embedded example credential API for `permgate demo` |
//! | [`request_id`] | `X-Request-Id` |
//! | [`common`] | a leaf of helpers several layers share: hex, SHA-256, keys, header names |
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod common;
pub mod config;
pub mod decision;
pub mod demo;
pub mod gateway;
pub mod grants;
pub mod metrics;
pub mod openapi;
pub mod path;
pub mod permission;
pub mod proxy;
pub mod reload;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod telemetry;
pub mod transport;

pub use gateway::Gateway;
pub use server::{Listeners, run, serve_blocking};
