//! What went wrong in the paper's experiment, always with the file at fault.

use std::path::{Path, PathBuf};

use crate::sharing::ParamError;

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
    Recover { path: PathBuf, error: RecoverError },
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
    #[error(
        "{}: the file combined from shares {xs:?} differs from it at byte {offset}",
        show(path)
    )]
    FileMismatch {
        path: PathBuf,
        xs: Vec<u8>,
        offset: usize,
    },
    /// A split or combine of share files (the error names the file).
    #[error(transparent)]
    Stream(#[from] crate::error::Error),
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

/// Why shadows could not be recovered.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("{given} shadows given, exactly t = {t} needed")]
    Count { given: usize, t: usize },
    #[error(transparent)]
    Params(#[from] ParamError),
    #[error(
        "shadow x = {x} is {} x {} at {} bits; {} x {} at {} bits expected for {what}",
        found.0, found.1, found.2, expected.0, expected.1, expected.2
    )]
    Shape {
        x: u8,
        found: (u32, u32, u8),
        expected: (u32, u32, u8),
        what: String,
    },
    #[error("shadow x = {x} holds the value {value}, outside Z_257 (0..=256): not a p257 shadow")]
    OutsideField { x: u8, value: u16 },
    #[error(
        "value {value} at position {position} is not a byte: these shadows are not of one image"
    )]
    NotOneImage { position: usize, value: u16 },
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
}

/// The paper's result type.
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
