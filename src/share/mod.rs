//! The share file, everything about it in one place, in step with
//! docs/FORMAT.md: the header and segment table ([`format`](mod@format)), what travels
//! inside the secret ([`envelope`]), and how share files are written
//! ([`writer`]), read with every segment checked ([`reader`]) and inspected
//! on their own ([`inspect`]).

pub mod envelope;
pub mod format;
pub mod inspect;
pub mod reader;
pub mod writer;
