//! The rebuilding core that combine and repair share: rows of the payload at
//! any x, batch by batch from verified segments, a spare share standing in
//! for one whose segment fails; and the check of the keyed tag on the way.

use std::collections::BTreeMap;

use rayon::prelude::*;

use zeroize::Zeroizing;

use crate::engine::Backend;
use crate::error::{Error, Result};
use crate::share::envelope::CHECK_KEY_LEN;
use crate::share::format::HASH_LEN;
use crate::share::reader::ShareSource;
use crate::sharing::Matrix;

/// Receives each batch of rebuilt rows with its stream offset.
pub(super) type RowSink<'a> = dyn FnMut(u64, &[&[u8]]) -> Result<()> + 'a;

/// Streams the payload rebuilt at each x in `targets` (0 = the secret),
/// batch by batch, from shares in `allowed` (in order of preference).
/// Shares whose segments fail are recorded in `bad` and replaced.
pub(super) fn reconstruct(
    backend: &dyn Backend,
    shares: &[ShareSource],
    allowed: &[usize],
    targets: &[u8],
    batch_bytes: usize,
    bad: &mut BTreeMap<usize, String>,
    sink: &mut RowSink<'_>,
) -> Result<()> {
    let h = &shares[allowed[0]].header;
    let t = h.threshold.t();
    let seg = h.segment_size as usize;
    let payload_len = h.payload_len;
    // A small object gets buffers of its own size, not a full batch each.
    let batch_len = payload_len.clamp(1, ((batch_bytes.max(seg) / seg) * seg) as u64) as usize;
    let mut buffers: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
    let mut outputs: Vec<Zeroizing<Vec<u8>>> = targets
        .iter()
        .map(|_| Zeroizing::new(vec![0u8; batch_len]))
        .collect();
    let mut offset = 0u64;
    while offset < payload_len {
        let len = (payload_len - offset).min(batch_len as u64) as usize;
        let mut good: Vec<usize> = Vec::with_capacity(t);
        let mut cursor = 0;
        while good.len() < t {
            let candidates: Vec<usize> = allowed[cursor..]
                .iter()
                .copied()
                .filter(|i| !bad.contains_key(i))
                .take(t - good.len())
                .collect();
            if candidates.is_empty() {
                return Err(Error::NotEnoughIntact {
                    offset,
                    intact: good.len(),
                    t,
                    bad: bad
                        .iter()
                        .map(|(i, why)| format!("{} ({why})", shares[*i].path.display()))
                        .collect::<Vec<_>>()
                        .join("; "),
                });
            }
            let last = *candidates.last().expect("non-empty");
            cursor = allowed
                .iter()
                .position(|&i| i == last)
                .expect("from allowed")
                + 1;
            let mut bufs: Vec<(usize, Vec<u8>)> = candidates
                .iter()
                .map(|&i| {
                    (
                        i,
                        buffers.remove(&i).unwrap_or_else(|| vec![0u8; batch_len]),
                    )
                })
                .collect();
            let results: Vec<std::result::Result<(), String>> = bufs
                .par_iter_mut()
                .map(|(i, buf)| shares[*i].read_verified(offset, &mut buf[..len]))
                .collect();
            for ((i, buf), result) in bufs.into_iter().zip(results) {
                match result {
                    Ok(()) => good.push(i),
                    Err(why) => {
                        bad.insert(i, why);
                    }
                }
                buffers.insert(i, buf);
            }
        }
        let xs: Vec<u8> = good.iter().map(|&i| shares[i].header.x).collect();
        let matrix = Matrix::lagrange(&xs, targets)?;
        let inputs: Vec<&[u8]> = good.iter().map(|i| &buffers[i][..len]).collect();
        let mut outs: Vec<&mut [u8]> = outputs.iter_mut().map(|o| &mut o[..len]).collect();
        backend
            .apply(&matrix, &inputs, &mut outs)
            .map_err(|error| Error::EngineAt {
                path: shares[good[0]].path.clone(),
                error,
            })?;
        let rows: Vec<&[u8]> = outputs.iter().map(|o| &o[..len]).collect();
        sink(offset, &rows)?;
        offset += len as u64;
    }
    Ok(())
}

/// Checks the keyed tag of a combined stream as it goes by.
pub(super) struct TagCheck {
    key: Zeroizing<Vec<u8>>,
    hasher: Option<blake3::Hasher>,
}

impl TagCheck {
    pub(super) fn new() -> Self {
        Self {
            key: Zeroizing::new(Vec::with_capacity(CHECK_KEY_LEN)),
            hasher: None,
        }
    }

    pub(super) fn update(&mut self, mut bytes: &[u8]) {
        if self.hasher.is_none() {
            let take = (CHECK_KEY_LEN - self.key.len()).min(bytes.len());
            self.key.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.key.len() == CHECK_KEY_LEN {
                let key: [u8; CHECK_KEY_LEN] = self.key[..].try_into().expect("32 bytes");
                self.hasher = Some(blake3::Hasher::new_keyed(&key));
            }
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(bytes);
        }
    }

    /// Constant-time comparison (blake3::Hash's equality is).
    pub(super) fn matches(&self, tag: &[u8; HASH_LEN]) -> bool {
        self.hasher
            .as_ref()
            .is_some_and(|h| h.finalize() == blake3::Hash::from_bytes(*tag))
    }
}
