//! The paper's experiment (Marwan et al. 2019, "Improving the Security of
//! Cloud-based Medical Image Storage"): shadow images of grayscale medical
//! images, the histograms and statistics that argue their security, and the
//! whole experiment as one report.
//!
//! This layer sits above the engine and below the CLI. It does its own I/O
//! (images in, PNGs and reports out), which is why it is kept apart from the
//! byte-stream archive pipeline.
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
//! - [`reproduce`]: `umbra reproduce`, the experiment and its REPORT.md.

pub mod figures;
pub mod image_io;
pub mod p257;
pub mod reproduce;
pub mod shadows;
pub mod stats;

use std::path::{Path, PathBuf};

fn show(p: &Path) -> String {
    p.display().to_string()
}

/// What went wrong, always with the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum PaperError {
    #[error("{}: {error}", show(path))]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: cannot read it as an image: {reason}", show(path))]
    Unreadable { path: PathBuf, reason: String },
    #[error("{}: not an image: {reason}", show(path))]
    NotAnImage { path: PathBuf, reason: String },
    #[error(
        "{}: {what}: a colour (or alpha) image; shadows are made of single-channel grayscale \
         images only. Convert it to grayscale first, or protect the file itself, losslessly, with \
         `umbra split`",
        show(path)
    )]
    Colour { path: PathBuf, what: String },
    #[error(
        "{}: {what}: only 8- and 16-bit grayscale samples are supported. Convert it to 8 or 16 \
         bits, or protect the file itself with `umbra split`",
        show(path)
    )]
    BitDepth { path: PathBuf, what: String },
    #[error("{}: {reason}", show(path))]
    BadShadow { path: PathBuf, reason: String },
    #[error("{}: {error}", show(path))]
    Recover {
        path: PathBuf,
        error: shadows::RecoverError,
    },
    #[error(
        "{}: the image recovered from shadows {xs:?} differs from the original at pixel \
         (x {x}, y {y}): {found} instead of {expected}",
        show(path)
    )]
    RecoveryMismatch {
        path: PathBuf,
        xs: Vec<u8>,
        x: u32,
        y: u32,
        expected: u16,
        found: u16,
    },
    #[error("{}: {reason}", show(path))]
    Figure { path: PathBuf, reason: String },
    #[error("{0}")]
    Params(#[from] crate::sharing::ParamError),
    #[error("{}: {error}", show(path))]
    Engine {
        path: PathBuf,
        error: crate::engine::EngineError,
    },
    #[error("operating system random source failed: {0}")]
    Random(String),
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = PaperError> = std::result::Result<T, E>;

pub(crate) trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> AtPath<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|error| PaperError::Io {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// An error and its sources on one line, for errors of other crates whose
/// `Display` leaves the cause out.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}
