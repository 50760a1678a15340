//! Outputs that appear whole or not at all: each is written to a temporary
//! file beside its final name and renamed only when everything succeeded.
//! A set of outputs (the n shares of one split) is committed together; if
//! one rename fails, the ones already renamed are removed again.

use std::fs::File;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{Error, IoContext, Result};

/// A temporary file that becomes `target` on commit.
pub struct PendingFile {
    temp: NamedTempFile,
    target: PathBuf,
}

impl PendingFile {
    /// A temporary file in `target`'s directory. Refuses an existing target
    /// unless `overwrite`.
    pub fn create(target: &Path, overwrite: bool) -> Result<Self> {
        check_replaceable(target, overwrite)?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(Error::OutputDirMissing {
                path: target.to_path_buf(),
                dir: dir.to_path_buf(),
            });
        }
        let temp = tempfile::Builder::new()
            .prefix(".umbra-")
            .suffix(".partial")
            .tempfile_in(dir)
            .at(dir)?;
        Ok(Self {
            temp,
            target: target.to_path_buf(),
        })
    }

    /// The temporary file, to write the output into.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// The path it becomes on commit.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Changes the path it becomes on commit.
    pub fn set_target(&mut self, target: PathBuf) {
        self.target = target;
    }

    /// Renames into place. Without `overwrite`, an existing target (even one
    /// that appeared meanwhile) is refused, never replaced.
    pub fn commit(self, overwrite: bool, sync: bool) -> Result<PathBuf> {
        if sync {
            self.temp.as_file().sync_all().at(&self.target)?;
        }
        let target = self.target.clone();
        check_replaceable(&target, overwrite)?;
        let persisted = if overwrite {
            self.temp.persist(&target)
        } else {
            self.temp.persist_noclobber(&target)
        };
        match persisted {
            Ok(_) => Ok(target),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::OutputExists { path: target })
            }
            Err(e) => Err(Error::Io {
                path: target,
                error: e.error,
            }),
        }
    }
}

/// Nothing at `target`, or (with `overwrite`) a regular file there: a
/// device node, FIFO, directory or symbolic link is never replaced.
fn check_replaceable(target: &Path, overwrite: bool) -> Result<()> {
    match std::fs::symlink_metadata(target) {
        Err(_) => Ok(()),
        Ok(_) if !overwrite => Err(Error::OutputExists {
            path: target.to_path_buf(),
        }),
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) => Err(Error::OutputNotRegular {
            path: target.to_path_buf(),
            kind: crate::error::file_kind(m.file_type()),
        }),
    }
}

/// Commits every pending file, or none: on a failure, the ones already
/// renamed are removed and the rest are dropped (deleted).
pub fn commit_all(files: Vec<PendingFile>, overwrite: bool, sync: bool) -> Result<Vec<PathBuf>> {
    let mut done = Vec::with_capacity(files.len());
    for f in files {
        match f.commit(overwrite, sync) {
            Ok(p) => done.push(p),
            Err(e) => {
                for p in &done {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        }
    }
    Ok(done)
}

/// Makes the files or directories at `paths` durable (a directory: the
/// names in it). Linux: one `syncfs` per file system they are on, one
/// journal commit for a whole batch where an `fsync` per file would wait for
/// one each; elsewhere an `fsync` each.
pub fn sync_paths(paths: &[&Path]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let mut seen = Vec::new();
        for p in paths {
            let dev = std::fs::metadata(p)?.dev();
            if !seen.contains(&dev) {
                seen.push(dev);
                rustix::fs::syncfs(std::fs::File::open(p)?)?;
            }
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        paths
            .iter()
            .try_for_each(|p| std::fs::File::open(p)?.sync_all())
    }
}
