//! Where shares go.

#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
pub mod cloud;
mod local;

pub use local::*;
