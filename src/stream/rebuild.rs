//! The rebuilding core that combine and repair share: rows of the payload at
//! any x, batch by batch from verified segments, a spare share standing in
//! for one whose segment fails; and the check of the keyed tag on the way.

use std::collections::BTreeMap;

use rayon::prelude::*;

use zeroize::Zeroizing;

use crate::buffer::PooledBuf;
use crate::engine::Backend;
use crate::error::{Error, Result};
use crate::keystream::ObjectKey;
use crate::share::envelope::{CHECK_KEY_LEN, EnvelopeError};
use crate::share::format::{HASH_LEN, KEY_SHARE_LEN, Scheme};
use crate::share::reader::ShareSource;
use crate::sharing::{Matrix, combinations};

/// Receives each batch of rebuilt rows with its payload offset.
pub(super) type RowSink<'a> = dyn FnMut(u64, &[&[u8]]) -> Result<()> + 'a;

/// What [`reconstruct`] rebuilds.
#[derive(Clone, Copy)]
pub(super) enum Want<'a> {
    /// The payload at each x (none of them 0): rows of payload length.
    Payloads(&'a [u8]),
    /// The shared stream (row 0: for Shamir the payload at x = 0, for
    /// compact the decrypted blocks, t times longer), then the payload at
    /// each x.
    Stream(&'a [u8]),
}

/// The compact scheme's object key from the key shares in the headers of
/// `good` (Lagrange at 0, byte by byte).
pub(super) fn compact_key(shares: &[ShareSource], good: &[usize]) -> Result<ObjectKey> {
    let key = compact_key_share(shares, good, 0)?;
    Ok(ObjectKey::from_bytes(*key))
}

/// The key share at `x` (0: the key) from the key shares of `good`.
pub(super) fn compact_key_share(
    shares: &[ShareSource],
    good: &[usize],
    x: u8,
) -> Result<Zeroizing<[u8; KEY_SHARE_LEN]>> {
    let xs: Vec<u8> = good.iter().map(|&i| shares[i].header.x).collect();
    let weights = Matrix::lagrange(&xs, &[x])?;
    let mut out = Zeroizing::new([0u8; KEY_SHARE_LEN]);
    for (c, &i) in good.iter().enumerate() {
        let Scheme::Compact { key_share, .. } = shares[i].header.scheme else {
            unreachable!("compact shares only")
        };
        let w = weights.get(0, c);
        for (o, k) in out.iter_mut().zip(key_share) {
            *o ^= crate::field::mul(w, k);
        }
    }
    Ok(out)
}

/// Streams what `want` asks for, batch by batch, from shares in `allowed`
/// (in order of preference). Returns the shares the first batch was
/// rebuilt from.
///
/// A share whose segment fails its hash is recorded in `bad` (its first
/// failure) and stands aside for that batch only: where a batch has fewer
/// than t shares intact all through, it is rebuilt segment by segment, each
/// from t shares intact there. So two shares damaged in different segments
/// among t + 1 still rebuild the object. Shares that failed before are
/// tried after the others.
#[allow(clippy::too_many_arguments)]
pub(super) fn reconstruct(
    backend: &dyn Backend,
    shares: &[ShareSource],
    allowed: &[usize],
    want: Want<'_>,
    batch_bytes: usize,
    bad: &mut BTreeMap<usize, String>,
    sink: &mut RowSink<'_>,
) -> Result<Vec<usize>> {
    let h = &shares[allowed[0]].header;
    let t = h.threshold.t();
    let seg = h.segment_size as usize;
    let payload_len = h.payload_len;
    let stream_len = h.stream_len();
    let compact = matches!(h.scheme, Scheme::Compact { .. });
    // A small object gets buffers of its own size, not a full batch each.
    let batch_len = payload_len.clamp(1, ((batch_bytes.max(seg) / seg) * seg) as u64) as usize;
    let mut reader = Gather {
        shares,
        order: allowed.to_vec(),
        buffers: BTreeMap::new(),
        batch_len,
        t,
    };
    // Payload rows at these x; for Shamir's stream, x = 0 first.
    let (stream, mut targets) = match want {
        Want::Payloads(xs) => (false, xs.to_vec()),
        Want::Stream(xs) => (true, xs.to_vec()),
    };
    let compact_stream = compact && stream;
    if stream && !compact {
        targets.insert(0, 0);
    }
    // Row 0 of a stream is plaintext: zeroized when given back.
    let mut outputs: Vec<PooledBuf> = Vec::with_capacity(targets.len() + 1);
    if compact_stream {
        outputs.push(PooledBuf::for_overwrite(batch_len * t, true));
    }
    outputs.extend(
        targets
            .iter()
            .map(|&x| PooledBuf::for_overwrite(batch_len, x == 0)),
    );
    // The bytes of the stream that payload bytes `at..at + len` give (from
    // a segment boundary): the same for Shamir, t stripes per segment for
    // compact, up to the stream's end.
    let stream_range = |at: u64, len: usize| -> (u64, usize) {
        if compact {
            let start = at / seg as u64 * (t * seg) as u64;
            let blocks = len.div_ceil(seg) as u64;
            let end = (start + blocks * (t * seg) as u64).min(stream_len);
            (start, (end - start) as usize)
        } else {
            (at, len)
        }
    };
    // The rows of good shares' bytes, computed into `outputs`.
    let apply = |reader: &Gather<'_>,
                 outputs: &mut [PooledBuf],
                 good: &[usize],
                 at: u64,
                 len: usize|
     -> Result<()> {
        let engine = |error| Error::EngineAt {
            path: shares[good[0]].path.clone(),
            error,
        };
        let xs: Vec<u8> = good.iter().map(|&i| shares[i].header.x).collect();
        let inputs: Vec<&[u8]> = good.iter().map(|i| &reader.buffers[i][..len]).collect();
        let outputs = if compact_stream {
            let key = compact_key(shares, good)?;
            let inverse = Matrix::vandermonde_inverse(&xs)?;
            let (start, stream) = stream_range(at, len);
            let (first, rest) = outputs.split_first_mut().expect("the stream row");
            crate::engine::compact::undisperse_stream(
                backend,
                &inverse,
                &key,
                seg,
                start,
                &inputs,
                &mut first[..stream],
            )
            .map_err(engine)?;
            rest
        } else {
            outputs
        };
        if targets.is_empty() {
            return Ok(());
        }
        let matrix = Matrix::lagrange(&xs, &targets)?;
        let mut outs: Vec<&mut [u8]> = outputs.iter_mut().map(|o| &mut o[..len]).collect();
        backend.apply(&matrix, &inputs, &mut outs).map_err(engine)
    };
    // The rows to give the sink for payload bytes `at..at + len`: the
    // compact stream row is as long as the stream they give.
    let rows_of = |outputs: &[PooledBuf], at: u64, len: usize| -> Vec<usize> {
        (0..outputs.len())
            .map(|k| {
                if k == 0 && compact_stream {
                    stream_range(at, len).1
                } else {
                    len
                }
            })
            .collect()
    };
    let mut first_good: Option<Vec<usize>> = None;
    // A pipeline of two: while the sink takes one batch's rows (tag, write),
    // the next batch's shares are read and their segments verified.
    let mut ready: Option<(u64, usize)> = None;
    let mut offset = 0u64;
    while offset < payload_len {
        let len = (payload_len - offset).min(batch_len as u64) as usize;
        let gathered = match ready.take() {
            None => reader.gather(offset, len, bad),
            Some((at, l)) => {
                let mut gathered = None;
                let mut sunk = Ok(());
                rayon::in_place_scope(|scope| {
                    let (reader, bad, gathered) = (&mut reader, &mut *bad, &mut gathered);
                    scope.spawn(move |_| *gathered = Some(reader.gather(offset, len, bad)));
                    let lens = rows_of(&outputs, at, l);
                    let rows: Vec<&[u8]> = outputs.iter().zip(lens).map(|(o, n)| &o[..n]).collect();
                    sunk = sink(at, &rows);
                });
                sunk?;
                gathered.expect("the read ran")
            }
        };
        match gathered {
            Ok(good) => {
                apply(&reader, &mut outputs, &good, offset, len)?;
                first_good.get_or_insert(good);
                ready = Some((offset, len));
            }
            Err(_) => {
                // Segment by segment, each from the shares intact there.
                let end = offset + len as u64;
                let mut at = offset;
                while at < end {
                    let l = (end - at).min(seg as u64) as usize;
                    let good =
                        reader
                            .gather(at, l, bad)
                            .map_err(|intact| Error::NotEnoughIntact {
                                offset: at,
                                intact,
                                t,
                                bad: bad
                                    .iter()
                                    .map(|(i, why)| {
                                        format!("{} ({why})", shares[*i].path.display())
                                    })
                                    .collect::<Vec<_>>()
                                    .join("; "),
                            })?;
                    apply(&reader, &mut outputs, &good, at, l)?;
                    first_good.get_or_insert(good);
                    let lens = rows_of(&outputs, at, l);
                    let rows: Vec<&[u8]> = outputs.iter().zip(lens).map(|(o, n)| &o[..n]).collect();
                    sink(at, &rows)?;
                    at += l as u64;
                }
            }
        }
        offset += len as u64;
    }
    if let Some((at, l)) = ready {
        let lens = rows_of(&outputs, at, l);
        let rows: Vec<&[u8]> = outputs.iter().zip(lens).map(|(o, n)| &o[..n]).collect();
        sink(at, &rows)?;
    }
    Ok(first_good.unwrap_or_else(|| allowed[..t.min(allowed.len())].to_vec()))
}

/// Reads stretches of the payload from the shares, verified, t at a time.
struct Gather<'a> {
    shares: &'a [ShareSource],
    /// In order of preference; a share that fails moves to the back.
    order: Vec<usize>,
    buffers: BTreeMap<usize, PooledBuf>,
    batch_len: usize,
    t: usize,
}

impl Gather<'_> {
    /// t shares whose bytes at `offset..offset + len` are intact, read into
    /// their buffers; else how many were.
    fn gather(
        &mut self,
        offset: u64,
        len: usize,
        bad: &mut BTreeMap<usize, String>,
    ) -> std::result::Result<Vec<usize>, usize> {
        let order = self.order.clone();
        let mut good: Vec<usize> = Vec::with_capacity(self.t);
        let mut failed = Vec::new();
        let mut next = 0;
        while good.len() < self.t && next < order.len() {
            let take = (self.t - good.len()).min(order.len() - next);
            let candidates = &order[next..next + take];
            next += take;
            let mut bufs: Vec<(usize, PooledBuf)> = candidates
                .iter()
                .map(|&i| {
                    let buf = self
                        .buffers
                        .remove(&i)
                        .unwrap_or_else(|| PooledBuf::for_overwrite(self.batch_len, false));
                    (i, buf)
                })
                .collect();
            let results: Vec<std::result::Result<(), String>> = bufs
                .par_iter_mut()
                .map(|(i, buf)| self.shares[*i].read_verified(offset, &mut buf[..len]))
                .collect();
            for ((i, buf), result) in bufs.into_iter().zip(results) {
                match result {
                    Ok(()) => good.push(i),
                    Err(why) => {
                        bad.entry(i).or_insert(why);
                        failed.push(i);
                    }
                }
                self.buffers.insert(i, buf);
            }
        }
        for i in failed {
            self.order.retain(|&j| j != i);
            self.order.push(i);
        }
        if good.len() == self.t {
            Ok(good)
        } else {
            Err(good.len())
        }
    }
}

/// Whether an attempt failed because its shares do not rebuild the tagged
/// object (one of them wrong although its own hashes hold), so that other
/// shares may.
pub(super) fn is_wrong_combination(e: &Error) -> bool {
    matches!(
        e,
        Error::IntegrityFailed { .. }
            | Error::Envelope {
                error: EnvelopeError::WrongMagic
                    | EnvelopeError::LengthMismatch { .. }
                    | EnvelopeError::UnsupportedVersion(_),
                ..
            }
            | Error::UnsafeName { .. }
    )
}

/// One try at rebuilding from the shares given (indices), recording the
/// shares whose segments fail.
pub(super) type Attempt<'a, T> =
    dyn FnMut(&[usize], &mut BTreeMap<usize, String>) -> Result<T> + 'a;

/// Runs `attempt` on every share (in order); if what they rebuild is not
/// the tagged object and more than t shares are usable, on other subsets of
/// t of them (at most 256), until one holds. Returns the result and, when
/// a subset was needed, the shares it used.
pub(super) fn search_subsets<T>(
    n: usize,
    t: usize,
    bad: &mut BTreeMap<usize, String>,
    attempt: &mut Attempt<'_, T>,
) -> Result<(T, Option<Vec<usize>>)> {
    let all: Vec<usize> = (0..n).collect();
    let first = attempt(&all, bad);
    match first {
        Err(e) if is_wrong_combination(&e) && n - bad.len() > t => {
            let usable: Vec<usize> = all.into_iter().filter(|i| !bad.contains_key(i)).collect();
            let mut last = e;
            for combo in combinations(usable.len(), t).take(256).skip(1) {
                let chosen: Vec<usize> = combo.iter().map(|&k| usable[k]).collect();
                match attempt(&chosen, bad) {
                    Ok(ok) => return Ok((ok, Some(chosen))),
                    Err(e) if is_wrong_combination(&e) => last = e,
                    Err(e) => return Err(e),
                }
            }
            Err(last)
        }
        other => other.map(|ok| (ok, None)),
    }
}

/// Of the `suspects`, those whose payload differs from what the proven
/// shares `chosen` give at their x: the wrong shares, to be named.
pub(super) fn wrong_shares(
    backend: &dyn Backend,
    shares: &[ShareSource],
    chosen: &[usize],
    suspects: &[usize],
    batch_bytes: usize,
) -> Result<Vec<usize>> {
    let xs: Vec<u8> = suspects.iter().map(|&i| shares[i].header.x).collect();
    let mut differs = vec![false; suspects.len()];
    let mut scratch = Vec::new();
    let mut ignored = BTreeMap::new();
    // A compact share also carries a key share, which must be the one the
    // proven shares give at its x.
    if matches!(shares[chosen[0]].header.scheme, Scheme::Compact { .. }) {
        for (k, &i) in suspects.iter().enumerate() {
            let Scheme::Compact { key_share, .. } = shares[i].header.scheme else {
                unreachable!("one scheme per set")
            };
            differs[k] |= *compact_key_share(shares, chosen, shares[i].header.x)? != key_share;
        }
    }
    reconstruct(
        backend,
        shares,
        chosen,
        Want::Payloads(&xs),
        batch_bytes,
        &mut ignored,
        &mut |offset, rows| {
            for (k, &i) in suspects.iter().enumerate() {
                scratch.resize(rows[k].len(), 0);
                let same = shares[i].read_verified(offset, &mut scratch).is_ok()
                    && scratch[..] == *rows[k];
                differs[k] |= !same;
            }
            Ok(())
        },
    )?;
    Ok(suspects
        .iter()
        .zip(differs)
        .filter_map(|(&i, d)| d.then_some(i))
        .collect())
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
