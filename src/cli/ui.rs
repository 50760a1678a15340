//! What the commands say on stderr: notes, verbose lines and progress bars
//! (on a terminal only, for inputs worth waiting for).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use umbra::kernel::Level;

use super::backend::BackendChoice;

/// Inputs at least this large get a progress bar (on a terminal); the
/// environment variable UMBRA_PROGRESS_MIN_BYTES changes it.
pub(crate) const PROGRESS_MIN_BYTES: u64 = 64 << 20;

pub(crate) fn progress_min_bytes() -> u64 {
    std::env::var("UMBRA_PROGRESS_MIN_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PROGRESS_MIN_BYTES)
}

static STARTED: std::sync::OnceLock<(i64, std::time::Instant)> = std::sync::OnceLock::new();

/// When this run started: Unix seconds, and the instant to time it from.
pub(crate) fn started() -> (i64, std::time::Instant) {
    *STARTED.get_or_init(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        (secs, std::time::Instant::now())
    })
}

pub(crate) struct Ui {
    pub(crate) quiet: bool,
    pub(crate) verbose: bool,
    pub(crate) level: Level,
    pub(crate) backend: BackendChoice,
    pub(crate) cross_check: bool,
}

impl Ui {
    pub(crate) fn note(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("umbra: {msg}");
        }
    }

    pub(crate) fn info(&self, msg: impl std::fmt::Display) {
        if self.verbose && !self.quiet {
            eprintln!("umbra: {msg}");
        }
    }

    /// A byte progress bar for inputs worth waiting for, on a terminal only.
    pub(crate) fn progress(&self, total: u64, label: &str) -> ProgressBar {
        if self.quiet || total < progress_min_bytes() || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        bar
    }
}
