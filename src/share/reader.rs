//! Reading share files: a share is opened only after its header, header
//! hash and length hold, and its payload is read only segment by checked
//! segment; a set of shares is refused when they do not belong together.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::format::{self, HASH_LEN, MAX_HEADER_LEN, Scheme, ShareHeader};
use crate::buffer::read_up_to;
use crate::error::{Error, IoContext, Result};

/// An opened share whose header and segment table have been checked.
pub struct ShareSource {
    pub path: PathBuf,
    pub(super) file: File,
    pub header: ShareHeader,
    table: Vec<u8>,
}

impl ShareSource {
    /// Opens a share, checks its header, its header hash and its length.
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |error| Error::BadShare {
            path: path.to_path_buf(),
            error,
        };
        let mut file = crate::error::open_regular(path)?;
        let len = file.metadata().at(path)?.len();
        let mut head = [0u8; MAX_HEADER_LEN];
        let n = read_up_to(&mut file, &mut head).at(path)?;
        let (header, stored) = ShareHeader::decode(&head[..n]).map_err(bad)?;
        // The length first: a damaged header could announce a huge table.
        header.check_file_len(len).map_err(bad)?;
        let mut table = vec![0u8; header.table_len() as usize];
        file.read_exact_at(&mut table, header.header_len() as u64)
            .at(path)?;
        header.verify_table(&stored, &table).map_err(bad)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            header,
            table,
        })
    }

    /// Reads payload bytes from `start` (segment-aligned) into `buf`, and
    /// checks every segment they cover. Returns why not, if they fail.
    pub fn read_verified(&self, start: u64, buf: &mut [u8]) -> std::result::Result<(), String> {
        let seg = self.header.segment_size as u64;
        debug_assert_eq!(start % seg, 0);
        self.file
            .read_exact_at(buf, self.header.payload_offset() + start)
            .map_err(|e| format!("read failed at payload offset {start}: {e}"))?;
        for (i, segment) in buf.chunks(seg as usize).enumerate() {
            let k = start / seg + i as u64;
            if !self.segment_ok(k, segment) {
                return Err(format!("segment {k} is corrupt (BLAKE3 mismatch)"));
            }
        }
        Ok(())
    }

    pub(super) fn segment_ok(&self, k: u64, segment: &[u8]) -> bool {
        let at = k as usize * HASH_LEN;
        self.table[at..at + HASH_LEN] == format::segment_hash(segment)
    }
}

/// Shares that were opened, and those that could not be used, with why.
pub struct ShareSet {
    pub shares: Vec<ShareSource>,
    pub warnings: Vec<String>,
}

/// Opens every share and checks that they belong together.
///
/// Shares that cannot be read or whose header is damaged are set aside with
/// a warning while at least t others remain; mixing splits and giving one
/// x twice are refused outright.
pub fn open_shares(paths: &[PathBuf]) -> Result<ShareSet> {
    let mut shares: Vec<ShareSource> = Vec::with_capacity(paths.len());
    let mut failures: Vec<Error> = Vec::new();
    for p in paths {
        match ShareSource::open(p) {
            Ok(s) => shares.push(s),
            Err(e) => failures.push(e),
        }
    }
    if let Some(first) = shares.first() {
        let h0 = &first.header;
        for s in &shares[1..] {
            let h = &s.header;
            if h.split_id != h0.split_id {
                return Err(Error::MixedSplits {
                    first: first.path.clone(),
                    other: s.path.clone(),
                });
            }
            let same_scheme = match (h.scheme, h0.scheme) {
                (Scheme::Shamir, Scheme::Shamir) => true,
                (Scheme::Compact { stream_len: a, .. }, Scheme::Compact { stream_len: b, .. }) => {
                    a == b
                }
                _ => false,
            };
            let field = if h.scheme.name() != h0.scheme.name() {
                Some("the scheme (Shamir and compact)")
            } else if !same_scheme {
                Some("the stream length")
            } else if h.threshold != h0.threshold {
                Some("t and n")
            } else if h.payload_len != h0.payload_len {
                Some("the payload length")
            } else if h.tag != h0.tag {
                Some("the integrity tag")
            } else if h.segment_size != h0.segment_size {
                Some("the segment size")
            } else {
                None
            };
            if let Some(field) = field {
                return Err(Error::InconsistentHeaders {
                    first: first.path.clone(),
                    other: s.path.clone(),
                    field,
                });
            }
        }
        for (i, a) in shares.iter().enumerate() {
            if let Some(b) = shares[..i].iter().find(|b| b.header.x == a.header.x) {
                return Err(Error::DuplicateShare {
                    first: b.path.clone(),
                    other: a.path.clone(),
                    x: a.header.x,
                });
            }
        }
        let t = h0.threshold.t();
        if shares.len() >= t {
            return Ok(ShareSet {
                shares,
                warnings: failures
                    .iter()
                    .map(|e| format!("share not used: {e}"))
                    .collect(),
            });
        }
    }
    // Too few usable shares: the first failure says most, if there is one.
    match failures.into_iter().next() {
        Some(e) => Err(e),
        None => Err(Error::TooFewShares {
            given: shares.len(),
            t: shares.first().map_or(2, |s| s.header.threshold.t()),
        }),
    }
}
