//! The command line (README, "Command line").

mod check;
mod demo;
mod explain;
mod import;
mod secret;
mod suggest;

pub use check::LintMode;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::Gateway;
use crate::config::{Config, LogFormat};
use crate::server::{Listeners, serve_blocking, stop_signal};

pub use import::failing_tests;

/// HTTP reverse proxy that enforces a route table of permissions.
#[derive(Parser, Debug)]
#[command(name = "permgate", version, about)]
pub struct Cli {
    /// Main config file.
    #[arg(long, global = true, default_value = "permgate.toml")]
    pub config: PathBuf,
    /// Log format; overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// What to do; `run` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway (the default).
    Run,
    /// Validate the config, routes and grants files and run the routes
    /// file's [[test]] cases; exit 1 on any problem.
    Check {
        /// Also lint the route table: `warn` (the default when no value is
        /// given) prints warnings, `all` also notes, `strict` prints
        /// warnings and exits 1 if there is any.
        #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "warn")]
        lint: Option<LintMode>,
    },
    /// Show how the route table decides one request.
    Explain {
        /// Request method, e.g. GET.
        method: String,
        /// Request path, with an optional query.
        path: String,
        /// A permission the caller holds (repeatable).
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// A permission denied to the caller (repeatable).
        #[arg(long = "deny")]
        denies: Vec<String>,
        /// The caller sends no credentials.
        #[arg(long, conflicts_with_all = ["grants", "denies"])]
        anonymous: bool,
        /// A header the request carries, as "Name: value" (repeatable).
        /// Without a Host header, "Host: localhost" is sent.
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
    },
    /// Print [[route]] entries for the traffic no route matched, from the
    /// coverage the running gateway recorded, and list the routes nothing
    /// used.
    Suggest {
        /// Coverage JSON saved from /admin/coverage, instead of asking the
        /// admin listener.
        #[arg(long)]
        coverage: Option<PathBuf>,
        /// Admin listener to ask (host:port), instead of [admin] listen.
        #[arg(long, conflicts_with = "coverage")]
        admin: Option<std::net::SocketAddr>,
    },
    /// Read a Bearer token from stdin and print its token_sha256.
    HashToken,
    /// Read a password from stdin and print its argon2id password_hash.
    HashPassword,
    /// Start an example credential API with the gateway in front of it and
    /// print curl commands to try.
    Demo {
        /// Gateway port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Write a routes file from an OpenAPI 3.x or Swagger 2.0 document
    /// (JSON or YAML).
    ImportOpenapi {
        /// The API description.
        file: PathBuf,
        /// Where permissions come from: extension:NAME, scopes, template:T,
        /// or default (extension x-permissions, else scopes).
        #[arg(long, default_value = "default")]
        permissions: String,
        /// The routes file to write (replaced only on success); stdout when
        /// omitted.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&cli.config, cli.log_format),
        Command::Check { lint } => check::run(&cli.config, lint),
        Command::Explain {
            method,
            path,
            grants,
            denies,
            anonymous,
            headers,
        } => explain::run(
            &cli.config,
            &method,
            &path,
            &headers,
            &explain::CallerArgs {
                grants,
                denies,
                anonymous,
            },
        ),
        Command::Suggest { coverage, admin } => {
            suggest::run(&cli.config, coverage.as_deref(), admin)
        }
        Command::HashToken => secret::hash_token_command(),
        Command::HashPassword => secret::hash_password_command(),
        Command::Demo { port } => demo::run(port, cli.log_format),
        Command::ImportOpenapi {
            file,
            permissions,
            output,
        } => import::run(&file, &permissions, output.as_deref()),
    }
}

/// Writes `text` to stdout. A closed stdout (`permgate check | head`) is not
/// an error worth a panic: the output is simply dropped.
pub fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Prints a one-line cause and returns exit code 1.
pub fn fail(what: impl std::fmt::Display) -> ExitCode {
    eprintln!("permgate: {what}");
    ExitCode::from(1)
}

/// Loads the config and the files it names (routes, grants) the way `run`
/// does; on an error prints it and gives exit code 1.
pub fn load_snapshot(config: &std::path::Path) -> Result<crate::gateway::Snapshot, ExitCode> {
    let config = Config::load(config).map_err(fail)?;
    crate::gateway::Snapshot::load(&config).map_err(fail)
}

fn run(config: &std::path::Path, log_format: Option<LogFormat>) -> ExitCode {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    crate::telemetry::init(log_format.unwrap_or(config.log.format), &config.log.level);
    let gateway = match Gateway::new(config) {
        Ok(g) => g,
        Err(e) => return fail(e),
    };
    let listeners = match Listeners::bind(&gateway) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    match serve_blocking(gateway, listeners, stop_signal()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
