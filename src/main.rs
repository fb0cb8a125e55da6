//! `zerolabel`: parse, run, print an error once with its causes, exit 2 on error.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = zerolabel::cli::Cli::parse();
    match zerolabel::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
