//! Split, combine and repair of in-memory chunks, behind one contract. No
//! I/O happens here.
//!
//! A [`Backend`] computes exactly the same bytes whatever it runs on: the
//! CPU backend here, the GPU one in [`crate::gpu`]. The decorators wrap any
//! backend and keep that promise.
//!
//! - [`contract`]: the [`Backend`] trait and its error;
//! - [`compact`]: the compact scheme's encryption and dispersal, by definition;
//! - [`cpu`]: the CPU backend (SIMD kernel, rayon);
//! - [`cross_check`]: two backends compared byte for byte (`--cross-check`);
//! - [`fallback`]: one backend handing over to another when it fails.

pub mod compact;
pub mod contract;
pub mod cpu;
pub mod cross_check;
pub mod fallback;
#[cfg(test)]
mod test_support;

pub use contract::{Backend, DisperseJob, EngineError, SplitJob, UndisperseJob};
pub use cpu::{CpuBackend, NONTEMPORAL_MIN_BYTES, SUB_CHUNK_BYTES, TASK_BYTES};
pub use cross_check::CrossCheck;
pub use fallback::Fallback;
