//! `permgate hash-token` and `permgate hash-password`.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::{Command, ExitCode, Stdio};

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
        let echo_off = set_echo(false);
        let read = stdin.lock().read_line(&mut raw);
        if echo_off {
            set_echo(true);
        }
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

/// Turns terminal echo on or off with `stty`; whether it worked.
fn set_echo(on: bool) -> bool {
    Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
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
