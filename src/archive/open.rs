//! An opened archive: its configuration, stores, catalog, site key and
//! audit log, and the lock that lets one writer at a time change it.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::archive::audit::AuditLog;
use crate::archive::catalog::{Catalog, Location};
use crate::archive::config::{self, Config, Layout, SiteKey};
use crate::archive::error::{ArchiveError, At, Result};
use crate::archive::source::orthanc::{Credentials, Orthanc};
use crate::archive::store::{self, Store};
use crate::engine::Backend;
use crate::sharing::SplitPlan;

/// Temporary directories of repair (removed by the lock's cleanup) and of
/// a plain verify (left alone: it runs without the lock).
pub(crate) const VERIFY_PREFIX: &str = ".umbra-verify-";

pub(crate) const CHECK_PREFIX: &str = ".umbra-check-";

/// The staging directory of one migrate worker (`migrate --worker`),
/// inside the archive's; removed by the next exclusive lock.
pub(crate) const WORKER_STAGING: &str = ".umbra-worker-";

/// The catalog's meta key for the fingerprint of its site key.
pub(crate) const SITE_KEY_ID: &str = "site_key_id";

/// The catalog's meta key of an unfinished site key rotation
/// (`archive::rotate`).
pub(crate) const ROTATION: &str = "key_rotation";

/// Chooses the backend once the job size is known (the CLI honours
/// `--backend` and `--cross-check` here).
pub type BackendFactory<'a> = &'a mut dyn FnMut(u64) -> Result<Box<dyn Backend>, String>;

/// The archive's lock while it is held: the lock file of the archive
/// directory, and for a PostgreSQL catalog a session advisory lock on the
/// connection kept here (workers on other machines share no directory).
struct Held {
    _file: File,
    /// In a mutex only so that the archive stays `Sync`: it is never used
    /// again, its session holds the lock.
    _advisory: Option<std::sync::Mutex<crate::archive::db::Db>>,
}

/// How the lock is held: one writer alone, or one of many migrate workers
/// (which exclude every other writer, but not each other).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockMode {
    Exclusive,
    Shared,
}

/// Opens (creating) the lock file `path` and tries to lock it in `mode`;
/// None while another process holds it.
pub(crate) fn try_lock_file(path: &Path, mode: LockMode) -> Result<Option<File>> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .at(path)?;
    let taken = match mode {
        LockMode::Exclusive => f.try_lock(),
        LockMode::Shared => f.try_lock_shared(),
    };
    match taken {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e).at(path),
    }
}

/// The advisory lock key of the archive (per schema: two archives may
/// share a database in two schemas).
pub(crate) const ARCHIVE_LOCK: &str = "umbra archive";

/// An opened archive directory.
pub struct Archive {
    pub dir: PathBuf,
    pub config: Config,
    pub layout: Layout,
    pub stores: Vec<Box<dyn Store>>,
    /// Missing only in a disaster: `restore --without-catalog` works
    /// without it (it reads names from the stores, not from the key).
    site_key: std::result::Result<SiteKey, String>,
    _lock: Option<Held>,
    /// How long migrate and archive-repair wait for another writer to finish
    /// (`--retry-lock`; default: not at all).
    pub lock_wait: std::time::Duration,
    /// How far the operation in progress is (a progress bar reads it).
    pub meter: std::sync::Arc<crate::archive::progress::Meter>,
    /// `migrate --worker`: its lease owner name, and its own staging
    /// directory inside the archive's.
    pub(crate) worker: Option<String>,
    pub(crate) worker_staging: Option<PathBuf>,
}

/// Creates a new archive in `dir` (config, empty catalog, site key, stores);
/// `catalog` is umbra.toml's `catalog` (default: catalog.sqlite here).
pub fn init(
    dir: &Path,
    t: usize,
    n: usize,
    stores: usize,
    scheme: crate::share::format::SchemeKind,
    catalog: Option<&str>,
) -> Result<Archive> {
    let config = config::write_new(dir, t, n, stores, scheme, catalog)?;
    Catalog::create(&config.catalog_location(dir)?)?;
    Archive::open(dir)
}

impl Archive {
    /// Opens the archive in `dir`: its configuration, stores and site key.
    pub fn open(dir: &Path) -> Result<Self> {
        let config = Config::load(dir)?;
        let layout = config.layout(&dir.join(config::CONFIG_FILE))?;
        let stores = config
            .stores
            .iter()
            .map(|s| {
                store::open(
                    &s.name,
                    &s.url,
                    s.endpoint.as_deref(),
                    s.region.as_deref(),
                    dir,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let site_key = SiteKey::load(&dir.join(&config.site_key)).map_err(|e| e.to_string());
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            layout,
            stores,
            site_key,
            _lock: None,
            lock_wait: std::time::Duration::ZERO,
            meter: Default::default(),
            worker: None,
            worker_staging: None,
        })
    }

    /// Takes the archive's exclusive lock (one writer at a time), then
    /// removes what a killed writer left: staging files and store partials.
    pub(crate) fn lock(&mut self) -> Result<()> {
        self.lock_as(LockMode::Exclusive)
    }

    /// [`Archive::lock`] in `mode`.
    pub(crate) fn lock_as(&mut self, mode: LockMode) -> Result<()> {
        self.lock_inner(mode)?;
        let Some(cat) = Catalog::open_if_exists(&self.catalog_location()?)? else {
            return Ok(());
        };
        // A site key rotation left unfinished: names and the audit chain
        // may be half moved, and the catalog may already name the new key;
        // nothing else writes until it is done (checked before the key).
        if let Some(state) = cat.get_meta(ROTATION)? {
            return Err(ArchiveError::Failed(format!(
                "a site key rotation is unfinished ({state}): run `umbra key rotate` to finish \
                 it before anything else writes to the archive"
            )));
        }
        // The first writer records which site key the catalog goes with
        // (`catalog()` refuses another).
        self.check_site_key(&cat)?;
        if let Ok(key) = &self.site_key
            && cat.get_meta(SITE_KEY_ID)?.is_none()
        {
            cat.set_meta(SITE_KEY_ID, &key.fingerprint())?;
        }
        Ok(())
    }

    /// The lock, for `key rotate` itself.
    pub(crate) fn lock_for_rotation(&mut self) -> Result<()> {
        self.lock_inner(LockMode::Exclusive)
    }

    fn lock_inner(&mut self, mode: LockMode) -> Result<()> {
        let path = self.dir.join(".lock");
        let deadline = std::time::Instant::now() + self.lock_wait;
        let f = loop {
            match try_lock_file(&path, mode)? {
                Some(f) => break f,
                None if std::time::Instant::now() >= deadline => {
                    return Err(ArchiveError::Locked {
                        path,
                        waited: self.lock_wait,
                    });
                }
                None => std::thread::sleep(std::time::Duration::from_millis(200)),
            }
        };
        let at = self.catalog_location()?;
        let advisory = match &at {
            Location::Postgres { .. } => {
                let db = crate::archive::catalog::connect(&at)?;
                while !crate::archive::catalog::try_advisory_lock(
                    &db,
                    &at,
                    ARCHIVE_LOCK,
                    mode == LockMode::Shared,
                )? {
                    if std::time::Instant::now() >= deadline {
                        return Err(ArchiveError::Locked {
                            path: PathBuf::from(at.shown()),
                            waited: self.lock_wait,
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                Some(std::sync::Mutex::new(db))
            }
            Location::File(_) => None,
        };
        self._lock = Some(Held {
            _file: f,
            _advisory: advisory,
        });
        if mode == LockMode::Shared {
            // Other workers are writing: their staging files and store
            // partials are not leftovers.
            return Ok(());
        }
        // Only what this code creates there (tempfile's `.tmp*` directories),
        // whatever the configuration names as staging.
        let staging = self.staging();
        std::fs::create_dir_all(&staging).at(&staging)?;
        for entry in std::fs::read_dir(&staging).at(&staging)? {
            let entry = entry.at(&staging)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if (name.starts_with(".tmp")
                || name.starts_with(VERIFY_PREFIX)
                || name.starts_with(WORKER_STAGING))
                && entry.file_type().at(&entry.path())?.is_dir()
            {
                std::fs::remove_dir_all(entry.path()).at(&entry.path())?;
            }
        }
        for s in &self.stores {
            // A store that cannot be listed now fails later, per object.
            let _ = s.clean_partials();
        }
        Ok(())
    }

    pub(crate) fn staging(&self) -> PathBuf {
        match &self.worker_staging {
            Some(p) => p.clone(),
            None => self.dir.join(&self.config.staging),
        }
    }

    /// Opens the archive's catalog, and refuses a site key that is not the
    /// one the catalog was used with (its fingerprint, recorded by the
    /// first command that wrote with it): every name would be wrong.
    pub fn catalog(&self) -> Result<Catalog> {
        let cat = Catalog::open(&self.catalog_location()?)?;
        self.check_site_key(&cat)?;
        Ok(cat)
    }

    /// [`Archive::catalog`], or None when there is none yet.
    pub(crate) fn catalog_if_exists(&self) -> Result<Option<Catalog>> {
        let Some(cat) = Catalog::open_if_exists(&self.catalog_location()?)? else {
            return Ok(None);
        };
        self.check_site_key(&cat)?;
        Ok(Some(cat))
    }

    fn check_site_key(&self, cat: &Catalog) -> Result<()> {
        if let Ok(key) = &self.site_key
            && let Some(id) = cat.get_meta(SITE_KEY_ID)?
            && id != key.fingerprint()
        {
            return Err(ArchiveError::Failed(format!(
                "wrong site key: {} is not the key this archive's catalog was used with \
                 (fingerprint {}, the catalog records {id}); use the archive's own site key",
                self.dir.join(&self.config.site_key).display(),
                key.fingerprint()
            )));
        }
        Ok(())
    }

    /// Where the catalog is (umbra.toml's `catalog`).
    pub fn catalog_location(&self) -> Result<crate::archive::catalog::Location> {
        self.config.catalog_location(&self.dir)
    }

    pub(crate) fn site_key(&self) -> Result<&SiteKey> {
        self.site_key
            .as_ref()
            .map_err(|e| ArchiveError::Failed(e.clone()))
    }

    /// The archive's audit log (needs the site key).
    pub fn audit(&self) -> Result<AuditLog> {
        self.audit_with(self.site_key()?.audit_key())
    }

    /// The archive's audit log chained with `key`: the file umbra.toml
    /// names beside a SQLite catalog, the catalog's own table when the
    /// catalog is PostgreSQL (shared by workers on many machines).
    pub(crate) fn audit_with(&self, key: [u8; 32]) -> Result<AuditLog> {
        Ok(match self.catalog_location()? {
            at @ Location::Postgres { .. } => AuditLog::in_catalog(&at.shown(), key),
            Location::File(_) => AuditLog::new(&self.dir.join(&self.config.audit_log), key),
        })
    }

    /// The configured store `name`; a store that the catalog names and
    /// umbra.toml no longer lists is [`ArchiveError::UnknownStore`].
    pub(crate) fn store(&self, name: &str) -> Result<&dyn Store> {
        self.store_index(name).map(|i| self.stores[i].as_ref())
    }

    pub(crate) fn store_index(&self, name: &str) -> Result<usize> {
        self.stores
            .iter()
            .position(|s| s.label() == name)
            .ok_or_else(|| self.unknown_store(name, 0))
    }

    fn unknown_store(&self, name: &str, objects: u64) -> ArchiveError {
        ArchiveError::UnknownStore {
            store: name.to_string(),
            objects,
            config: self.dir.join(config::CONFIG_FILE),
        }
    }

    /// Every store the catalog places shares in must be configured: checked
    /// before a command works on the catalog's objects, so that the error
    /// names the store once instead of failing object by object.
    pub(crate) fn check_catalog_stores(&self, cat: &Catalog) -> Result<()> {
        for (store, objects) in cat.placement_stores()? {
            if !self.stores.iter().any(|s| s.label() == store) {
                return Err(self.unknown_store(&store, objects));
            }
        }
        Ok(())
    }

    /// The Orthanc at `url`, with credentials from the environment
    /// (UMBRA_ORTHANC_USER, UMBRA_ORTHANC_PASSWORD), else the 0600 file
    /// umbra.toml names (`orthanc_credentials`), else the URL's own.
    pub fn orthanc(&self, url: &str) -> Result<Orthanc> {
        if let Ok(user) = std::env::var("UMBRA_ORTHANC_USER") {
            let password = zeroize::Zeroizing::new(
                std::env::var("UMBRA_ORTHANC_PASSWORD").unwrap_or_default(),
            );
            return Ok(Orthanc::new(url, Some(Credentials { user, password })));
        }
        let Some(file) = &self.config.orthanc_credentials else {
            return Ok(Orthanc::new(url, None));
        };
        let path = self.dir.join(file);
        let text = config::read_secret_file(&path)?;
        let line = text.lines().next().unwrap_or_default();
        let Some((user, password)) = line.split_once(':') else {
            return Err(ArchiveError::Config {
                path,
                reason: "expected one line user:password".into(),
            });
        };
        Ok(Orthanc::new(
            url,
            Some(Credentials {
                user: user.to_string(),
                password: zeroize::Zeroizing::new(password.to_string()),
            }),
        ))
    }

    pub(crate) fn plan(&self) -> Result<SplitPlan> {
        let xs: Vec<u8> = self.layout.placement.iter().map(|p| p.0).collect();
        SplitPlan::new(self.layout.threshold, xs).map_err(|e| ArchiveError::Core(e.into()))
    }
}
