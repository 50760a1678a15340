//! The archive pipeline: a source of objects (a DICOM folder), n stores that
//! each hold some of every object's shares, a SQLite catalog on the hospital
//! side, a site key, and a hash-chained audit log.
//!
//! Layer: above [`crate::stream::split`] and [`crate::stream::combine`], below the CLI. The
//! secret-sharing core knows nothing of stores or catalogs; everything here
//! goes through its public streaming API.
//!
//! What a storage provider sees: objects named by a keyed BLAKE3 hash (site
//! key) of the object version and the share's x, and share files whose
//! headers hold t, n, x, a random split id and lengths. No UID, file name or
//! patient datum ever leaves the hospital side: they live in the catalog and,
//! encrypted by the sharing itself, inside the shared stream.

pub mod audit;
pub mod catalog;
mod check;
pub mod config;
pub mod config_check;
pub mod db;
pub mod error;
pub mod forget;
pub mod migrate;
pub mod open;
pub mod progress;
pub mod rebalance;
pub mod repair;
pub mod reshare;
pub mod restore;
pub mod rotate;
pub mod shard;
pub mod source;
pub mod status;
pub mod store;
pub mod time;
mod util;
pub mod verify;

pub use error::{ArchiveError, Result};
pub use open::{Archive, init};
