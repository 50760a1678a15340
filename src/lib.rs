//! umbra: threshold secret sharing of medical image archives.
//!
//! Layers, each importing only those above it in this list:
//! - [`field`]: GF(2^8) over 0x11D;
//! - [`keystream`]: the ChaCha20 coefficient stream of DESIGN.md;
//! - [`sharing`]: validated (t, n), share coordinates, Vandermonde and Lagrange matrices;
//! - [`kernel`]: "small matrix times byte streams" on every CPU backend;
//! - [`engine`]: split / combine / repair of in-memory chunks, scheduled on rayon.

pub mod engine;
pub mod field;
pub mod gpu;
pub mod kernel;
pub mod keystream;
pub mod sharing;
