//! Everything that can go wrong in the archive pipeline; each variant names
//! the file, store or object at fault.

use std::path::PathBuf;

fn show(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// Everything that can go wrong in the archive pipeline; each variant names
/// the file, store or object at fault.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: {error}", show(path))]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {reason}", show(path))]
    Config { path: PathBuf, reason: String },
    #[error("catalog {at}: {error}")]
    Catalog {
        at: String,
        error: crate::archive::db::DbError,
    },
    #[error("store {store}: object {object}: {error}")]
    Store {
        store: String,
        object: String,
        error: std::io::Error,
    },
    #[error("{0}")]
    Core(#[from] crate::Error),
    #[error("{0}")]
    Unsupported(String),
    #[error(
        "{}: another umbra process holds the archive lock{}",
        show(path),
        if waited.is_zero() { String::new() } else { format!(" (waited {} s; --retry-lock waits longer)", waited.as_secs()) }
    )]
    Locked {
        path: PathBuf,
        waited: std::time::Duration,
    },
    #[error("operating system random source failed: {0}")]
    Random(String),
    #[error(
        "the catalog places shares of {objects} object(s) in store {store:?}, which {} does not \
         list: put its [[stores]] entry back as it was (if that provider is gone for good, keep \
         the entry anyway: an unreachable store counts as lost and the other stores are used)",
        show(config)
    )]
    UnknownStore {
        store: String,
        objects: u64,
        config: PathBuf,
    },
    #[error("nothing matched: no archived object has {0}")]
    NothingMatched(String),
    #[error("{0}")]
    Failed(String),
}

/// The archive's result type.
pub type Result<T, E = ArchiveError> = std::result::Result<T, E>;

pub(crate) trait At<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> At<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|error| ArchiveError::Io {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// The error for a store operation on one object.
pub(crate) fn store_err(store: &str, object: &str) -> impl FnOnce(std::io::Error) -> ArchiveError {
    let store = store.to_string();
    let object = object.to_string();
    move |error| ArchiveError::Store {
        store,
        object,
        error,
    }
}
