//! Writing share files: the payload streams out with its segment hashes;
//! header and segment table are written last, once the tag is known.

use std::io::{Seek, SeekFrom, Write};

use super::format::{self, HASH_LEN, ShareHeader};

/// The file name a share gets: `BASE.xxx.umbra`.
pub fn share_file_name(base: &std::ffi::OsStr, x: u8) -> std::ffi::OsString {
    let mut name = base.to_os_string();
    name.push(format!(".{x:03}.umbra"));
    name
}

/// Writes one share's payload, hashing its segments on the way.
pub struct ShareWriter<W: Write + Seek> {
    sink: W,
    header: ShareHeader,
    table: Vec<u8>,
    written: u64,
}

impl<W: Write + Seek> ShareWriter<W> {
    /// Positions `sink` past the header and table, which are written last.
    pub fn new(mut sink: W, header: ShareHeader) -> std::io::Result<Self> {
        sink.seek(SeekFrom::Start(header.payload_offset()))?;
        let table = Vec::with_capacity(header.table_len() as usize);
        Ok(Self {
            sink,
            header,
            table,
            written: 0,
        })
    }

    /// The header that [`ShareWriter::finish`] writes (a repair sets a
    /// compact share's key share once it is known).
    pub fn header_mut(&mut self) -> &mut ShareHeader {
        &mut self.header
    }

    /// Appends payload bytes. Every call but the last must hold whole segments.
    pub fn write_payload(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        debug_assert!(self.written.is_multiple_of(self.header.segment_size as u64));
        for segment in bytes.chunks(self.header.segment_size as usize) {
            self.table.extend_from_slice(&format::segment_hash(segment));
        }
        self.sink.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Writes header and table once the tag is known, and returns the sink.
    pub fn finish(mut self, tag: [u8; HASH_LEN]) -> std::io::Result<W> {
        assert_eq!(
            self.written, self.header.payload_len,
            "payload fully written"
        );
        self.header.tag = tag;
        let header = self.header.encode(&self.table);
        self.sink.seek(SeekFrom::Start(0))?;
        self.sink.write_all(&header)?;
        self.sink.write_all(&self.table)?;
        self.sink.flush()?;
        Ok(self.sink)
    }
}
