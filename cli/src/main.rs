//! `portcullis`: just-in-time AWS access from a terminal. Everything is in the library
//! ([`portcullis_cli::commands`]); this only runs it.

fn main() -> std::process::ExitCode {
    portcullis_cli::commands::main()
}
