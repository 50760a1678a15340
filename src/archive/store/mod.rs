//! Where shares go: the [`Store`] contract ([`contract`]), a local
//! directory ([`local`]), cloud buckets through `object_store` (`cloud`,
//! each scheme behind its Cargo feature), and the URL scheme that picks one
//! ([`scheme`]).

#[cfg(any(feature = "aws", feature = "gcp", feature = "azure"))]
pub mod cloud;
pub mod contract;
pub mod local;
pub mod scheme;

pub use contract::{Store, valid_name};
pub use local::LocalStore;
pub use scheme::open;
