//! Tooling.

pub mod bench;
pub mod synthetic;
