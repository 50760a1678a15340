//! Small helpers the archive operations share: a map over a few worker
//! threads, and BLAKE3 of a file or from the catalog's hex.

use std::fs::File;
use std::path::Path;

use crate::archive::error::{ArchiveError, At, Result};

/// Objects split or rebuilt at the same time (each is parallel inside too).
pub(crate) const MAX_WORKERS: usize = 4;

/// `f` over `items` on a few worker threads (each object's own work is
/// parallel inside too; more workers would only hold more memory), each
/// with its own state from `init`, which lives across its items. Results
/// in the order of `items`.
pub(crate) fn parallel_map<T: Sync, S, R: Send>(
    items: &[T],
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &T) -> R + Sync,
) -> Vec<R> {
    let workers = rayon::current_num_threads().clamp(2, MAX_WORKERS);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers.min(items.len()) {
            scope.spawn(|| {
                let mut state = init();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(&mut state, i, item);
                    *results[i].lock().expect("no panics while held") = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .expect("no panics while held")
                .expect("every item ran")
        })
        .collect()
}

pub(crate) fn hash_file(path: &Path) -> Result<blake3::Hash> {
    let mut h = blake3::Hasher::new();
    h.update_reader(File::open(path).at(path)?).at(path)?;
    Ok(h.finalize())
}

pub(crate) fn decode_hex32(s: &str) -> Result<[u8; 32]> {
    blake3::Hash::from_hex(s)
        .map(|h| *h.as_bytes())
        .map_err(|_| ArchiveError::Failed(format!("catalog holds a malformed hash {s:?}")))
}

/// Bytes from the catalog's lowercase hex (a split id).
pub(crate) fn decode_hex(s: &str) -> Result<Vec<u8>> {
    let bad = || ArchiveError::Failed(format!("catalog holds malformed hex {s:?}"));
    if !s.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect()
}
