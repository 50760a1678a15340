//! Structure-aware: arbitrary header fields and payload, with the segment
//! table and header hash recomputed so that parsing gets past the hash
//! checks. Whatever the fields say (t, n, x, sizes), parse either refuses
//! them with an error or returns a share whose parts add up.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra::share::format::{self as share_file, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    if data.len() < 96 {
        return;
    }
    let mut fields = [0u8; 96];
    fields.copy_from_slice(&data[..96]);
    fields[0..8].copy_from_slice(b"UMBRASHR");
    // Keep the announced length near the data we have, so the table fits.
    let payload = &data[96..];
    fields[24..32].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    let seg = u32::from_le_bytes(fields[20..24].try_into().unwrap());
    if seg == 0 {
        return;
    }
    let table: Vec<u8> = payload
        .chunks(seg as usize)
        .flat_map(share_file::segment_hash)
        .collect();
    let mut h = blake3::Hasher::new_derive_key("umbra share header v1");
    h.update(&fields);
    h.update(&table);
    let mut file = fields.to_vec();
    file.extend_from_slice(h.finalize().as_bytes());
    file.extend_from_slice(&table);
    file.extend_from_slice(payload);
    if let Ok(parsed) = share_file::parse(&file) {
        assert_eq!(parsed.payload, payload);
        assert!(parsed.corrupt_segments().is_empty());
        assert_eq!(parsed.header.file_len() as usize, file.len());
        let again = parsed.header.encode(&table);
        assert_eq!(&again[..], &file[..HEADER_LEN]);
    }
});
