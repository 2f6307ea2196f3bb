//! Integration tests: real backend, permission API and gateway on 127.0.0.1.

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod audit;
mod bypass;
mod cache;
mod dashboard;
mod examples;
mod fail_closed;
mod faults_backend;
mod faults_clients;
mod faults_permission_api;
mod file_grants;
mod grafana;
mod hardening;
mod headers;
mod https_upstream;
mod limits;
mod metrics;
mod passthrough;
mod proxy_protocol;
mod rejects;
mod reload;
mod scoped;
mod seed_matrix;
mod shared_cache;
mod smuggling;
mod tls;
mod upstream;
