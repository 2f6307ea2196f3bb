//! Running the `permgate` binary the tests were built with.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A command for the built `permgate` binary.
pub fn permgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_permgate"))
}

/// Runs `permgate ARGS…` to its end.
pub fn run(args: &[&str]) -> Output {
    permgate().args(args).output().expect("permgate runs")
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A path in the repository.
pub fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}
