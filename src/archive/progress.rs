//! How far a long archive run has come: its phase, and objects and bytes
//! done of a total. The run's threads count into atomics; a terminal's
//! progress bar (the CLI's) reads them. The library counts, it never draws.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The counters of the run in progress, one phase at a time.
#[derive(Debug, Default)]
pub struct Meter {
    phase: Mutex<(String, Option<std::time::Instant>)>,
    objects_total: AtomicU64,
    objects_done: AtomicU64,
    bytes_total: AtomicU64,
    bytes_done: AtomicU64,
}

/// What a [`Meter`] says at one moment.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// `listing`, `scanning`, `writing`, `restoring`, `verifying`, ...
    pub phase: String,
    pub objects_done: u64,
    pub objects_total: u64,
    /// 0 when the phase counts objects only (a scan).
    pub bytes_total: u64,
    pub bytes_done: u64,
    /// Since the phase began.
    pub elapsed: std::time::Duration,
}

impl Meter {
    /// A new phase of `objects` objects and `bytes` bytes (0: not known).
    pub fn begin(&self, phase: &str, objects: u64, bytes: u64) {
        // Totals first, then the name: a reader never sees a new phase
        // with the old one's totals.
        self.objects_done.store(0, Ordering::Relaxed);
        self.bytes_done.store(0, Ordering::Relaxed);
        self.objects_total.store(objects, Ordering::Relaxed);
        self.bytes_total.store(bytes, Ordering::Relaxed);
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) =
            (phase.to_string(), Some(std::time::Instant::now()));
    }

    /// `objects` more objects done, holding `bytes` bytes.
    pub fn advance(&self, objects: u64, bytes: u64) {
        self.objects_done.fetch_add(objects, Ordering::Relaxed);
        self.bytes_done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn read(&self) -> Reading {
        let (phase, started) = self.phase.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Reading {
            phase,
            elapsed: started.map(|s| s.elapsed()).unwrap_or_default(),
            objects_done: self.objects_done.load(Ordering::Relaxed),
            objects_total: self.objects_total.load(Ordering::Relaxed),
            bytes_total: self.bytes_total.load(Ordering::Relaxed),
            bytes_done: self.bytes_done.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_counts_from_zero() {
        let m = Meter::default();
        m.begin("writing", 3, 300);
        m.advance(1, 100);
        m.advance(1, 50);
        let r = m.read();
        assert_eq!(
            (
                r.phase.as_str(),
                r.objects_done,
                r.objects_total,
                r.bytes_done,
                r.bytes_total
            ),
            ("writing", 2, 3, 150, 300)
        );
        m.begin("verifying", 1, 0);
        assert_eq!((m.read().objects_done, m.read().bytes_done), (0, 0));
    }
}
