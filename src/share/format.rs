//! Share file format (docs/FORMAT.md): a fixed header, a table of
//! per-segment BLAKE3 hashes, then the share payload. Version 1 (128-byte
//! header) holds Shamir shares; version 2 (160 bytes) adds the scheme, the
//! shared stream's length and, for the compact scheme, this share's share
//! of the object key.
//!
//! Every field is read and written one by one, little-endian; nothing is a
//! cast of a Rust struct, so the format does not depend on the host.
//!
//! ```text
//! offset size field
//!      0    8 magic "UMBRASHR"
//!      8    2 version (1 or 2)
//!     10    2 header length (128 for version 1, 160 for version 2)
//!     12    2 field polynomial (0x011D)
//!     14    1 t
//!     15    1 n
//!     16    1 x (this share's point, non-zero)
//!     17    1 v1: reserved, zero; v2: scheme (0 Shamir, 1 compact)
//!     18    2 reserved, zero
//!     20    4 segment size in bytes
//!     24    8 payload length in bytes
//!     32   16 split id
//!     48   32 integrity tag (keyed BLAKE3 of the shared stream, docs/DESIGN.md section 5)
//!     80   16 v1: reserved, zero; v2: stream length (8), reserved zero (8)
//!     96   32 v1: header hash; v2: key share (compact; zero for Shamir)
//!    128   32 v2: header hash
//!      .   32*k segment table: BLAKE3 of each payload segment, k = ceil(len / segment)
//!      .    . payload
//! ```
//!
//! The header hash is BLAKE3 in derive-key mode ("umbra share header v1" or
//! "... v2") over every header byte before it, then the segment table.

use crate::field;
use crate::sharing::{ParamError, Threshold};

/// The share file's magic.
pub const MAGIC: [u8; 8] = *b"UMBRASHR";
/// The newest share file version this umbra reads and writes.
pub const VERSION: u16 = 2;
/// Bytes of a version 1 header (Shamir shares, as every umbra writes them).
pub const HEADER_LEN_V1: usize = 128;
/// Bytes of a version 2 header (compact shares).
pub const HEADER_LEN_V2: usize = 160;
/// Bytes of the longest header: what a reader reads before it knows the version.
pub const MAX_HEADER_LEN: usize = HEADER_LEN_V2;
/// Bytes of a compact share's share of the object key.
pub const KEY_SHARE_LEN: usize = 32;
/// Bytes of a BLAKE3 hash (segment hashes, tag, header hash).
pub const HASH_LEN: usize = 32;
/// Bytes of the split id.
pub const SPLIT_ID_LEN: usize = 16;
/// Default payload bytes per hashed segment.
pub const DEFAULT_SEGMENT_SIZE: u32 = 1 << 20;
/// Largest payload a header may announce.
pub const MAX_PAYLOAD_LEN: u64 = 1 << 60;
/// Segments may not be smaller: the table would outgrow the payload.
pub const MIN_SEGMENT_SIZE: u32 = 4096;
/// Nor larger: a reader holds a whole segment of each share in memory, so a
/// damaged or hostile header must not make it allocate gigabytes.
pub const MAX_SEGMENT_SIZE: u32 = 64 << 20;

/// What is wrong with a share file's header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not an umbra share (magic bytes {found:02x?}, expected \"UMBRASHR\")")]
    WrongMagic { found: [u8; 8] },
    #[error("share format version {found} is not supported (this umbra reads versions 1 and 2)")]
    UnsupportedVersion { found: u16 },
    #[error("header length {found} is not {expected} (version {version})")]
    BadHeaderLength {
        found: u16,
        expected: usize,
        version: u16,
    },
    #[error("version 2 header with scheme 0 (Shamir): umbra writes Shamir shares as version 1")]
    ShamirInV2,
    #[error("scheme {found} is unknown (0 is Shamir, 1 compact)")]
    UnknownScheme { found: u8 },
    #[error(
        "payload length {payload} does not match a compact split of a {stream}-byte stream \
         (t = {t}, segment size {segment})"
    )]
    CompactLength {
        payload: u64,
        stream: u64,
        t: usize,
        segment: u32,
    },
    #[error(
        "field polynomial {found:#05x} is not supported (umbra uses {:#05x})",
        field::POLY
    )]
    UnsupportedField { found: u16 },
    #[error("invalid threshold in header: {0}")]
    Params(#[from] ParamError),
    #[error("reserved header bytes are not zero")]
    ReservedNotZero,
    #[error(
        "segment size {found} is invalid (a power of two from {MIN_SEGMENT_SIZE} to {MAX_SEGMENT_SIZE})"
    )]
    BadSegmentSize { found: u32 },
    #[error("payload length {found} is beyond what umbra writes (at most 2^60 bytes)")]
    PayloadTooLarge { found: u64 },
    #[error("header is shorter than {expected} bytes ({found})")]
    ShortHeader { found: usize, expected: usize },
    #[error("header or segment table is corrupt (header hash does not match)")]
    HeaderHashMismatch,
    #[error("truncated: {found} bytes, the header announces {expected}")]
    Truncated { expected: u64, found: u64 },
    #[error("{found} bytes, {extra} more than the header announces ({expected})")]
    TrailingBytes {
        expected: u64,
        found: u64,
        extra: u64,
    },
}

/// How a share's payload was made from the shared stream (docs/DESIGN.md
/// section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Shamir: the payload is the share polynomial at x of every stream
    /// byte, as long as the stream. Perfect secrecy, n times the storage.
    Shamir,
    /// Compact: the stream encrypted under the object key and dispersed in
    /// blocks of t stripes; the payload is about 1/t of the stream, and the
    /// header carries this share's share of the key.
    Compact {
        stream_len: u64,
        key_share: [u8; KEY_SHARE_LEN],
    },
}

impl Scheme {
    /// The scheme's name, as `--scheme` and umbra.toml spell it.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// The scheme without its data.
    pub fn kind(&self) -> SchemeKind {
        match self {
            Scheme::Shamir => SchemeKind::Shamir,
            Scheme::Compact { .. } => SchemeKind::Compact,
        }
    }
}

/// Which scheme a split uses, before it has made any share.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SchemeKind {
    /// Shamir (the default, the paper's).
    #[default]
    Shamir,
    /// Compact: encrypt, disperse, Shamir-share the key.
    Compact,
}

impl SchemeKind {
    /// "shamir" or "compact".
    pub fn name(self) -> &'static str {
        match self {
            SchemeKind::Shamir => "shamir",
            SchemeKind::Compact => "compact",
        }
    }

    /// Bytes stored per byte of the shared stream with (t, n): n for Shamir,
    /// n / t for compact (before the last block's padding and the headers).
    pub fn storage_factor(self, t: usize, n: usize) -> f64 {
        match self {
            SchemeKind::Shamir => n as f64,
            SchemeKind::Compact => n as f64 / t as f64,
        }
    }

    /// The kind of secrecy fewer than t shares keep, for people to read.
    pub fn secrecy(self) -> &'static str {
        match self {
            SchemeKind::Shamir => {
                "perfect (fewer than t shares reveal nothing, whatever the computing power)"
            }
            SchemeKind::Compact => {
                "computational (fewer than t shares reveal nothing of the key, and a ChaCha20 \
                 ciphertext of the rest)"
            }
        }
    }
}

impl std::str::FromStr for SchemeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "shamir" => Ok(SchemeKind::Shamir),
            "compact" => Ok(SchemeKind::Compact),
            other => Err(format!("unknown scheme {other:?} (shamir or compact)")),
        }
    }
}

impl std::fmt::Display for SchemeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The segment size a compact split uses by default: 1 MiB for t <= 4,
/// smaller for larger t, so that a block of t segments (what a writer holds
/// in memory at once) stays at 4 MiB; never below 4 KiB.
pub fn compact_segment_size(t: usize) -> u32 {
    let per = (4u64 << 20) / t as u64;
    let pow = 1u64 << (63 - per.leading_zeros());
    pow.clamp(MIN_SEGMENT_SIZE as u64, DEFAULT_SEGMENT_SIZE as u64) as u32
}

/// Payload bytes of each compact share of a `stream_len`-byte stream: one
/// segment of `segment` bytes per full block of t segments, and for the last
/// block of r bytes ceil(r / t) (docs/DESIGN.md section 8).
pub fn compact_payload_len(stream_len: u64, t: usize, segment: u32) -> u64 {
    let block = t as u64 * segment as u64;
    (stream_len / block) * segment as u64 + (stream_len % block).div_ceil(t as u64)
}

/// The parsed fields of a share header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareHeader {
    pub threshold: Threshold,
    pub x: u8,
    pub segment_size: u32,
    pub payload_len: u64,
    pub split_id: [u8; SPLIT_ID_LEN],
    pub tag: [u8; HASH_LEN],
    pub scheme: Scheme,
}

impl ShareHeader {
    /// The file format version this header is written in: 1 for Shamir (so
    /// that every umbra reads it), 2 for compact.
    pub fn version(&self) -> u16 {
        match self.scheme {
            Scheme::Shamir => 1,
            Scheme::Compact { .. } => 2,
        }
    }

    /// Bytes of the header in the file.
    pub fn header_len(&self) -> usize {
        match self.version() {
            1 => HEADER_LEN_V1,
            _ => HEADER_LEN_V2,
        }
    }

    /// Bytes of the shared stream the shares were made from.
    pub fn stream_len(&self) -> u64 {
        match self.scheme {
            Scheme::Shamir => self.payload_len,
            Scheme::Compact { stream_len, .. } => stream_len,
        }
    }

    /// Number of hashed segments (the last one may be short).
    pub fn segment_count(&self) -> u64 {
        self.payload_len.div_ceil(self.segment_size as u64)
    }

    /// Bytes of the segment table.
    pub fn table_len(&self) -> u64 {
        self.segment_count() * HASH_LEN as u64
    }

    /// Where the payload starts in the file.
    pub fn payload_offset(&self) -> u64 {
        self.header_len() as u64 + self.table_len()
    }

    /// The whole file's length.
    pub fn file_len(&self) -> u64 {
        self.payload_offset() + self.payload_len
    }

    /// Byte range of segment `k` within the payload.
    pub fn segment_range(&self, k: u64) -> (u64, u64) {
        let start = k * self.segment_size as u64;
        let end = (start + self.segment_size as u64).min(self.payload_len);
        (start, end)
    }

    /// The header bytes the header hash covers, before the hash: 0..96 for
    /// version 1, 0..128 for version 2.
    fn fields(&self) -> Vec<u8> {
        let version = self.version();
        let len = self.header_len() - HASH_LEN;
        let mut b = vec![0u8; len];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&version.to_le_bytes());
        b[10..12].copy_from_slice(&(self.header_len() as u16).to_le_bytes());
        b[12..14].copy_from_slice(&field::POLY.to_le_bytes());
        b[14] = self.threshold.t() as u8;
        b[15] = self.threshold.n() as u8;
        b[16] = self.x;
        // 17..20 reserved in version 1; 17 is the scheme in version 2.
        b[20..24].copy_from_slice(&self.segment_size.to_le_bytes());
        b[24..32].copy_from_slice(&self.payload_len.to_le_bytes());
        b[32..48].copy_from_slice(&self.split_id);
        b[48..80].copy_from_slice(&self.tag);
        if let Scheme::Compact {
            stream_len,
            key_share,
        } = self.scheme
        {
            b[17] = 1;
            b[80..88].copy_from_slice(&stream_len.to_le_bytes());
            // 88..96 reserved
            b[96..128].copy_from_slice(&key_share);
        }
        b
    }

    /// The header for this share, given its segment table.
    pub fn encode(&self, table: &[u8]) -> Vec<u8> {
        debug_assert_eq!(table.len() as u64, self.table_len());
        let mut out = self.fields();
        let hash = header_hash(self.version(), &out, table);
        out.extend_from_slice(&hash);
        out
    }

    /// Parses and checks the fixed header (`bytes` may run on past it). The
    /// header hash is checked by [`ShareHeader::verify_table`] once the table
    /// has been read.
    pub fn decode(bytes: &[u8]) -> Result<(ShareHeader, [u8; HASH_LEN]), FormatError> {
        // A short file that still starts with the wrong magic is not a share at all.
        if bytes.len() >= 8 && bytes[..8] != MAGIC {
            return Err(FormatError::WrongMagic {
                found: bytes[..8].try_into().expect("8 bytes"),
            });
        }
        if bytes.len() < 12 {
            return Err(FormatError::ShortHeader {
                found: bytes.len(),
                expected: HEADER_LEN_V1,
            });
        }
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let version = u16_at(8);
        let expected = match version {
            1 => HEADER_LEN_V1,
            2 => HEADER_LEN_V2,
            found => return Err(FormatError::UnsupportedVersion { found }),
        };
        let header_len = u16_at(10);
        if header_len as usize != expected {
            return Err(FormatError::BadHeaderLength {
                found: header_len,
                expected,
                version,
            });
        }
        if bytes.len() < expected {
            return Err(FormatError::ShortHeader {
                found: bytes.len(),
                expected,
            });
        }
        let poly = u16_at(12);
        if poly != field::POLY {
            return Err(FormatError::UnsupportedField { found: poly });
        }
        let reserved: &[std::ops::Range<usize>] = if version == 1 {
            &[17..20, 80..96]
        } else {
            &[18..20, 88..96]
        };
        if reserved
            .iter()
            .any(|r| bytes[r.clone()].iter().any(|&b| b != 0))
        {
            return Err(FormatError::ReservedNotZero);
        }
        let threshold = Threshold::new(bytes[14] as usize, bytes[15] as usize)?;
        let x = bytes[16];
        if x == 0 {
            return Err(FormatError::Params(ParamError::ZeroX));
        }
        let segment_size = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size)
            || !segment_size.is_power_of_two()
        {
            return Err(FormatError::BadSegmentSize {
                found: segment_size,
            });
        }
        let payload_len = u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes"));
        if payload_len > MAX_PAYLOAD_LEN {
            // Keeps every offset computed from the header far from overflow.
            return Err(FormatError::PayloadTooLarge { found: payload_len });
        }
        let scheme = if version == 1 {
            Scheme::Shamir
        } else {
            let stream_len = u64::from_le_bytes(bytes[80..88].try_into().expect("8 bytes"));
            let key_share: [u8; KEY_SHARE_LEN] = bytes[96..128].try_into().expect("32 bytes");
            match bytes[17] {
                // Shamir shares are version 1 (which every umbra reads);
                // scheme 0 in a version 2 header is no share umbra wrote.
                0 => return Err(FormatError::ShamirInV2),
                1 => {
                    if stream_len > MAX_PAYLOAD_LEN {
                        return Err(FormatError::PayloadTooLarge { found: stream_len });
                    }
                    let t = threshold.t();
                    if compact_payload_len(stream_len, t, segment_size) != payload_len {
                        return Err(FormatError::CompactLength {
                            payload: payload_len,
                            stream: stream_len,
                            t,
                            segment: segment_size,
                        });
                    }
                    Scheme::Compact {
                        stream_len,
                        key_share,
                    }
                }
                found => return Err(FormatError::UnknownScheme { found }),
            }
        };
        let header = ShareHeader {
            threshold,
            x,
            segment_size,
            payload_len,
            split_id: bytes[32..48].try_into().expect("16 bytes"),
            tag: bytes[48..80].try_into().expect("32 bytes"),
            scheme,
        };
        let at = expected - HASH_LEN;
        let stored_hash: [u8; HASH_LEN] = bytes[at..expected].try_into().expect("32 bytes");
        Ok((header, stored_hash))
    }

    /// Checks the header hash over the fields and the segment table.
    pub fn verify_table(
        &self,
        stored_hash: &[u8; HASH_LEN],
        table: &[u8],
    ) -> Result<(), FormatError> {
        if table.len() as u64 != self.table_len()
            || header_hash(self.version(), &self.fields(), table) != *stored_hash
        {
            return Err(FormatError::HeaderHashMismatch);
        }
        Ok(())
    }

    /// Checks a file length against the header.
    pub fn check_file_len(&self, found: u64) -> Result<(), FormatError> {
        let expected = self.file_len();
        match found.cmp(&expected) {
            std::cmp::Ordering::Less => Err(FormatError::Truncated { expected, found }),
            std::cmp::Ordering::Greater => Err(FormatError::TrailingBytes {
                expected,
                found,
                extra: found - expected,
            }),
            std::cmp::Ordering::Equal => Ok(()),
        }
    }
}

/// A whole share held in memory, its header, length and table checked.
#[derive(Debug)]
pub struct ParsedShare<'a> {
    pub header: ShareHeader,
    table: &'a [u8],
    pub payload: &'a [u8],
}

impl ParsedShare<'_> {
    /// Indices of payload segments whose hash does not match the table.
    pub fn corrupt_segments(&self) -> Vec<u64> {
        (0..self.header.segment_count())
            .filter(|&k| {
                let (start, end) = self.header.segment_range(k);
                let at = k as usize * HASH_LEN;
                self.table[at..at + HASH_LEN]
                    != segment_hash(&self.payload[start as usize..end as usize])
            })
            .collect()
    }
}

/// Parses and checks a share held in memory: header fields, length, header
/// hash over the table. Segment hashes are left to [`ParsedShare::corrupt_segments`].
pub fn parse(bytes: &[u8]) -> Result<ParsedShare<'_>, FormatError> {
    let (header, stored) = ShareHeader::decode(bytes)?;
    header.check_file_len(bytes.len() as u64)?;
    let table_end = header.payload_offset() as usize;
    let table = &bytes[header.header_len()..table_end];
    header.verify_table(&stored, table)?;
    Ok(ParsedShare {
        header,
        table,
        payload: &bytes[table_end..],
    })
}

/// BLAKE3 of the header fields and the segment table, domain-separated by
/// version.
fn header_hash(version: u16, fields: &[u8], table: &[u8]) -> [u8; HASH_LEN] {
    let context = if version == 1 {
        "umbra share header v1"
    } else {
        "umbra share header v2"
    };
    let mut h = blake3::Hasher::new_derive_key(context);
    h.update(fields);
    h.update(table);
    *h.finalize().as_bytes()
}

/// BLAKE3 of one payload segment.
pub fn segment_hash(segment: &[u8]) -> [u8; HASH_LEN] {
    *blake3::hash(segment).as_bytes()
}

/// Bytes as lowercase hex: split ids and tags in reports and names.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ShareHeader {
        ShareHeader {
            threshold: Threshold::new(4, 8).unwrap(),
            x: 3,
            segment_size: DEFAULT_SEGMENT_SIZE,
            payload_len: 3 * DEFAULT_SEGMENT_SIZE as u64 + 17,
            split_id: [0xAB; 16],
            tag: [0xCD; 32],
            scheme: Scheme::Shamir,
        }
    }

    fn sample_compact() -> ShareHeader {
        let stream_len = 13 * DEFAULT_SEGMENT_SIZE as u64 + 4001;
        ShareHeader {
            payload_len: compact_payload_len(stream_len, 4, DEFAULT_SEGMENT_SIZE),
            scheme: Scheme::Compact {
                stream_len,
                key_share: [0x5A; 32],
            },
            ..sample()
        }
    }

    #[test]
    fn compact_segment_sizes() {
        assert_eq!(compact_segment_size(2), DEFAULT_SEGMENT_SIZE);
        assert_eq!(compact_segment_size(4), DEFAULT_SEGMENT_SIZE);
        assert_eq!(compact_segment_size(5), 512 << 10);
        assert_eq!(compact_segment_size(8), 512 << 10);
        assert_eq!(compact_segment_size(255), 16 << 10);
    }

    #[test]
    fn compact_payload_lengths() {
        let s = 4096u32;
        // Full blocks give a segment each; the last block ceil(r / t).
        assert_eq!(compact_payload_len(0, 4, s), 0);
        assert_eq!(compact_payload_len(1, 4, s), 1);
        assert_eq!(compact_payload_len(4, 4, s), 1);
        assert_eq!(compact_payload_len(5, 4, s), 2);
        assert_eq!(compact_payload_len(4 * 4096, 4, s), 4096);
        assert_eq!(compact_payload_len(4 * 4096 - 1, 4, s), 4096);
        assert_eq!(compact_payload_len(4 * 4096 + 1, 4, s), 4097);
        assert_eq!(
            compact_payload_len(3 * 255 * 4096 + 256, 255, s),
            3 * 4096 + 2
        );
    }

    #[test]
    fn compact_round_trip_and_checks() {
        let h = sample_compact();
        assert_eq!(h.version(), 2);
        assert_eq!(h.segment_count(), 4);
        let table = vec![3u8; h.table_len() as usize];
        let bytes = h.encode(&table);
        assert_eq!(bytes.len(), HEADER_LEN_V2);
        let (back, stored) = ShareHeader::decode(&bytes).unwrap();
        assert_eq!(back, h);
        back.verify_table(&stored, &table).unwrap();
        for i in 0..HEADER_LEN_V2 {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            let ok =
                ShareHeader::decode(&b).and_then(|(h2, stored)| h2.verify_table(&stored, &table));
            assert!(
                ok.is_err(),
                "flipping byte {i} of a v2 header went unnoticed"
            );
        }
        // A payload length that does not fit the stream length is refused.
        let mut b = bytes.clone();
        b[24..32].copy_from_slice(&(h.payload_len + 1).to_le_bytes());
        assert!(matches!(
            ShareHeader::decode(&b),
            Err(FormatError::CompactLength { .. })
        ));
        let mut b = bytes.clone();
        b[17] = 7;
        assert_eq!(
            ShareHeader::decode(&b).unwrap_err(),
            FormatError::UnknownScheme { found: 7 }
        );
        assert!(matches!(
            ShareHeader::decode(&bytes[..140]),
            Err(FormatError::ShortHeader {
                found: 140,
                expected: HEADER_LEN_V2
            })
        ));
    }

    #[test]
    fn shamir_in_a_v2_header_is_refused() {
        // umbra writes Shamir shares as version 1 only.
        let mut bytes = sample_compact().encode(&[0u8; 4 * 32]);
        bytes[17] = 0;
        assert_eq!(
            ShareHeader::decode(&bytes).unwrap_err(),
            FormatError::ShamirInV2
        );
    }

    #[test]
    fn round_trip() {
        let h = sample();
        assert_eq!(h.segment_count(), 4);
        let table = vec![7u8; h.table_len() as usize];
        let bytes = h.encode(&table);
        let (back, stored) = ShareHeader::decode(&bytes).unwrap();
        assert_eq!(back, h);
        back.verify_table(&stored, &table).unwrap();
        let mut bad_table = table.clone();
        bad_table[40] ^= 1;
        assert_eq!(
            back.verify_table(&stored, &bad_table),
            Err(FormatError::HeaderHashMismatch)
        );
    }

    #[test]
    fn every_header_byte_is_covered() {
        let h = sample();
        let table = vec![1u8; h.table_len() as usize];
        let bytes = h.encode(&table);
        for i in 0..HEADER_LEN_V1 {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            let ok =
                ShareHeader::decode(&b).and_then(|(h2, stored)| h2.verify_table(&stored, &table));
            assert!(ok.is_err(), "flipping byte {i} went unnoticed");
        }
    }

    #[test]
    fn parse_in_memory() {
        let mut h = sample();
        h.payload_len = 10_000;
        h.segment_size = MIN_SEGMENT_SIZE;
        let payload: Vec<u8> = (0..10_000).map(|i| i as u8).collect();
        let table: Vec<u8> = payload
            .chunks(MIN_SEGMENT_SIZE as usize)
            .flat_map(segment_hash)
            .collect();
        let mut bytes = h.encode(&table).to_vec();
        bytes.extend_from_slice(&table);
        bytes.extend_from_slice(&payload);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.payload, &payload[..]);
        assert!(parsed.corrupt_segments().is_empty());
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(parse(&bytes).unwrap().corrupt_segments(), vec![2]);
        assert!(matches!(
            parse(&bytes[..bytes.len() - 1]),
            Err(FormatError::Truncated { .. })
        ));
    }

    #[test]
    fn specific_errors() {
        let h = sample();
        let table = vec![0u8; h.table_len() as usize];
        let good = h.encode(&table);
        let mut b = good.clone();
        b[0] = b'X';
        assert!(matches!(
            ShareHeader::decode(&b),
            Err(FormatError::WrongMagic { .. })
        ));
        let mut b = good.clone();
        b[8] = 3;
        assert_eq!(
            ShareHeader::decode(&b).unwrap_err(),
            FormatError::UnsupportedVersion { found: 3 }
        );
        let mut b = good.clone();
        b[12] = 0x1B;
        assert!(matches!(
            ShareHeader::decode(&b),
            Err(FormatError::UnsupportedField { .. })
        ));
        let mut b = good.clone();
        b[20..24].copy_from_slice(&(MAX_SEGMENT_SIZE * 2).to_le_bytes());
        assert!(matches!(
            ShareHeader::decode(&b),
            Err(FormatError::BadSegmentSize { .. })
        ));
        let mut b = good.clone();
        b[16] = 0;
        assert_eq!(
            ShareHeader::decode(&b).unwrap_err(),
            FormatError::Params(ParamError::ZeroX)
        );
        assert_eq!(
            ShareHeader::decode(&good[..50]).unwrap_err(),
            FormatError::ShortHeader {
                found: 50,
                expected: HEADER_LEN_V1
            }
        );
        assert!(matches!(
            h.check_file_len(h.file_len() - 1),
            Err(FormatError::Truncated { .. })
        ));
        assert!(matches!(
            h.check_file_len(h.file_len() + 1),
            Err(FormatError::TrailingBytes { extra: 1, .. })
        ));
    }
}
