//! `verifier`: parse the command line, run it, print the verdict one way. Exit status 0
//! verified, 1 a check failed, 2 unusable input.

use clap::Parser;
use std::process::ExitCode;
use verifier::cli::{run, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(v) => {
            if json {
                println!("{}", v.json);
            } else {
                print!("{}", v.text);
            }
            ExitCode::from(if v.passed { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("error: {}", verifier::report::printable(&e.to_string()));
            ExitCode::from(2)
        }
    }
}
