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
pub mod config;
pub mod migrate;
pub mod source;
pub mod store;

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
    #[error("catalog {}: {error}", show(path))]
    Catalog {
        path: PathBuf,
        error: rusqlite::Error,
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
    #[error("{}: another umbra process holds the archive lock", show(path))]
    Locked { path: PathBuf },
    #[error("operating system random source failed: {0}")]
    Random(String),
    #[error("{0}")]
    Failed(String),
}

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

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// days_from_civil).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Days since the epoch of a DICOM DA value (YYYYMMDD), if it is one.
pub fn dicom_date_days(da: &str) -> Option<i64> {
    let da = da.trim();
    if da.len() != 8 || !da.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = da[..4].parse().ok()?;
    let m: u32 = da[4..6].parse().ok()?;
    let d: u32 = da[6..8].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        assert_eq!(dicom_date_days("20040119"), Some(12436));
        assert_eq!(dicom_date_days("2004011"), None);
        assert_eq!(dicom_date_days("20041301"), None);
    }
}
