//! Share file format v1 (docs/FORMAT.md): a fixed 128-byte header, a table
//! of per-segment BLAKE3 hashes, then the share payload.
//!
//! Every field is read and written one by one, little-endian; nothing is a
//! cast of a Rust struct, so the format does not depend on the host.
//!
//! ```text
//! offset size field
//!      0    8 magic "UMBRASHR"
//!      8    2 version (1)
//!     10    2 header length (128)
//!     12    2 field polynomial (0x011D)
//!     14    1 t
//!     15    1 n
//!     16    1 x (this share's point, non-zero)
//!     17    3 reserved, zero
//!     20    4 segment size in bytes
//!     24    8 payload length in bytes
//!     32   16 split id
//!     48   32 integrity tag (keyed BLAKE3 of the shared stream, docs/DESIGN.md section 5)
//!     80   16 reserved, zero
//!     96   32 header hash: BLAKE3 of bytes 0..96 and the segment table
//!    128 32*k segment table: BLAKE3 of each payload segment, k = ceil(len / segment)
//!      .    . payload
//! ```

use crate::field;
use crate::sharing::{ParamError, Threshold};

/// The share file's magic.
pub const MAGIC: [u8; 8] = *b"UMBRASHR";
/// The share file's version.
pub const VERSION: u16 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 128;
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
    #[error("share format version {found} is not supported (this umbra reads version {VERSION})")]
    UnsupportedVersion { found: u16 },
    #[error("header length {found} is not {HEADER_LEN}")]
    BadHeaderLength { found: u16 },
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
    #[error("header is shorter than {HEADER_LEN} bytes ({found})")]
    ShortHeader { found: usize },
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

/// The parsed fields of a share header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareHeader {
    pub threshold: Threshold,
    pub x: u8,
    pub segment_size: u32,
    pub payload_len: u64,
    pub split_id: [u8; SPLIT_ID_LEN],
    pub tag: [u8; HASH_LEN],
}

impl ShareHeader {
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
        HEADER_LEN as u64 + self.table_len()
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

    /// Header bytes 0..96 (everything the header hash covers besides the table).
    fn fields(&self) -> [u8; 96] {
        let mut b = [0u8; 96];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
        b[12..14].copy_from_slice(&field::POLY.to_le_bytes());
        b[14] = self.threshold.t() as u8;
        b[15] = self.threshold.n() as u8;
        b[16] = self.x;
        // 17..20 reserved
        b[20..24].copy_from_slice(&self.segment_size.to_le_bytes());
        b[24..32].copy_from_slice(&self.payload_len.to_le_bytes());
        b[32..48].copy_from_slice(&self.split_id);
        b[48..80].copy_from_slice(&self.tag);
        // 80..96 reserved
        b
    }

    /// The 128-byte header for this share, given its segment table.
    pub fn encode(&self, table: &[u8]) -> [u8; HEADER_LEN] {
        debug_assert_eq!(table.len() as u64, self.table_len());
        let fields = self.fields();
        let mut out = [0u8; HEADER_LEN];
        out[..96].copy_from_slice(&fields);
        out[96..].copy_from_slice(&header_hash(&fields, table));
        out
    }

    /// Parses and checks the fixed header. The header hash is checked by
    /// [`ShareHeader::verify_table`] once the table has been read.
    pub fn decode(bytes: &[u8]) -> Result<(ShareHeader, [u8; HASH_LEN]), FormatError> {
        if bytes.len() < HEADER_LEN {
            // A short file that still starts with the wrong magic is not a share at all.
            if bytes.len() >= 8 && bytes[..8] != MAGIC {
                return Err(FormatError::WrongMagic {
                    found: bytes[..8].try_into().expect("8 bytes"),
                });
            }
            return Err(FormatError::ShortHeader { found: bytes.len() });
        }
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let magic: [u8; 8] = bytes[0..8].try_into().expect("8 bytes");
        if magic != MAGIC {
            return Err(FormatError::WrongMagic { found: magic });
        }
        let version = u16_at(8);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion { found: version });
        }
        let header_len = u16_at(10);
        if header_len as usize != HEADER_LEN {
            return Err(FormatError::BadHeaderLength { found: header_len });
        }
        let poly = u16_at(12);
        if poly != field::POLY {
            return Err(FormatError::UnsupportedField { found: poly });
        }
        if bytes[17..20].iter().chain(&bytes[80..96]).any(|&b| b != 0) {
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
        let header = ShareHeader {
            threshold,
            x,
            segment_size,
            payload_len,
            split_id: bytes[32..48].try_into().expect("16 bytes"),
            tag: bytes[48..80].try_into().expect("32 bytes"),
        };
        let stored_hash: [u8; HASH_LEN] = bytes[96..128].try_into().expect("32 bytes");
        Ok((header, stored_hash))
    }

    /// Checks the header hash over the fields and the segment table.
    pub fn verify_table(
        &self,
        stored_hash: &[u8; HASH_LEN],
        table: &[u8],
    ) -> Result<(), FormatError> {
        if table.len() as u64 != self.table_len()
            || header_hash(&self.fields(), table) != *stored_hash
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
    let table = &bytes[HEADER_LEN..table_end];
    header.verify_table(&stored, table)?;
    Ok(ParsedShare {
        header,
        table,
        payload: &bytes[table_end..],
    })
}

/// BLAKE3 of the header fields and the segment table, domain-separated.
fn header_hash(fields: &[u8; 96], table: &[u8]) -> [u8; HASH_LEN] {
    let mut h = blake3::Hasher::new_derive_key("umbra share header v1");
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
        }
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
        for i in 0..HEADER_LEN {
            let mut b = bytes;
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
        let mut b = good;
        b[0] = b'X';
        assert!(matches!(
            ShareHeader::decode(&b),
            Err(FormatError::WrongMagic { .. })
        ));
        let mut b = good;
        b[8] = 2;
        assert_eq!(
            ShareHeader::decode(&b).unwrap_err(),
            FormatError::UnsupportedVersion { found: 2 }
        );
        let mut b = good;
        b[12] = 0x1B;
        assert!(matches!(
            ShareHeader::decode(&b),
            Err(FormatError::UnsupportedField { .. })
        ));
        let mut b = good;
        b[20..24].copy_from_slice(&(MAX_SEGMENT_SIZE * 2).to_le_bytes());
        assert!(matches!(
            ShareHeader::decode(&b),
            Err(FormatError::BadSegmentSize { .. })
        ));
        let mut b = good;
        b[16] = 0;
        assert_eq!(
            ShareHeader::decode(&b).unwrap_err(),
            FormatError::Params(ParamError::ZeroX)
        );
        assert_eq!(
            ShareHeader::decode(&good[..50]).unwrap_err(),
            FormatError::ShortHeader { found: 50 }
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
