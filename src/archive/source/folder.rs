//! A directory tree as a source: every regular file below the root, with
//! what the quick check of the next run compares (size, change signature).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::archive::error::{At, Result};
use crate::share::envelope::display_bytes;

/// One regular file under the source root.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The path relative to the root, `/`-separated, as the file system's
    /// bytes: the object's identity in its source.
    pub rel: Vec<u8>,
    /// The same path for people to read (other bytes as `\xNN`).
    pub source_ref: String,
    pub size: u64,
    /// What the catalog compares to notice a change without reading the
    /// bytes: the modification time in ns (files), an MD5 prefix (Orthanc);
    /// for files also the ctime (which no `touch` can set back) and the
    /// inode (a file replaced by another).
    pub change_sig: i64,
    pub ctime_ns: i64,
    pub inode: i64,
    /// The object's time for `--older-than` when it has no StudyDate.
    pub time_ns: i64,
}

/// Every regular file under `root`, in a stable order. Symbolic links are
/// not followed (a link out of the tree would protect files nobody chose).
pub fn walk(root: &Path) -> Result<Vec<SourceFile>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let path = entry.path();
            let ft = entry.file_type().at(&path)?;
            if ft.is_dir() {
                dirs.push(path);
            } else if ft.is_file() {
                let meta = entry.metadata().at(&path)?;
                let rel = relative_bytes(path.strip_prefix(root).unwrap_or(&path));
                let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
                out.push(SourceFile {
                    source_ref: display_bytes(&rel),
                    rel,
                    size: meta.len(),
                    change_sig: mtime_ns,
                    ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
                    inode: meta.ino() as i64,
                    time_ns: mtime_ns,
                    path,
                });
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// A relative path as `/`-separated bytes.
pub fn relative_bytes(rel: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for c in rel.components() {
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_os_str().as_bytes());
    }
    out
}

/// The file at `rel` (as [`relative_bytes`] makes it) below `root`.
pub fn join_bytes(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(std::ffi::OsStr::from_bytes(rel))
}
