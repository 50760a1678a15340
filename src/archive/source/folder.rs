//! A directory tree as a source: every regular file below the root, with
//! what the quick check of the next run compares (size, change signature).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::archive::error::{At, Result};

/// One regular file under the source root.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The path relative to the root, with `/` separators.
    pub source_ref: String,
    pub size: u64,
    /// What the catalog compares to notice a change without reading the
    /// bytes: the modification time in ns (files), an MD5 prefix (Orthanc).
    pub change_sig: i64,
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
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let source_ref = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
                out.push(SourceFile {
                    source_ref,
                    size: meta.len(),
                    change_sig: mtime_ns,
                    time_ns: mtime_ns,
                    path,
                });
            }
        }
    }
    out.sort_by(|a, b| a.source_ref.cmp(&b.source_ref));
    Ok(out)
}
