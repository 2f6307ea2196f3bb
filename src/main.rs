//! The `permgate` binary: everything happens in [`permgate::cli`].

fn main() -> std::process::ExitCode {
    permgate::cli::main()
}
