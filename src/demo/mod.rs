//! `permgate demo`: the gateway in front of an in-memory example credential
//! API, with the example routes and a grants file, in one process.
//!
//! [`api`] is the example API; it knows nothing of the gateway. This module
//! holds the demo's files and the banner; the `demo` command (in
//! [`crate::cli`]) writes the files to a temporary folder (so the routes
//! file can be edited while the demo runs), starts both, and prints the
//! banner's curl commands with the status each one gets.

pub mod api;

use std::net::SocketAddr;
use std::path::Path;

/// The demo's route table.
pub const ROUTES: &str = include_str!("../../config/demo/routes.toml");
/// The demo's grants file (tokens and the Basic password are printed).
pub const GRANTS: &str = include_str!("../../config/demo/grants.toml");

/// One curl command of the banner and the status it gets.
pub struct Example {
    /// What it shows.
    pub title: &'static str,
    /// The status the gateway answers.
    pub expect: u16,
    /// The command.
    pub curl: String,
}

/// The commands the banner prints, for a gateway at `gateway`.
pub fn examples(gateway: SocketAddr) -> Vec<Example> {
    let base = format!("http://{gateway}");
    let genesys = format!("{base}{}", api::GENESYS_PREFIX);
    let flex = format!("{base}{}", api::FLEXDEPLOY_PREFIX);
    vec![
        Example {
            title: "allowed read: the viewer lists credentials",
            expect: 200,
            curl: format!("curl -i -H 'Authorization: Bearer demo-viewer' {genesys}"),
        },
        Example {
            title: "forbidden: the viewer deletes a credential; the answer lists missingPermissions",
            expect: 403,
            curl: format!(
                "curl -i -X DELETE -H 'Authorization: Bearer demo-viewer' {genesys}/97f652b5-eb50-4989-9d99-9ed9d6cd5fed"
            ),
        },
        Example {
            title: "no credentials",
            expect: 401,
            curl: format!("curl -i {genesys}"),
        },
        Example {
            title: "allowed create: the editor adds a basicAuth credential",
            expect: 200,
            curl: format!(
                "curl -i -X POST -H 'Authorization: Bearer demo-editor' -H 'Content-Type: application/json' \
                 -d '{{\"name\":\"demo\",\"type\":{{\"name\":\"basicAuth\"}},\"credentialFields\":{{\"userName\":\"u\",\"password\":\"p\"}}}}' {genesys}"
            ),
        },
        Example {
            title: "Basic auth: the ci user searches FlexDeploy credentials by name, ignoring case",
            expect: 200,
            curl: format!("curl -i -u ci:ci-password '{flex}?credentialName=EXAMPLE'"),
        },
        Example {
            title: "ambiguous path: rejected before any grant lookup",
            expect: 400,
            curl: format!(
                "curl -i --path-as-is -H 'Authorization: Bearer demo-admin' '{genesys}/%2e%2e/types'"
            ),
        },
    ]
}

/// The text printed when the demo is ready.
pub fn banner(gateway: SocketAddr, api: SocketAddr, admin: SocketAddr, dir: &Path) -> String {
    let mut out = format!(
        "permgate demo\n\
         \n  gateway:          http://{gateway}  (example credential API behind it on http://{api})\
         \n  admin:            http://{admin}/readyz, /admin/routes\
         \n  routes file:      {routes}  (edit it: changes apply within a second)\
         \n  grants file:      {grants}\
         \n  tokens:           demo-viewer (view), demo-editor (view, add, edit), demo-admin (everything)\
         \n  Basic user:       ci / ci-password (FlexDeploy read, create, update)\n\n",
        routes = dir.join("routes.toml").display(),
        grants = dir.join("grants.toml").display(),
    );
    for (i, e) in examples(gateway).iter().enumerate() {
        out.push_str(&format!(
            "# {}. {} (expect {})\n{}\n\n",
            i + 1,
            e.title,
            e.expect,
            e.curl
        ));
    }
    out.push_str("Ctrl-C stops the demo.\n");
    out
}

/// The demo's main config, for an example API at `api`.
pub fn config_text(api: SocketAddr) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndrain_delay = \"0s\"\nshutdown_timeout = \"5s\"\n\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [upstreams.default]\nurl = \"http://{api}\"\n\n\
         [grants]\nsource = \"file\"\nfile = \"grants.toml\"\n\n\
         [routes]\nfile = \"routes.toml\"\n\n\
         [log]\naccess_log = true\n"
    )
}
