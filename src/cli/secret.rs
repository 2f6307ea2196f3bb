//! `permgate hash-token` and `permgate hash-password`.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;

use rustix::termios::{LocalModes, OptionalActions, Termios, tcgetattr, tcsetattr};

use crate::grants::{hash_password, hash_token};

/// Reads a token from stdin and prints its `token_sha256`.
pub fn hash_token_command() -> ExitCode {
    match read_secret("Token: ") {
        Ok(token) => {
            super::print_out(&format!("{}\n", hash_token(&token)));
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(e),
    }
}

/// Reads a password from stdin and prints its argon2id `password_hash`.
pub fn hash_password_command() -> ExitCode {
    let password = match read_secret("Password: ") {
        Ok(p) => p,
        Err(e) => return super::fail(e),
    };
    match hash_password(&password, None) {
        Ok(h) => {
            super::print_out(&format!("{h}\n"));
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(e),
    }
}

/// The secret on stdin without one trailing newline. On a terminal it
/// prompts on stderr and turns echo off while reading one line.
fn read_secret(prompt: &str) -> Result<String, String> {
    let stdin = std::io::stdin();
    let mut raw = String::new();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let echo_off = EchoOff::new();
        let read = stdin.lock().read_line(&mut raw);
        drop(echo_off);
        eprintln!();
        read.map_err(|e| format!("cannot read stdin: {e}"))?;
    } else {
        stdin
            .lock()
            .read_to_string(&mut raw)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
    }
    let secret = strip_one_newline(&raw);
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(secret.to_string())
}

/// `s` without one trailing `\n` or `\r\n`.
pub fn strip_one_newline(s: &str) -> &str {
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .unwrap_or(s)
}

/// Echo turned off on the stdin terminal; the saved settings come back when
/// dropped (also on a panic).
struct EchoOff {
    saved: Termios,
}

impl EchoOff {
    /// Turns echo off; `None` (echo as it was) if stdin's settings cannot
    /// be read or changed.
    fn new() -> Option<Self> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&stdin, OptionalActions::Now, &quiet).ok()?;
        Some(Self { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_exactly_one_newline() {
        assert_eq!(strip_one_newline("tok\n"), "tok");
        assert_eq!(strip_one_newline("tok\r\n"), "tok");
        assert_eq!(strip_one_newline("tok\n\n"), "tok\n");
        assert_eq!(strip_one_newline("tok"), "tok");
    }
}
