//! The paper's experiment (Marwan et al. 2019, "Improving the Security of
//! Cloud-based Medical Image Storage"): shadow images of grayscale medical
//! images, the histograms and statistics that argue their security, and the
//! whole experiment as one report.
//!
//! This layer sits above the engine and the stream pipeline and below the
//! CLI. It does its own I/O (images in, PNGs and reports out); the scheme
//! comparison splits and combines real share files through `stream`.
//!
//! - [`image_io`]: 8- and 16-bit grayscale images from PNG, TIFF, PGM/PNM and
//!   DICOM, and PNG output;
//! - [`p257`]: arithmetic in Z_257, the paper's field, and its unbiased
//!   coefficient sampler on the ChaCha20 stream;
//! - [`shadows`]: Shamir and Thien-Lin shadow images over GF(2^8) (through a
//!   [`Backend`](crate::engine::Backend)) or Z_257, and their recovery;
//! - [`stats`]: entropy, chi-square with its p-value, adjacent-pixel
//!   correlation, NPCR and UACI;
//! - [`figures`]: histogram plots and image montages (plotters, bundled font);
//! - [`stats_report`]: `umbra stats`, the statistics of files as reports;
//! - [`reproduce`]: `umbra reproduce`, the experiment;
//! - [`schemes`]: its comparison of umbra's two storage schemes (Shamir and
//!   compact) on the same files, through real share files;
//! - [`report`]: its REPORT.md;
//! - [`error`]: what went wrong, with the file at fault.

pub mod error;
pub mod figures;
pub mod image_io;
pub mod p257;
pub mod report;
pub mod reproduce;
pub mod schemes;
pub mod shadows;
pub mod stats;
pub mod stats_report;

pub use error::{PaperError, RecoverError, Result};
