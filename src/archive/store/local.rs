//! A local directory as a store: `ROOT/ab/abcdef...`.
//!
//! Writes are create-only and atomic: a share is written to a temporary file
//! in the same directory, flushed to disk, and linked into place only if the
//! name is still free, so a reader never sees half a share and a resumed run
//! never overwrites one.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::contract::{Store, bad_name, valid_name};

/// A directory: `ROOT/ab/abcdef...` (the first two hex digits fan out).
pub struct LocalStore {
    label: String,
    root: PathBuf,
}

const PARTIAL_PREFIX: &str = ".umbra-";
const PARTIAL_SUFFIX: &str = ".partial";

impl LocalStore {
    /// The store named `label` in the directory `root`.
    pub fn new(label: &str, root: PathBuf) -> Self {
        Self {
            label: label.to_string(),
            root,
        }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        if !valid_name(name) {
            return Err(bad_name(name));
        }
        Ok(self.root.join(&name[..2]).join(name))
    }

    /// A missing root is an error for writers: a store that vanished must
    /// not be silently recreated empty.
    fn require_root(&self) -> io::Result<()> {
        if self.root.is_dir() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("store directory {} is missing", self.root.display()),
            ))
        }
    }

    fn fan_dirs(&self) -> io::Result<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(dirs),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.len() == 2 && entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            }
        }
        Ok(dirs)
    }
}

impl Store for LocalStore {
    fn local_root(&self) -> Option<&Path> {
        Some(&self.root)
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn put_if_absent(&self, name: &str, src: &Path) -> io::Result<bool> {
        let target = self.path(name)?;
        self.require_root()?;
        if target.exists() {
            return Ok(false);
        }
        let dir = target.parent().expect("fan-out directory");
        if !dir.is_dir() {
            std::fs::create_dir(dir).or_else(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(e)
                }
            })?;
            sync_dir(&self.root)?;
        }
        // Same file system: flush the finished file and link it into place,
        // no copy (a link never replaces an existing name either).
        File::open(src)?.sync_all()?;
        match std::fs::hard_link(src, &target) {
            Ok(()) => {
                sync_dir(dir)?;
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {}
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => return Err(e),
        }
        let mut temp = tempfile::Builder::new()
            .prefix(PARTIAL_PREFIX)
            .suffix(PARTIAL_SUFFIX)
            .tempfile_in(dir)?;
        let mut from = File::open(src)?;
        io::copy(&mut from, temp.as_file_mut())?;
        temp.as_file().sync_all()?;
        // Link, not rename: an existing name is refused, never replaced.
        match temp.persist_noclobber(&target) {
            Ok(_) => {}
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e.error),
        }
        sync_dir(dir)?;
        Ok(true)
    }

    /// Linux: one `syncfs` of the sources' file system before any link (no
    /// name ever points at data that is not on disk), the links, then one
    /// `syncfs` of the store's (the new names are on disk). Elsewhere, and
    /// for sources on another file system, one put at a time.
    #[cfg(target_os = "linux")]
    fn put_all_if_absent(&self, items: &[(&str, &Path)]) -> Vec<io::Result<bool>> {
        let fail_all = |e: io::Error| {
            items
                .iter()
                .map(|_| Err(io::Error::new(e.kind(), e.to_string())))
                .collect()
        };
        if items.is_empty() {
            return Vec::new();
        }
        if let Err(e) = self.require_root() {
            return fail_all(e);
        }
        let srcs: Vec<&Path> = items.iter().map(|(_, src)| *src).collect();
        if let Err(e) = crate::output::sync_paths(&srcs) {
            return fail_all(e);
        }
        let results: Vec<io::Result<bool>> = items
            .iter()
            .map(|(name, src)| {
                let target = self.path(name)?;
                if target.exists() {
                    return Ok(false);
                }
                let dir = target.parent().expect("fan-out directory");
                match std::fs::create_dir(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
                match std::fs::hard_link(src, &target) {
                    Ok(()) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::CrossesDevices | io::ErrorKind::PermissionDenied
                        ) =>
                    {
                        self.put_if_absent(name, src)
                    }
                    Err(e) => Err(e),
                }
            })
            .collect();
        match crate::output::sync_paths(&[&self.root]) {
            Ok(()) => results,
            Err(e) => fail_all(e),
        }
    }

    fn get(&self, name: &str, dest: &Path) -> io::Result<bool> {
        let path = self.path(name)?;
        // Same file system: a link, no copy (readers never write to it).
        match std::fs::hard_link(&path, dest) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(_) => {}
        }
        match std::fs::copy(&path, dest) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for dir in self.fan_dirs()? {
            for entry in std::fs::read_dir(&dir)? {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if valid_name(&name) {
                    names.push(name);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn delete(&self, name: &str) -> io::Result<bool> {
        let path = self.path(name)?;
        // A store whose directory vanished (an unmounted disk) did not
        // answer: "not there" would be a lie that forgets the share.
        self.require_root()?;
        match std::fs::remove_file(&path) {
            Ok(()) => {
                if let Some(dir) = path.parent() {
                    sync_dir(dir)?;
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn clean_partials(&self) -> io::Result<usize> {
        let mut removed = 0;
        for dir in self.fan_dirs()? {
            for entry in std::fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(PARTIAL_PREFIX) && name.ends_with(PARTIAL_SUFFIX) {
                    std::fs::remove_file(entry.path())?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Store contract itself (create-only puts, batches, names, listing)
    // is tests/common/store_contract.rs, run on this store by tests/stores.rs.

    #[test]
    fn vanished_root_is_not_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new("s", dir.path().join("gone"));
        let src = dir.path().join("src");
        std::fs::write(&src, b"x").unwrap();
        assert!(store.put_if_absent(&"00".repeat(32), &src).is_err());
        assert!(!dir.path().join("gone").exists());
        assert!(store.list().unwrap().is_empty());
    }
}
