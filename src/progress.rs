//! Progress bars (stderr, hidden when stderr is not a terminal or in quiet mode).
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn bar(len: u64, label: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::new(len);
    if quiet {
        pb.set_draw_target(ProgressDrawTarget::hidden());
    }
    pb.set_style(
        ProgressStyle::with_template("{prefix:>12.bold.green} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_prefix(label.to_string());
    pb
}

/// Prints a right-aligned status line like cargo's (`    Finished ...`), unless quiet.
pub fn status(verb: &str, message: &str, quiet: bool) {
    if !quiet {
        eprintln!("\x1b[1;32m{verb:>12}\x1b[0m {message}");
    }
}
