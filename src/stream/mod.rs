//! Streaming file operations.

pub mod combine;
pub mod gfshare;
pub mod split;
