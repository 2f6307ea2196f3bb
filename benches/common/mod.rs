//! Route tables for the benches: synthetic ones of any size, and the real
//! 3,265-operation table in `tests/data/genesys-routes.toml`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The real table's file.
pub fn genesys_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/genesys-routes.toml")
}

/// A REST-shaped table of `n` routes: per resource a list, a create, a get
/// and a delete, spread over services, each with its own permission.
pub fn synthetic_routes(n: usize) -> String {
    let mut out = String::from("default = \"deny\"\n");
    for i in 0..n {
        let pair = i / 4;
        let (svc, res) = (pair / 50, pair % 50);
        let (method, path, action) = match i % 4 {
            0 => ("GET", format!("/api/v2/s{svc}/r{res}"), "view"),
            1 => ("POST", format!("/api/v2/s{svc}/r{res}"), "add"),
            2 => ("GET", format!("/api/v2/s{svc}/r{res}/{{id}}"), "view"),
            _ => ("DELETE", format!("/api/v2/s{svc}/r{res}/{{id}}"), "delete"),
        };
        out.push_str(&format!(
            "[[route]]\nname = \"r{i}\"\nmethods = [\"{method}\"]\npath = \"{path}\"\nrequire = [\"s{svc}:r{res}:{action}\"]\n"
        ));
    }
    out
}

/// The last resource whose four routes are all in a table of `n` routes.
fn last_full_pair(n: usize) -> usize {
    (n / 4).max(1) - 1
}

/// A GET path that the synthetic table of `n` routes matches with its
/// `{id}` route (of the last complete resource).
pub fn synthetic_path(n: usize) -> String {
    let pair = last_full_pair(n);
    format!("/api/v2/s{}/r{}/8f14e45f", pair / 50, pair % 50)
}

/// A grant that allows [`synthetic_path`]`(n)`.
pub fn synthetic_grant(n: usize) -> String {
    let pair = last_full_pair(n);
    format!("s{}:r{}:view", pair / 50, pair % 50)
}
