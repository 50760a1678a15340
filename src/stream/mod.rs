//! File operations on shares, streaming with bounded memory: [`split`] a
//! file into n share files, [`combine`] t of them back into the file,
//! [`repair`] a lost share from t others, and the bare libgfshare format
//! ([`gfshare`]) for interoperability. `rebuild` is the core that combine
//! and repair share.

pub mod combine;
pub mod gfshare;
mod rebuild;
pub mod repair;
pub mod split;
