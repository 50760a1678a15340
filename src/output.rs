//! Outputs that appear whole or not at all: each is written to a temporary
//! file beside its final name and renamed only when everything succeeded.
//! A set of outputs (the n shares of one split) is committed together; if
//! one rename fails, the ones already renamed are removed again.
//!
//! A temporary output is named `.umbra-PID-XXXXXX.partial` and tracked
//! while it lives: when SIGINT or SIGTERM ends the run, [`remove_live`]
//! (called by the CLI's signal watcher) removes every one, so no partial
//! plaintext is left behind; and if the run died harder (SIGKILL, power),
//! the next output made in that directory removes those of processes that
//! are gone (see [`sweep_stale`]).

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tempfile::NamedTempFile;

use crate::error::{Error, IoContext, Result};

/// The partial outputs (files or directories) this process holds now.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Directories already swept of stale partials by this process.
static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Records a partial output to remove if the run is interrupted.
pub fn track(path: &Path) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(path.to_path_buf());
}

/// Forgets a partial output (committed, or removed by its owner).
pub fn untrack(path: &Path) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| p != path);
}

/// Removes every partial output this process holds: for the signal
/// watcher, just before the process exits.
pub fn remove_live() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for p in live {
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// The prefix of this process's temporary names: `.umbra-PID-` (and
/// `.umbra-restore-PID-` for a restore's directory).
pub fn temp_prefix(kind: &str) -> String {
    format!(".umbra-{kind}{}-", std::process::id())
}

/// Removes, once per directory and process, the partial outputs in `dir`
/// that a process now gone left (killed without a chance to clean up):
/// names `.umbra-PID-*.partial` and `.umbra-restore-PID-*` whose PID runs
/// no more, owned by this user. Others' files, and names of live
/// processes, are left alone.
pub fn sweep_stale(dir: &Path) {
    use std::os::unix::fs::MetadataExt;
    let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if !swept.get_or_insert_with(HashSet::new).insert(key) {
            return;
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = rustix::process::geteuid().as_raw();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let rest = name.strip_prefix(".umbra-restore-").or_else(|| {
            name.strip_prefix(".umbra-")
                .filter(|_| name.ends_with(".partial"))
        });
        let Some(pid) = rest
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.uid() == me && m.is_dir() => {
                let _ = std::fs::remove_dir_all(&path);
            }
            Ok(m) if m.uid() == me && m.is_file() => {
                let _ = std::fs::remove_file(&path);
            }
            _ => {}
        }
    }
}

/// Test hook, as the archive's (tests/archive/main.rs): with
/// UMBRA_TEST_PAUSE_AT=`output:K`, the K-th temporary output of the process
/// is created and then the process waits while the file named by
/// UMBRA_TEST_PAUSE_FILE exists (created here): tests signal or kill it
/// there.
fn test_pause_at_output() {
    static CREATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let (Ok(at), Ok(file)) = (
        std::env::var("UMBRA_TEST_PAUSE_AT"),
        std::env::var("UMBRA_TEST_PAUSE_FILE"),
    ) else {
        return;
    };
    let k = CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if at != format!("output:{k}") {
        return;
    }
    let _ = std::fs::write(&file, "output");
    while Path::new(&file).exists() {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A temporary file that becomes `target` on commit.
pub struct PendingFile {
    /// Until commit.
    temp: Option<NamedTempFile>,
    /// The temporary file's path (tracked while it lives).
    path: PathBuf,
    target: PathBuf,
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        untrack(&self.path);
    }
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
        sweep_stale(dir);
        let temp = tempfile::Builder::new()
            .prefix(&temp_prefix(""))
            .suffix(".partial")
            .tempfile_in(dir)
            .at(dir)?;
        let path = temp.path().to_path_buf();
        track(&path);
        test_pause_at_output();
        Ok(Self {
            temp: Some(temp),
            path,
            target: target.to_path_buf(),
        })
    }

    /// The temporary file, to write the output into.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_mut().expect("until commit").as_file_mut()
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
    pub fn commit(mut self, overwrite: bool, sync: bool) -> Result<PathBuf> {
        let temp = self.temp.take().expect("committed once");
        if sync {
            temp.as_file().sync_all().at(&self.target)?;
        }
        let target = self.target.clone();
        check_replaceable(&target, overwrite)?;
        let persisted = if overwrite {
            temp.persist(&target)
        } else {
            temp.persist_noclobber(&target)
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

/// Has `file`'s dirty pages written to disk soon, without waiting for them
/// (Linux: `sync_file_range(SYNC_FILE_RANGE_WRITE)`, made by one background
/// thread, since the call blocks while the disk's queue is full; elsewhere
/// nothing). A hint, not durability: [`sync_paths`] still commits, and
/// reports any error; a hint that finds the queue to that thread full is
/// dropped. Given each file of a batch as it is complete (migrate's staged
/// shares, restore's rebuilt objects), it keeps the disk writing while the
/// CPU makes the next ones, so the batch's sync finds little left to write.
pub fn start_writeback(file: std::fs::File) {
    #[cfg(target_os = "linux")]
    {
        use std::sync::mpsc::{SyncSender, sync_channel};
        static QUEUE: std::sync::OnceLock<Option<SyncSender<std::fs::File>>> =
            std::sync::OnceLock::new();
        let queue = QUEUE.get_or_init(|| {
            // At most this many files held open for it: a slow disk must
            // not run the process out of descriptors (1,024 is a common
            // limit); past it, hints are dropped.
            let (tx, rx) = sync_channel::<std::fs::File>(64);
            std::thread::Builder::new()
                .name("writeback".into())
                .spawn(move || {
                    use std::os::fd::AsRawFd;
                    for f in rx {
                        // SAFETY: the descriptor is owned by `f`, open for
                        // the call, which touches no memory of this process.
                        let _ = unsafe {
                            libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE)
                        };
                    }
                })
                .ok()
                .map(|_| tx)
        });
        if let Some(tx) = queue {
            let _ = tx.try_send(file);
        }
    }
    #[cfg(not(target_os = "linux"))]
    drop(file);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Descriptors of this process open on files below `dir`.
    #[cfg(target_os = "linux")]
    fn open_below(dir: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|p| p.starts_with(dir))
            .count()
    }

    #[test]
    fn writeback_hints_close_their_files_and_change_no_byte() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        let mut files = Vec::new();
        for k in 0..300u32 {
            let p = dir.join(format!("f{k}"));
            let body = k.to_le_bytes().repeat(1000 + k as usize);
            std::fs::write(&p, &body).unwrap();
            start_writeback(std::fs::File::open(&p).unwrap());
            files.push((p, body));
        }
        // Each hint's file is closed once it is made (or dropped unmade).
        #[cfg(target_os = "linux")]
        {
            let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while open_below(&dir) > 0 && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            assert_eq!(open_below(&dir), 0, "files held open after their hints");
        }
        let paths: Vec<&Path> = files.iter().map(|(p, _)| p.as_path()).collect();
        sync_paths(&paths).unwrap();
        for (p, body) in &files {
            assert_eq!(&std::fs::read(p).unwrap(), body, "{}", p.display());
        }
    }
}
