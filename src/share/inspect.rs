//! `umbra inspect`: a share's header fields, and every segment checked
//! against its share's own table, without any other share.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::format::hex;
use super::reader::ShareSource;
use crate::error::{IoContext, Result};

/// What `umbra inspect` reports about one share.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InspectReport {
    pub path: PathBuf,
    pub version: u16,
    /// "shamir" or "compact".
    pub scheme: &'static str,
    pub field_polynomial: String,
    pub t: usize,
    pub n: usize,
    pub x: u8,
    pub split_id: String,
    pub payload_len: u64,
    /// Bytes of the shared stream (Shamir: the payload length; compact:
    /// about t times it).
    pub stream_len: u64,
    pub segment_size: u32,
    pub segments: u64,
    pub tag: String,
    /// Header hash and length hold.
    pub header_ok: bool,
    /// Indices of segments whose BLAKE3 hash does not match.
    pub corrupt_segments: Vec<u64>,
}

impl InspectReport {
    /// The header and every segment hold.
    pub fn intact(&self) -> bool {
        self.header_ok && self.corrupt_segments.is_empty()
    }
}

/// Reads a share's header and checks every segment against its table.
pub fn inspect_share(path: &Path) -> Result<InspectReport> {
    let share = ShareSource::open(path)?;
    let h = &share.header;
    let seg = h.segment_size as usize;
    let mut corrupt = Vec::new();
    let mut buf = vec![0u8; seg];
    for k in 0..h.segment_count() {
        let (start, end) = h.segment_range(k);
        let part = &mut buf[..(end - start) as usize];
        share
            .file
            .read_exact_at(part, h.payload_offset() + start)
            .at(path)?;
        if !share.segment_ok(k, part) {
            corrupt.push(k);
        }
    }
    Ok(InspectReport {
        path: path.to_path_buf(),
        version: h.version(),
        scheme: h.scheme.name(),
        field_polynomial: format!("{:#05x}", crate::field::POLY),
        t: h.threshold.t(),
        n: h.threshold.n(),
        x: h.x,
        split_id: hex(&h.split_id),
        payload_len: h.payload_len,
        stream_len: h.stream_len(),
        segment_size: h.segment_size,
        segments: h.segment_count(),
        tag: hex(&h.tag),
        header_ok: true,
        corrupt_segments: corrupt,
    })
}
