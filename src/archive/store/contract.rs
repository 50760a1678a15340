//! The store contract: a place that holds share objects under opaque names,
//! with create-only atomic puts. Every store (local directory, cloud bucket)
//! implements it, and tests/store_contract.rs holds them all to it.

use std::io;
use std::path::Path;

/// A place that holds share objects under opaque names.
pub trait Store: Send + Sync {
    /// The name the configuration gives this store.
    fn label(&self) -> &str;
    /// Creates `name` holding the bytes of the file `src`, atomically.
    /// `Ok(false)`: the name already existed and was left untouched. `src`
    /// is a finished file that the caller will not change again: a store may
    /// take it over (link it) instead of copying it.
    fn put_if_absent(&self, name: &str, src: &Path) -> io::Result<bool>;
    /// [`Store::put_if_absent`] for several objects, one result each, every
    /// `Ok` durable when this returns. A store may make them durable
    /// together (one file system sync instead of one per object); the
    /// default puts them one by one.
    fn put_all_if_absent(&self, items: &[(&str, &Path)]) -> Vec<io::Result<bool>> {
        items
            .iter()
            .map(|(name, src)| self.put_if_absent(name, src))
            .collect()
    }
    /// Copies `name` to the file `dest` (a new name). `Ok(false)`: there is
    /// no such object. Callers only read `dest`: a store may link it.
    fn get(&self, name: &str, dest: &Path) -> io::Result<bool>;
    /// Every object name in the store.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Removes `name`. `Ok(false)`: there was no such object.
    fn delete(&self, name: &str) -> io::Result<bool>;
    /// The directory of a local store (for a migrate to keep out of its
    /// source); `None` for others.
    fn local_root(&self) -> Option<&Path> {
        None
    }
    /// Removes temporary files left by a killed writer; only called while
    /// the archive lock is held. Returns how many.
    fn clean_partials(&self) -> io::Result<usize> {
        Ok(0)
    }
}

/// Object names are lowercase hex of 32 bytes: nothing else is ever stored,
/// so nothing else is accepted (no path can escape the root).
pub fn valid_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(super) fn bad_name(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{name:?} is not an object name"),
    )
}
