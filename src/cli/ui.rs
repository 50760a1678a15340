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

impl Ui {
    /// Runs `f` while a bar on stderr shows `meter`: on a terminal only, not
    /// with --quiet or `show` false (--json). Byte phases show MB, MB/s and
    /// an ETA; a scan shows files; a listing a spinner.
    pub(crate) fn with_meter<R>(
        &self,
        meter: &umbra::archive::progress::Meter,
        show: bool,
        f: impl FnOnce() -> R,
    ) -> R {
        if !show || self.quiet || !std::io::stderr().is_terminal() {
            return f();
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| draw_meter(meter, &stop));
            let out = f();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            out
        })
    }
}

/// Redraws the bar of `meter` ten times a second until `stop`; a new bar
/// for each phase. Rates and ETAs are the phase's own average (indicatif's
/// estimate swings wildly on the few large steps an archive run makes).
fn draw_meter(meter: &umbra::archive::progress::Meter, stop: &std::sync::atomic::AtomicBool) {
    let mut phase = String::new();
    let mut bar = ProgressBar::hidden();
    loop {
        let r = meter.read();
        if r.phase != phase && !r.phase.is_empty() {
            bar.finish_and_clear();
            phase = r.phase.clone();
            let template = if r.bytes_total > 0 || r.objects_total > 0 {
                "{prefix} [{bar:20}] {msg}"
            } else {
                "{prefix} {spinner} {elapsed} {msg}"
            };
            bar = ProgressBar::hidden();
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(phase.clone());
        }
        let secs = r.elapsed.as_secs_f64().max(1e-3);
        let (done, total) = if r.bytes_total > 0 {
            (r.bytes_done, r.bytes_total)
        } else {
            (r.objects_done, r.objects_total)
        };
        let eta = if done > 0 && total > done {
            let left = ((total - done) as f64 * secs / done as f64) as u64;
            format!(
                " ETA {}:{:02}:{:02}",
                left / 3600,
                left / 60 % 60,
                left % 60
            )
        } else {
            String::new()
        };
        bar.set_message(if r.bytes_total > 0 {
            format!(
                "{:.1}/{:.1} MB {:.1} MB/s{eta} ({}/{})",
                r.bytes_done as f64 / 1e6,
                r.bytes_total as f64 / 1e6,
                r.bytes_done as f64 / 1e6 / secs,
                r.objects_done,
                r.objects_total
            )
        } else if r.objects_total > 0 {
            format!("{}/{} files{eta}", r.objects_done, r.objects_total)
        } else {
            String::new()
        });
        bar.set_length(total.max(1));
        bar.set_position(done);
        if bar.is_hidden() && !phase.is_empty() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        bar.tick();
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            bar.finish_and_clear();
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
