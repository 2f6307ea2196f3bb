//! Integration tests: real backend, permission API and gateway on 127.0.0.1.

#[path = "../support/mod.rs"]
mod support;

mod seed_matrix;
