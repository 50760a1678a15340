//! What travels inside the secret: the check key, then the object's private
//! metadata, then its bytes. Any t shares restore all of it; a provider
//! learns only the total length.
//!
//! ```text
//! check key      32 random bytes; the integrity tag is BLAKE3 keyed by it
//! magic           8 "UMBRAOBJ"
//! version         1 (1)
//! name length     2 little-endian, then the original name (bytes; UTF-8
//!                 when the file system's name was)
//! type length     2 little-endian, then the content type (ASCII)
//! content length  8 little-endian, then the content bytes
//! ```
//!
//! The tag covers every byte after the check key.

use zeroize::Zeroizing;

/// Bytes of the random check key at the start of the shared stream.
pub const CHECK_KEY_LEN: usize = 32;
/// The envelope's magic, after the check key.
pub const MAGIC: [u8; 8] = *b"UMBRAOBJ";
/// The envelope's version.
pub const VERSION: u8 = 1;
/// Bytes before the name: check key, magic, version, name length.
const FIXED_HEAD: usize = CHECK_KEY_LEN + 8 + 1 + 2;

/// The object's private metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The original name, as bytes: a file name exactly as the file system
    /// gave it (not always UTF-8 on Linux), or a source path.
    pub name: Vec<u8>,
    pub content_type: String,
    pub content_len: u64,
}

/// Why a decoded stream is not an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error(
        "the combined stream does not start with an umbra object header (wrong or mismatched shares)"
    )]
    WrongMagic,
    #[error("object header version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("the stream holds {found} bytes, its header announces {expected}")]
    LengthMismatch { expected: u64, found: u64 },
    #[error("file name of {0} bytes is too long to store (at most 65535)")]
    NameTooLong(usize),
}

impl ObjectMeta {
    /// The name for people to read: see [`display_bytes`].
    pub fn display_name(&self) -> String {
        display_bytes(&self.name)
    }

    /// Total shared-stream length for this object.
    pub fn stream_len(&self) -> u64 {
        self.prefix_len() as u64 + self.content_len
    }

    /// Bytes of the envelope before the content.
    pub fn prefix_len(&self) -> usize {
        FIXED_HEAD + self.name.len() + 2 + self.content_type.len() + 8
    }

    /// The stream's prefix: check key and metadata, before the content.
    pub fn encode_prefix(
        &self,
        check_key: &[u8; CHECK_KEY_LEN],
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        if self.name.len() > u16::MAX as usize {
            return Err(EnvelopeError::NameTooLong(self.name.len()));
        }
        let content_type =
            &self.content_type.as_bytes()[..self.content_type.len().min(u16::MAX as usize)];
        let mut out = Zeroizing::new(Vec::with_capacity(self.prefix_len()));
        out.extend_from_slice(check_key);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.name);
        out.extend_from_slice(&(content_type.len() as u16).to_le_bytes());
        out.extend_from_slice(content_type);
        out.extend_from_slice(&self.content_len.to_le_bytes());
        Ok(out)
    }
}

/// Result of feeding the start of a combined stream to [`parse_prefix`].
#[derive(Debug, PartialEq, Eq)]
pub enum Prefix {
    /// At least this many bytes are needed to go on.
    NeedMore(usize),
    /// The metadata, and how many bytes of the stream the prefix took.
    Done {
        meta: ObjectMeta,
        check_key: [u8; CHECK_KEY_LEN],
        len: usize,
    },
}

/// Parses the prefix from the first bytes of a combined stream.
pub fn parse_prefix(bytes: &[u8]) -> Result<Prefix, EnvelopeError> {
    if bytes.len() < FIXED_HEAD {
        return Ok(Prefix::NeedMore(FIXED_HEAD));
    }
    if bytes[CHECK_KEY_LEN..CHECK_KEY_LEN + 8] != MAGIC {
        return Err(EnvelopeError::WrongMagic);
    }
    let version = bytes[CHECK_KEY_LEN + 8];
    if version != VERSION {
        return Err(EnvelopeError::UnsupportedVersion(version));
    }
    let name_len = u16::from_le_bytes([bytes[FIXED_HEAD - 2], bytes[FIXED_HEAD - 1]]) as usize;
    let type_at = FIXED_HEAD + name_len;
    if bytes.len() < type_at + 2 {
        return Ok(Prefix::NeedMore(type_at + 2));
    }
    let type_len = u16::from_le_bytes([bytes[type_at], bytes[type_at + 1]]) as usize;
    let len_at = type_at + 2 + type_len;
    if bytes.len() < len_at + 8 {
        return Ok(Prefix::NeedMore(len_at + 8));
    }
    let name = bytes[FIXED_HEAD..type_at].to_vec();
    let content_type = String::from_utf8_lossy(&bytes[type_at + 2..len_at]).into_owned();
    let content_len = u64::from_le_bytes(bytes[len_at..len_at + 8].try_into().expect("8 bytes"));
    Ok(Prefix::Done {
        meta: ObjectMeta {
            name,
            content_type,
            content_len,
        },
        check_key: bytes[..CHECK_KEY_LEN].try_into().expect("32 bytes"),
        len: len_at + 8,
    })
}

/// Bytes that are mostly text, for messages: valid UTF-8 as it is, every
/// other byte as `\xNN` (so `a\xff.bin` and `a\u{FFFD}.bin` stay apart).
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Guesses a content type from the first bytes: DICOM Part 10 files carry
/// "DICM" after a 128-byte preamble.
pub fn sniff_content_type(head: &[u8]) -> &'static str {
    if head.len() >= 132 && &head[128..132] == b"DICM" {
        "application/dicom"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trip_byte_by_byte() {
        let meta = ObjectMeta {
            name: b"CT_small.dcm".to_vec(),
            content_type: "application/dicom".into(),
            content_len: 39206,
        };
        let key = [9u8; 32];
        let prefix = meta.encode_prefix(&key).unwrap();
        assert_eq!(prefix.len(), meta.prefix_len());
        for cut in 0..prefix.len() {
            match parse_prefix(&prefix[..cut]).unwrap() {
                Prefix::NeedMore(n) => assert!(n > cut),
                Prefix::Done { .. } => panic!("done after only {cut} bytes"),
            }
        }
        let mut with_content = prefix.to_vec();
        with_content.extend_from_slice(b"content");
        assert_eq!(
            parse_prefix(&with_content).unwrap(),
            Prefix::Done {
                meta,
                check_key: key,
                len: prefix.len()
            }
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(parse_prefix(&[0x55; 100]), Err(EnvelopeError::WrongMagic));
    }

    /// A name that is not UTF-8 comes back byte for byte, and reads apart
    /// from the UTF-8 name its lossy form would be.
    #[test]
    fn names_are_bytes() {
        let meta = ObjectMeta {
            name: b"a\xff.bin".to_vec(),
            content_type: "application/octet-stream".into(),
            content_len: 3,
        };
        let prefix = meta.encode_prefix(&[7; CHECK_KEY_LEN]).unwrap();
        let Ok(Prefix::Done { meta: back, .. }) = parse_prefix(&prefix) else {
            panic!("not parsed");
        };
        assert_eq!(back, meta);
        assert_eq!(back.display_name(), "a\\xff.bin");
        assert_ne!(
            display_bytes("a\u{FFFD}.bin".as_bytes()),
            back.display_name()
        );
    }
}
