//! Any bytes as the start of a combined stream: the prefix parser returns
//! NeedMore, Done or an error, never panics; Done never claims more bytes
//! than it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use umbra::share::envelope::{Prefix, parse_prefix};

fuzz_target!(|data: &[u8]| {
    match parse_prefix(data) {
        Ok(Prefix::Done { len, .. }) => assert!(len <= data.len()),
        Ok(Prefix::NeedMore(n)) => assert!(n > data.len()),
        Err(_) => {}
    }
});
