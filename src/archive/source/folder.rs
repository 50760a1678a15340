//! A directory tree as a source: every regular file below the root that the
//! run's patterns select, with what the quick check of the next run
//! compares (size, times, inode), and what was left out, with why.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::archive::error::{ArchiveError, At, Result};
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

/// What the catalog records of a file to notice a change without reading
/// it: size, modification time and change time in ns, and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: i64,
}

impl Signature {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            inode: meta.ino() as i64,
        }
    }
}

/// What a walk of a folder takes and leaves.
#[derive(Default)]
pub struct WalkRules {
    /// Directories never entered, whatever the patterns say: the archive's
    /// own (its directory, staging, local stores), so an archive inside
    /// its source never archives itself.
    pub skip_dirs: Vec<PathBuf>,
    /// gitignore-style patterns, matched against the path below the root:
    /// a file or directory matching one is left out.
    pub exclude: Vec<String>,
    /// gitignore-style patterns: if any is given, only files matching one
    /// (or inside a directory matching one) are taken.
    pub include: Vec<String>,
}

/// A walk's result: the files to consider, and what was left out, with why.
#[derive(Default)]
pub struct Walk {
    pub files: Vec<SourceFile>,
    /// Entries not taken, each "PATH: why": symbolic links (never followed),
    /// special files, the archive's own directories.
    pub skipped: Vec<String>,
    /// Files and directories left out by `--exclude` or not matched by
    /// `--include`.
    pub excluded: u64,
    /// Directories that could not be read, with the error: their files are
    /// not protected this run, and the run says so.
    pub unreadable: Vec<String>,
}

/// The patterns of `rules` compiled against `root`.
fn matcher(root: &Path, patterns: &[String], what: &str) -> Result<Option<Gitignore>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GitignoreBuilder::new(root);
    for p in patterns {
        b.add_line(None, p).map_err(|e| {
            ArchiveError::Failed(format!(
                "{what} {p:?} is not a gitignore-style pattern: {e}"
            ))
        })?;
    }
    b.build()
        .map(Some)
        .map_err(|e| ArchiveError::Failed(format!("{what} patterns: {e}")))
}

/// Every regular file under `root`, in a stable order, as `rules` select.
///
/// Symbolic links are never followed, to files or to directories, dangling
/// or not: a link out of the tree would protect files nobody chose, and a
/// link inside it would protect them twice. Each is named in
/// [`Walk::skipped`], as are FIFOs, sockets and devices.
pub fn walk(root: &Path, rules: &WalkRules) -> Result<Walk> {
    let exclude = matcher(root, &rules.exclude, "--exclude")?;
    let include = matcher(root, &rules.include, "--include")?;
    let skip: Vec<(u64, u64)> = rules
        .skip_dirs
        .iter()
        .filter_map(|d| std::fs::metadata(d).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let mut out = Walk::default();
    let show = |p: &Path| display_bytes(&relative_bytes(p.strip_prefix(root).unwrap_or(p)));
    let mut dirs = vec![root.to_path_buf()];
    std::fs::read_dir(root).at(root)?;
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                out.unreadable.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        for entry in entries {
            let entry = entry.at(&dir)?;
            let path = entry.path();
            let ft = entry.file_type().at(&path)?;
            if ft.is_symlink() {
                out.skipped
                    .push(format!("{}: a symbolic link, not followed", show(&path)));
                continue;
            }
            if !ft.is_dir() && !ft.is_file() {
                out.skipped.push(format!(
                    "{}: not a regular file (FIFO, socket or device)",
                    show(&path)
                ));
                continue;
            }
            let rel = path.strip_prefix(root).unwrap_or(&path);
            if exclude
                .as_ref()
                .is_some_and(|g| g.matched(rel, ft.is_dir()).is_ignore())
            {
                out.excluded += 1;
                continue;
            }
            let meta = entry.metadata().at(&path)?;
            if ft.is_dir() {
                if skip.contains(&(meta.dev(), meta.ino())) {
                    out.skipped
                        .push(format!("{}: the archive's own directory", show(&path)));
                } else {
                    dirs.push(path);
                }
                continue;
            }
            if include
                .as_ref()
                .is_some_and(|g| !g.matched_path_or_any_parents(rel, false).is_ignore())
            {
                out.excluded += 1;
                continue;
            }
            let rel = relative_bytes(rel);
            let sig = Signature::of(&meta);
            out.files.push(SourceFile {
                source_ref: display_bytes(&rel),
                rel,
                size: sig.size,
                change_sig: sig.mtime_ns,
                ctime_ns: sig.ctime_ns,
                inode: sig.inode,
                time_ns: sig.mtime_ns,
                path,
            });
        }
    }
    out.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.skipped.sort();
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
