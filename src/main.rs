//! The `umbra` command line. A thin layer: parse, call the library, print.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("umbra: error: {e:#}");
            cli::exit_code_of(&e)
        }
    }
}
