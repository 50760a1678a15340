//! The share file.

pub mod envelope;
pub mod format;
