//! `zerolabel`: parse, run, print an error once with its causes, exit 2 on error.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // A closed stdout (`zerolabel ... | head`) ends the program quietly, as for any Unix tool,
    // instead of panicking in `print!` with "Broken pipe".
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = zerolabel::cli::Cli::parse();
    match zerolabel::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", zerolabel::cli::error_text(&err));
            ExitCode::from(2)
        }
    }
}
