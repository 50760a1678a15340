//! umbra: threshold secret sharing of medical image archives.
//!
//! The layers, bottom to top; each imports only those above it in this list
//! (docs/DESIGN.md gives the decisions they rest on, README's "How it works"
//! the same map in prose):
//!
//! 1. [`field`]: GF(2^8) over 0x11D.
//! 2. [`keystream`]: the ChaCha20 coefficient stream (docs/DESIGN.md,
//!    "Randomness").
//! 3. [`sharing`]: validated (t, n), share coordinates, and the matrices of
//!    split (Vandermonde), combine and repair (Lagrange).
//! 4. [`kernel`]: "small matrix times byte streams" on every CPU level.
//! 5. [`engine`]: the [`Backend`](engine::Backend) contract, the CPU backend
//!    and the decorators (cross-check, fallback); in-memory chunks, no I/O.
//! 6. [`gpu`]: the same contract as WGSL compute shaders through wgpu.
//! 7. [`share`]: the share file (docs/FORMAT.md): header, envelope, writer,
//!    reader, inspection.
//! 8. [`stream`]: split, combine and repair of files, and the gfshare format.
//! 9. [`archive`]: sources, stores, catalog, audit log, and the operations
//!    (migrate, restore, verify, repair; status, forget, erase, rebalance,
//!    reshare, key rotation).
//! 10. [`paper`]: the paper's experiment (shadow images, statistics, report).
//! 11. [`tools`]: benchmark and synthetic data behind `umbra bench`.
//!
//! Beside the layers, for all of them: [`buffer`] (aligned buffers, reads
//! that fill them; imports nothing), [`error`] (the error of the file
//! layers, [`share`] and [`stream`]: it wraps the typed errors of `sharing`,
//! `engine` and `share::{format, envelope}`, which never use it) and
//! [`output`] (files that appear whole or not at all).

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
