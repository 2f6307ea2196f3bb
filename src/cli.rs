//! The command line (SPEC §2).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};
use crate::{Gateway, Listeners};

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
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(&cli.config, cli.log_format),
    }
}

/// Prints a one-line cause and returns exit code 1.
fn fail(what: impl std::fmt::Display) -> ExitCode {
    eprintln!("permgate: {what}");
    ExitCode::from(1)
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
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    match rt.block_on(crate::run(gateway, listeners, stop_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
