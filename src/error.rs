//! The library's error type: every variant names the file or share at fault.

use std::io;
use std::path::PathBuf;

use crate::engine::EngineError;
use crate::share::envelope::EnvelopeError;
use crate::share::format::FormatError;
use crate::sharing::ParamError;

fn show(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// An error of the file layers, naming the file or share at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {error}", show(path))]
    Io { path: PathBuf, error: io::Error },
    #[error("{0}")]
    Params(#[from] ParamError),
    #[error("share {}: {error}", show(path))]
    BadShare { path: PathBuf, error: FormatError },
    #[error("share {}: {reason}", show(path))]
    CorruptShare { path: PathBuf, reason: String },
    #[error(
        "shares {} and {} come from different splits (split ids differ)",
        show(first),
        show(other)
    )]
    MixedSplits { first: PathBuf, other: PathBuf },
    #[error(
        "shares {} and {} claim the same split but disagree on {field}: one header is corrupt or forged",
        show(first),
        show(other)
    )]
    InconsistentHeaders {
        first: PathBuf,
        other: PathBuf,
        field: &'static str,
    },
    #[error(
        "shares {} and {} both hold x = {x}: give each share once",
        show(first),
        show(other)
    )]
    DuplicateShare {
        first: PathBuf,
        other: PathBuf,
        x: u8,
    },
    #[error("{given} share(s) given, but this split needs t = {t}")]
    TooFewShares { given: usize, t: usize },
    #[error(
        "only {intact} intact share(s) at stream offset {offset}, t = {t} are needed; bad: {bad}"
    )]
    NotEnoughIntact {
        offset: u64,
        intact: usize,
        t: usize,
        bad: String,
    },
    #[error(
        "integrity check failed: the combined object does not match its tag{detail} (nothing was written)"
    )]
    IntegrityFailed { detail: String },
    #[error("{}: {error}", show(path))]
    Envelope { path: PathBuf, error: EnvelopeError },
    #[error("{} already exists (use --force to overwrite)", show(path))]
    OutputExists { path: PathBuf },
    #[error(
        "{} is {kind}, not a regular file: --force replaces regular files only",
        show(path)
    )]
    OutputNotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "cannot write {}: the directory {} does not exist (create it first)",
        show(path),
        show(dir)
    )]
    OutputDirMissing { path: PathBuf, dir: PathBuf },
    #[error(
        "{} is {kind}, not a regular file: umbra reads regular files only",
        show(path)
    )]
    InputNotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "the object name stored in the shares (\"{name}\") is not a plain file name; give -o FILE instead of a directory"
    )]
    UnsafeName { name: String },
    #[error("input {} changed while it was read ({detail})", show(path))]
    InputChanged { path: PathBuf, detail: String },
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{}: {error}", show(path))]
    EngineAt { path: PathBuf, error: EngineError },
    #[error("operating system random source failed: {0}")]
    Random(String),
    #[error("backends disagree: {detail}")]
    Mismatch { detail: String },
    #[error("{}: {reason}", show(path))]
    BadInput { path: PathBuf, reason: String },
}

/// The file layers' result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an I/O error.
pub trait IoContext<T> {
    /// The I/O error, with the path it happened at.
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|error| Error::Io {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// What a file that is not a regular file is, for an error message.
pub fn file_kind(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a regular file"
    }
}

/// Opens an input that must be a regular file, checked before the open:
/// opening a FIFO blocks until a writer comes, and a device never ends.
pub fn open_regular(path: &std::path::Path) -> Result<std::fs::File> {
    let meta = std::fs::metadata(path).at(path)?;
    if !meta.is_file() {
        return Err(Error::InputNotRegular {
            path: path.to_path_buf(),
            kind: file_kind(meta.file_type()),
        });
    }
    let file = std::fs::File::open(path).at(path)?;
    // Replaced between the check and the open: check what was opened.
    let meta = file.metadata().at(path)?;
    if !meta.is_file() {
        return Err(Error::InputNotRegular {
            path: path.to_path_buf(),
            kind: file_kind(meta.file_type()),
        });
    }
    Ok(file)
}
