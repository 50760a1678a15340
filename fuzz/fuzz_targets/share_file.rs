//! Any bytes as a share file: parsing must return a result or an error,
//! never panic, overflow or read out of bounds; and a share that parses must
//! re-encode to the same header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra::share::format::{self as share_file, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = share_file::parse(data) {
        let _ = parsed.corrupt_segments();
        let table_end = parsed.header.payload_offset() as usize;
        let again = parsed.header.encode(&data[HEADER_LEN..table_end]);
        assert_eq!(&again[..], &data[..HEADER_LEN]);
    }
    let _ = share_file::ShareHeader::decode(data);
});
