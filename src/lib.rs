//! umbra: threshold secret sharing of medical image archives.
//!
//! Layers, each importing only those above it in this list:
//! - [`field`]: GF(2^8) over 0x11D;
//! - [`keystream`]: the ChaCha20 coefficient stream of DESIGN.md;
//! - [`sharing`]: validated (t, n), share coordinates, Vandermonde and Lagrange matrices;
//! - [`kernel`]: "small matrix times byte streams" on every CPU backend;
//! - [`engine`]: split / combine / repair of in-memory chunks, scheduled on rayon;
//! - [`gpu`]: the same operations as WGSL compute shaders through wgpu;
//! - [`share_file`], [`envelope`]: the share file format and what travels inside the secret;
//! - [`split`], [`combine`], [`gfshare`]: streaming file operations;
//! - [`archive`]: the archive pipeline (stores, catalog, sources, migrate, restore, verify, repair, audit);
//! - [`paper`]: the paper's experiment (shadow images, p = 257, Thien-Lin, statistics, report);
//! - [`bench`], [`synthetic`]: the throughput benchmark behind `umbra bench` and its data.
//!
//! [`buffer`], [`output`] and [`error`] are small utilities for every layer.

pub mod archive;
pub mod buffer;
pub mod engine;
pub mod error;
pub mod field;
pub mod gpu;
pub mod kernel;
pub mod keystream;
pub mod output;
pub mod paper;
pub mod share;
pub mod sharing;
pub mod stream;
pub mod tools;

pub use error::{Error, Result};
