//! `permgate suggest` (README, "Onboarding an API"): `[[route]]` entries
//! for the traffic no route matched, from the coverage the gateway
//! recorded, and the routes nothing used.

mod plan;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Config;
use crate::routes::RouteTable;
use plan::{Outcome, Proposal, Unmatched};

/// Environment variable holding the admin bearer token, for an admin
/// listener with `token_sha256`.
pub const TOKEN_ENV: &str = "PERMGATE_ADMIN_TOKEN";

/// The parts of `/admin/coverage` suggest reads.
#[derive(Deserialize)]
struct Coverage {
    since: String,
    #[serde(default)]
    routes: Vec<CoveredRoute>,
    #[serde(default)]
    unmatched: Vec<Unmatched>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CoveredRoute {
    name: String,
    methods: String,
    path: String,
    #[serde(default)]
    allow: u64,
    #[serde(default)]
    deny: u64,
    #[serde(default)]
    unauthenticated: u64,
    #[serde(default)]
    would_deny: u64,
    last_seen: Option<String>,
}

/// Prints the suggestions for the gateway `config` describes, from the
/// coverage in `coverage_file` or from its admin listener (`admin`
/// overrides the address in the config).
pub fn run(
    config_path: &Path,
    coverage_file: Option<&Path>,
    admin: Option<SocketAddr>,
) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => return super::fail(e),
    };
    let table = match crate::routes::load(&config.routes_file, &config.upstream_names()) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let (json, from) = match coverage_file {
        Some(f) => match crate::config::read_file(f) {
            Ok(t) => (t, f.display().to_string()),
            Err(e) => return super::fail(e),
        },
        None => {
            let addr = admin.unwrap_or_else(|| reachable(config.admin.listen));
            match fetch_coverage(addr) {
                Ok(t) => (t, format!("http://{addr}/admin/coverage")),
                Err(e) => return super::fail(format!("GET http://{addr}/admin/coverage: {e}")),
            }
        }
    };
    let coverage: Coverage = match serde_json::from_str(&json) {
        Ok(c) => c,
        Err(e) => return super::fail(format!("{from}: not coverage JSON: {e}")),
    };
    let routes_text = match crate::config::read_file(&config.routes_file) {
        Ok(t) => t,
        Err(e) => return super::fail(e),
    };
    let mut proposals = plan::plan(&table, &coverage.unmatched);
    // Re-check against the table the output would make: no load error, and
    // no proposal that takes paths an existing route answers today.
    for _ in 0..8 {
        let text = format!("{routes_text}\n{}", render_entries(&table, &proposals));
        match crate::routes::parse(&text, &config.routes_file, &config.upstream_names()) {
            Ok(combined) => {
                if !plan::refuse_takeovers(&table, &combined, &mut proposals) {
                    break;
                }
            }
            Err(e) => {
                // Should not happen: every route is checked above. Keep
                // only what provably loads.
                for p in proposals.iter_mut().filter(|p| p.is_route()) {
                    p.outcome = Outcome::Skipped(format!("the routes file would not load: {e}"));
                }
            }
        }
    }
    let mut out = format!(
        "\n# permgate suggest: {} unmatched shape{} from {from} (since {}).\n\
         # Review every require before appending this to {}.\n",
        coverage.unmatched.len(),
        if coverage.unmatched.len() == 1 {
            ""
        } else {
            "s"
        },
        coverage.since,
        config.routes_file.display()
    );
    out.push_str(&render_entries(&table, &proposals));
    out.push_str(&render_unused(&table, &coverage));
    super::print_out(&out);
    ExitCode::SUCCESS
}

/// An address to reach a listener bound to `listen` (an unspecified
/// address is reached on loopback).
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

/// `GET /admin/coverage` with the token of [`TOKEN_ENV`] if set.
fn fetch_coverage(addr: SocketAddr) -> Result<String, String> {
    let token = std::env::var(TOKEN_ENV).ok();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let get = async {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            let (mut send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let mut req =
                http::Request::get("/admin/coverage").header(http::header::HOST, addr.to_string());
            if let Some(t) = &token {
                req = req.header(http::header::AUTHORIZATION, format!("Bearer {}", t.trim()));
            }
            let req = req
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .map_err(|e| e.to_string())?;
            let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if status == http::StatusCode::UNAUTHORIZED {
                return Err(format!(
                    "401: the admin listener wants a token; set {TOKEN_ENV}"
                ));
            }
            if !status.is_success() {
                return Err(format!("answered {status}"));
            }
            String::from_utf8(body.to_vec()).map_err(|_| "the answer is not UTF-8".to_string())
        };
        tokio::time::timeout(Duration::from_secs(10), get)
            .await
            .map_err(|_| "no answer within 10s".to_string())?
    })
}

/// A TOML string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", q.join(", "))
}

/// The `[[route]]` entries, commented ones and skipped shapes.
fn render_entries(table: &RouteTable, proposals: &[Proposal]) -> String {
    let mut out = String::new();
    for p in proposals {
        let u = &p.unmatched;
        out.push_str(&format!(
            "\n# {} {}: {} request{}, e.g. {}\n",
            u.method,
            u.shape,
            u.count,
            if u.count == 1 { "" } else { "s" },
            u.example
        ));
        let method = p.method.as_ref().map(|m| m.as_str()).unwrap_or_default();
        let mut entry = format!(
            "[[route]]\nname = {}\nmethods = [{}]\npath = {}\n",
            quoted(&p.name),
            quoted(method),
            quoted(&p.path)
        );
        match &p.outcome {
            Outcome::Skipped(why) => {
                out.push_str(&format!("# not suggested: {why}\n"));
                continue;
            }
            Outcome::Route { sibling } => {
                let s = &table.routes()[*sibling];
                let relation = if s.pattern.segments.len() == p.path.matches('/').count() {
                    "beside it"
                } else {
                    "of its parent path"
                };
                out.push_str(&format!(
                    "# access copied from {:?} (line {}), the {method} route {relation}: check it\n",
                    s.name, s.line
                ));
                if !p.require.is_empty() {
                    entry.push_str(&format!("require = {}\n", list(&p.require)));
                }
                if !p.require_any.is_empty() {
                    entry.push_str(&format!("require_any = {}\n", list(&p.require_any)));
                }
                out.push_str(&entry);
            }
            Outcome::NoSibling { parent } => {
                out.push_str(&format!(
                    "# TODO: no route {parent}/… has a require to copy. Without require any\n\
                     # authenticated caller would pass (default = {:?} answers it now),\n\
                     # so the entry is commented out: fill in require, then uncomment it.\n",
                    table.default.as_str()
                ));
                out.push_str(&same_path_routes(table, &p.path));
                entry.push_str("require = []\n");
                for line in entry.lines() {
                    out.push_str(&format!("# {line}\n"));
                }
            }
        }
    }
    out
}

/// A comment naming the routes of other methods on exactly `path`, and what
/// they ask: a hint for the `require` to fill in.
fn same_path_routes(table: &RouteTable, path: &str) -> String {
    let Ok(pattern) = crate::routes::PathPattern::parse(path, &table.normalize) else {
        return String::new();
    };
    let shape = pattern.shape();
    let mut out = String::new();
    for r in table.routes().iter().filter(|r| r.pattern.shape() == shape) {
        out.push_str(&format!(
            "#   for comparison, {:?} (line {}), {} on this path: {}\n",
            r.name,
            r.line,
            r.methods_label(),
            crate::routes::lint::describe_access(r)
        ));
    }
    out
}

/// Comments listing the routes with no traffic in the coverage.
fn render_unused(table: &RouteTable, coverage: &Coverage) -> String {
    let unused: Vec<&CoveredRoute> = coverage
        .routes
        .iter()
        .filter(|r| {
            r.last_seen.is_none() && r.allow + r.deny + r.unauthenticated + r.would_deny == 0
        })
        .collect();
    if unused.is_empty() {
        return format!("\n# Every route had traffic since {}.\n", coverage.since);
    }
    let mut out = format!("\n# Routes with no traffic since {}:\n", coverage.since);
    for r in unused {
        let line = table
            .routes()
            .iter()
            .find(|t| *t.name == *r.name)
            .map(|t| format!(" (line {})", t.line))
            .unwrap_or_default();
        out.push_str(&format!(
            "#   {:?}{line}: {} {}\n",
            r.name, r.methods, r.path
        ));
    }
    out
}
