//! The local directory store held to the store contract
//! (tests/common/store_contract.rs) that every cloud store runs too: its
//! operations, and the nightly job through an outage (the directory of two
//! stores moved away and back, as a mount that goes missing).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::store_contract::{self, Server, Subject};
use common::*;
use umbra::archive::store::{LocalStore, Store};

#[test]
fn local_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let open = |prefix: &str| -> Box<dyn Store> {
        let at = root.join("stores").join(prefix);
        fs::create_dir_all(&at).unwrap();
        Box::new(LocalStore::new(prefix, at))
    };
    store_contract::contract(
        &Subject {
            open: &open,
            seed: None,
            missing: Some(Box::new(LocalStore::new("gone", root.join("gone")))),
        },
        dir.path(),
    );
    assert!(
        !root.join("gone").exists(),
        "a missing store is not created"
    );
}

/// Stores 2 and 3 in a directory outside the archive, which goes away
/// during the outage.
struct Mount {
    dir: PathBuf,
}

impl Mount {
    fn store(&self, k: usize) -> PathBuf {
        self.dir.join(format!("remote-{k}"))
    }
}

impl Server for Mount {
    fn store_config(&self, k: usize) -> String {
        let at = self.store(k);
        fs::create_dir_all(&at).unwrap();
        format!("url = \"{}\"", at.display())
    }

    fn open(&self, k: usize) -> Box<dyn Store> {
        Box::new(LocalStore::new(&format!("store-{k}"), self.store(k)))
    }

    fn umbra(&self, arc: &Path, args: &[&str]) -> Output {
        umbra_at(arc, args, &[])
    }

    fn stop(&mut self) {
        fs::rename(&self.dir, self.dir.with_extension("down")).unwrap();
    }

    fn restart(&mut self) {
        fs::rename(self.dir.with_extension("down"), &self.dir).unwrap();
    }
}

#[test]
fn local_stores_through_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let mut mount = Mount {
        dir: dir.path().join("mount"),
    };
    store_contract::outage(&mut mount, dir.path());
}
