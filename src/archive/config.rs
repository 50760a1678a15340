//! `umbra.toml`: t, n, the stores and which share numbers (x) each holds,
//! and what that placement means against lost and colluding stores.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{ArchiveError, At, Result};
use crate::share::format::SchemeKind;
use crate::sharing::Threshold;

/// Reads a file that holds a password, refusing one that others may read.
pub fn read_secret_file(path: &Path) -> Result<zeroize::Zeroizing<String>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).at(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(ArchiveError::Config {
            path: path.to_path_buf(),
            reason: format!(
                "holds a password but is readable by others (mode {:o}): chmod 600 it",
                mode & 0o777
            ),
        });
    }
    Ok(zeroize::Zeroizing::new(
        std::fs::read_to_string(path).at(path)?,
    ))
}

/// The configuration file of an archive directory.
pub const CONFIG_FILE: &str = "umbra.toml";
/// Bytes of the site key.
pub const SITE_KEY_LEN: usize = 32;

fn default_catalog() -> PathBuf {
    "catalog.sqlite".into()
}
fn default_site_key() -> PathBuf {
    "site.key".into()
}
fn default_audit_log() -> PathBuf {
    "audit.log".into()
}
fn default_staging() -> PathBuf {
    "staging".into()
}

/// An archive's `umbra.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub t: usize,
    pub n: usize,
    /// How new objects are split: "shamir" (the default: n times the
    /// storage, perfect secrecy) or "compact" (n / t times, computational
    /// secrecy; docs/DESIGN.md section 8). Each version keeps the scheme it
    /// was written with.
    #[serde(default)]
    pub scheme: SchemeKind,
    #[serde(default = "default_catalog")]
    pub catalog: PathBuf,
    #[serde(default = "default_site_key")]
    pub site_key: PathBuf,
    #[serde(default = "default_audit_log")]
    pub audit_log: PathBuf,
    #[serde(default = "default_staging")]
    pub staging: PathBuf,
    /// Shares of an object that must reach their stores for it to count as
    /// protected while some stores are down (`degraded`, completed when
    /// they are back): t + 1 by default (one loss to spare), never below t.
    #[serde(default)]
    pub write_quorum: Option<usize>,
    /// A file holding `user:password` for an Orthanc that asks for them
    /// (relative to the archive; it must be 0600). UMBRA_ORTHANC_USER and
    /// UMBRA_ORTHANC_PASSWORD in the environment come first. Never the
    /// password itself in umbra.toml.
    #[serde(default)]
    pub orthanc_credentials: Option<PathBuf>,
    /// For a PostgreSQL catalog (`catalog = "postgresql://..."`): a 0600
    /// file whose first line is the password, when UMBRA_CATALOG_PASSWORD
    /// and PGPASSWORD are not set. Never the password in umbra.toml.
    #[serde(default)]
    pub catalog_password_file: Option<PathBuf>,
    /// For a PostgreSQL catalog over TLS: a PEM file of the certificates
    /// that sign the server's (relative to the archive), trusted instead of
    /// the operating system's roots; PGSSLROOTCERT in the environment when
    /// this is not set.
    #[serde(default)]
    pub catalog_ca_file: Option<PathBuf>,
    #[serde(rename = "store", default)]
    pub stores: Vec<StoreConfig>,
}

/// One store of `umbra.toml`: its name, URL and optional endpoint and region.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub name: String,
    pub url: String,
    /// Share numbers (x, 1..=n) this store holds; empty in every store
    /// means one each, in order.
    #[serde(default)]
    pub shares: Vec<u8>,
    /// For cloud stores: the service URL (`http://127.0.0.1:9000`; for
    /// az:// the account's blob URL), else the provider's default or the
    /// environment's; `region` for s3:// only. Credentials only from the
    /// environment.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
}

/// A checked configuration: which store holds each x.
#[derive(Debug, Clone)]
pub struct Layout {
    pub threshold: Threshold,
    /// The scheme new objects are split with.
    pub scheme: SchemeKind,
    /// See [`Config::write_quorum`]: t <= write_quorum <= n.
    pub write_quorum: usize,
    /// (x, store index), sorted by x; x runs over 1..=n.
    pub placement: Vec<(u8, usize)>,
    pub store_names: Vec<String>,
}

impl Config {
    /// Reads and checks `DIR/umbra.toml`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).at(&path)?;
        toml::from_str(&text).map_err(|e| ArchiveError::Config {
            path,
            reason: e.to_string(),
        })
    }

    /// Where the catalog is: `catalog` is a file relative to the archive,
    /// or a PostgreSQL connection string (`postgresql://user@host/db`, or
    /// libpq's `host=... dbname=...`), whose password comes from
    /// UMBRA_CATALOG_PASSWORD, PGPASSWORD or `catalog_password_file`.
    pub fn catalog_location(&self, dir: &Path) -> Result<crate::archive::catalog::Location> {
        use crate::archive::catalog::Location;
        let spec = self.catalog.to_string_lossy();
        if !Location::is_postgres(&spec) {
            return Ok(Location::File(dir.join(&self.catalog)));
        }
        let config_path = dir.join(CONFIG_FILE);
        let bad = |reason: String| ArchiveError::Config {
            path: config_path.clone(),
            reason,
        };
        let parsed: postgres::Config = crate::archive::catalog::client_conninfo(&spec)
            .parse()
            .map_err(|e| bad(format!("catalog: not a PostgreSQL connection string ({e})")))?;
        if parsed.get_password().is_some() {
            return Err(bad(
                "catalog: the connection string holds a password, which umbra.toml must not: \
                 set UMBRA_CATALOG_PASSWORD (or PGPASSWORD) or name a 0600 file in \
                 catalog_password_file"
                    .into(),
            ));
        }
        let password = match std::env::var("UMBRA_CATALOG_PASSWORD")
            .or_else(|_| std::env::var("PGPASSWORD"))
        {
            Ok(p) => Some(zeroize::Zeroizing::new(p)),
            Err(_) => match &self.catalog_password_file {
                Some(file) => {
                    let text = read_secret_file(&dir.join(file))?;
                    Some(zeroize::Zeroizing::new(
                        text.lines().next().unwrap_or_default().to_string(),
                    ))
                }
                None => None,
            },
        };
        let ca_file = self
            .catalog_ca_file
            .as_ref()
            .map(|f| dir.join(f))
            .or_else(|| std::env::var_os("PGSSLROOTCERT").map(PathBuf::from));
        Ok(Location::Postgres {
            conninfo: spec.into_owned(),
            password,
            ca_file,
        })
    }

    /// Checks t, n, store names and that every x in 1..=n is held by
    /// exactly one store.
    pub fn layout(&self, path: &Path) -> Result<Layout> {
        let bad = |reason: String| ArchiveError::Config {
            path: path.to_path_buf(),
            reason,
        };
        let threshold = Threshold::new(self.t, self.n).map_err(|e| bad(e.to_string()))?;
        let write_quorum = self.write_quorum.unwrap_or((self.t + 1).min(self.n));
        if write_quorum < self.t || write_quorum > self.n {
            return Err(bad(format!(
                "write_quorum = {write_quorum}: it must be between t = {} and n = {} (below t \
                 an object would be written that cannot be rebuilt)",
                self.t, self.n
            )));
        }
        if self.stores.is_empty() {
            return Err(bad("no [[store]] is configured".into()));
        }
        let mut names: Vec<String> = Vec::new();
        for s in &self.stores {
            if s.name.is_empty()
                || !s
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad(format!(
                    "store name {:?}: use letters, digits, - and _",
                    s.name
                )));
            }
            if names.contains(&s.name) {
                return Err(bad(format!("store name {:?} is used twice", s.name)));
            }
            names.push(s.name.clone());
        }
        let mut placement = Vec::new();
        if self.stores.iter().all(|s| s.shares.is_empty()) {
            if self.stores.len() != self.n {
                return Err(bad(format!(
                    "{} stores for n = {}: give each store its `shares = [...]`",
                    self.stores.len(),
                    self.n
                )));
            }
            placement = (0..self.n).map(|i| (i as u8 + 1, i)).collect();
        } else {
            for (i, s) in self.stores.iter().enumerate() {
                for &x in &s.shares {
                    placement.push((x, i));
                }
            }
            placement.sort();
            for (k, &(x, i)) in placement.iter().enumerate() {
                if x == 0 || x as usize > self.n {
                    return Err(bad(format!(
                        "store {}: share {x} is outside 1..={}",
                        self.stores[i].name, self.n
                    )));
                }
                if k > 0 && placement[k - 1].0 == x {
                    return Err(bad(format!("share {x} is placed on two stores")));
                }
            }
            if placement.len() != self.n {
                let missing: Vec<String> = (1..=self.n as u8)
                    .filter(|x| !placement.iter().any(|p| p.0 == *x))
                    .map(|x| x.to_string())
                    .collect();
                return Err(bad(format!(
                    "shares {} are on no store",
                    missing.join(", ")
                )));
            }
        }
        Ok(Layout {
            threshold,
            scheme: self.scheme,
            write_quorum,
            placement,
            store_names: names,
        })
    }
}

impl Layout {
    /// Shares held by each store.
    pub fn counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.store_names.len()];
        for &(_, i) in &self.placement {
            c[i] += 1;
        }
        c
    }
}

/// What a placement means, for `umbra config check`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlacementReport {
    pub t: usize,
    pub n: usize,
    pub stores: usize,
    /// Any this many stores may be lost and everything still restores.
    pub may_lose_any: usize,
    /// Some coalition of this many stores holds t shares.
    pub some_colluding: usize,
    /// Any coalition of this many stores holds t shares.
    pub any_colluding: usize,
    pub lines: Vec<String>,
    pub warnings: Vec<String>,
}

/// Explains the placement: losses survived and colluding stores that can
/// reconstruct. A store holding several shares weakens the threshold.
pub fn check_placement(layout: &Layout) -> PlacementReport {
    let t = layout.threshold.t();
    let n = layout.threshold.n();
    let mut counts = layout.counts();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let stores = counts.len();
    // Losing the k largest stores is the worst case.
    let mut may_lose_any = 0;
    let mut lost = 0;
    for (k, c) in counts.iter().enumerate() {
        lost += c;
        if n - lost >= t {
            may_lose_any = k + 1;
        } else {
            break;
        }
    }
    let first_reaching = |order: &[usize]| {
        let mut sum = 0;
        for (k, c) in order.iter().enumerate() {
            sum += c;
            if sum >= t {
                return k + 1;
            }
        }
        order.len()
    };
    let some_colluding = first_reaching(&counts);
    let ascending: Vec<usize> = counts.iter().rev().copied().collect();
    let any_colluding = first_reaching(&ascending);
    let mut lines = vec![
        format!(
            "({t}, {n}) sharing: any {t} shares rebuild an object, {} or fewer reveal nothing but its size",
            t - 1
        ),
        format!(
            "{stores} stores hold {n} shares: {:?} shares per store",
            layout.counts()
        ),
        format!(
            "any {may_lose_any} store(s) may be lost (or unreachable) and every object still restores"
        ),
    ];
    if any_colluding == some_colluding {
        lines.push(format!(
            "any {any_colluding} colluding store(s) together hold {t} shares and can reconstruct"
        ));
    } else {
        lines.push(format!(
            "some {some_colluding} colluding store(s) can reconstruct; any {any_colluding} can"
        ));
    }
    let mut warnings = Vec::new();
    if some_colluding < t {
        warnings.push(format!(
            "the threshold against colluding providers is {some_colluding} store(s), not {t}: \
             stores holding several shares each need fewer partners to reconstruct \
             (docs/DESIGN.md, section 1: collusion is counted in shares, not providers)"
        ));
    }
    if may_lose_any == 0 {
        warnings.push("losing any single store loses data: no redundancy".into());
    }
    PlacementReport {
        t,
        n,
        stores,
        may_lose_any,
        some_colluding,
        any_colluding,
        lines,
        warnings,
    }
}

/// Writes a new archive in `dir`: commented config, site key (0600), the
/// store directories; the catalog is created by the caller.
pub fn write_new(
    dir: &Path,
    t: usize,
    n: usize,
    stores: usize,
    scheme: SchemeKind,
    catalog: Option<&str>,
) -> Result<Config> {
    let path = dir.join(CONFIG_FILE);
    let bad = |reason: String| ArchiveError::Config {
        path: path.clone(),
        reason,
    };
    Threshold::new(t, n).map_err(|e| bad(e.to_string()))?;
    if stores == 0 || !n.is_multiple_of(stores) {
        return Err(bad(format!(
            "{stores} stores cannot hold {n} shares evenly; edit the placement by hand instead"
        )));
    }
    if path.exists() {
        return Err(bad("an archive is already configured here".into()));
    }
    let per = n / stores;
    let mut text = format!(
        "# umbra archive configuration.\n\
         #\n\
         # Every object is split into n shares; any t of them rebuild it, t - 1 or\n\
         # fewer reveal nothing but its size. `umbra config check` explains what the\n\
         # placement below means against lost and colluding stores.\n\
         t = {t}\n\
         n = {n}\n\
         \n\
         # How new objects are split (each version keeps its own): \"shamir\", n times\n\
         # the archive stored and perfect secrecy; or \"compact\" (encrypt, disperse,\n\
         # Shamir-share the key), n / t times and computational secrecy.\n\
         scheme = \"{scheme}\"\n\
         \n\
         # Hospital-side files, relative to this directory. The site key names the\n\
         # objects in the stores (keyed hashes): keep it secret, keep a backup.\n\
         # The catalog: a SQLite file here, or a PostgreSQL database shared by many\n\
         # workers (postgresql://user@host:port/db; the password from\n\
         # UMBRA_CATALOG_PASSWORD or PGPASSWORD, or catalog_password_file, 0600).\n\
         catalog = {catalog}\n\
         site_key = \"site.key\"\n\
         audit_log = \"audit.log\"\n\
         staging = \"staging\"\n\
         \n\
         # One [[store]] per storage provider. url: a local directory (relative to\n\
         # this file, or file:///abs/path), or a cloud store (umbra built with\n\
         # --features cloud, or aws / gcp / azure alone): s3://bucket/prefix,\n\
         # gs://bucket/prefix or az://container/prefix, with an optional\n\
         # endpoint = \"http://host:port\" (and region = \"...\" for s3://).\n\
         # Credentials come from the environment, never from this file:\n\
         # AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; GOOGLE_SERVICE_ACCOUNT (a\n\
         # service-account JSON file); AZURE_STORAGE_ACCOUNT_NAME and\n\
         # AZURE_STORAGE_ACCOUNT_KEY.\n\
         # shares: the share numbers (x, 1..=n) the store holds. Omit it in every\n\
         # store for one share each. The paper's 4 providers x 2 shares of (4, 8):\n\
         #   [[store]]  name = \"p1\"  url = \"s3://bucket-1/umbra\"  shares = [1, 2]\n\
         #   ... and [3, 4], [5, 6], [7, 8]: then any 2 providers can reconstruct.\n",
        catalog = toml::Value::String(catalog.unwrap_or("catalog.sqlite").to_string())
    );
    for s in 0..stores {
        let xs: Vec<String> = (s * per + 1..=(s + 1) * per)
            .map(|x| x.to_string())
            .collect();
        text.push_str(&format!(
            "\n[[store]]\nname = \"store-{}\"\nurl = \"stores/store-{}\"\nshares = [{}]\n",
            s + 1,
            s + 1,
            xs.join(", ")
        ));
    }
    let config: Config = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    config.layout(&path)?;
    // Nothing is written for a catalog that cannot be made (a database
    // that does not answer, or holds another archive's catalog).
    let at = config.catalog_location(dir)?;
    if at.exists()? {
        return Err(bad(format!(
            "a catalog already exists at {} (another archive's? give each archive its own \
             database or schema)",
            at.shown()
        )));
    }
    // Only now is anything written: the checks above leave no directory.
    std::fs::create_dir_all(dir).at(dir)?;
    for s in 0..stores {
        let root = dir.join("stores").join(format!("store-{}", s + 1));
        std::fs::create_dir_all(&root).at(&root)?;
    }
    write_site_key(&dir.join(&config.site_key))?;
    std::fs::create_dir_all(dir.join(&config.staging)).at(&dir.join(&config.staging))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .at(&path)?;
    f.write_all(text.as_bytes()).at(&path)?;
    f.sync_all().at(&path)?;
    Ok(config)
}

/// 32 random bytes from the OS, in a new file readable by its owner only.
pub(crate) fn write_site_key(path: &Path) -> Result<()> {
    let mut key = zeroize::Zeroizing::new([0u8; SITE_KEY_LEN]);
    getrandom::fill(key.as_mut()).map_err(|e| ArchiveError::Random(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .at(path)?;
    f.write_all(key.as_ref()).at(path)?;
    f.sync_all().at(path)
}

/// The site key. Never printed, never logged.
pub struct SiteKey(zeroize::Zeroizing<[u8; SITE_KEY_LEN]>);

impl SiteKey {
    /// Reads the site key at `path`, refusing a file of the wrong length.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = zeroize::Zeroizing::new(std::fs::read(path).at(path)?);
        let key: [u8; SITE_KEY_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| ArchiveError::Config {
                    path: path.to_path_buf(),
                    reason: format!("a site key is {SITE_KEY_LEN} bytes, found {}", bytes.len()),
                })?;
        Ok(Self(zeroize::Zeroizing::new(key)))
    }

    /// The store name of share `x` of the object version whose content hash
    /// is `content` and whose split id is `split_id`.
    pub fn object_name(&self, content: &[u8; 32], split_id: &[u8], x: u8) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(b"umbra archive share name v1\0");
        h.update(content);
        h.update(split_id);
        h.update(&[x]);
        h.finalize().to_hex().to_string()
    }

    /// A fingerprint safe to keep in the catalog (it names which key, it
    /// gives nothing of it).
    pub fn fingerprint(&self) -> String {
        let mut h = blake3::Hasher::new_derive_key("umbra site key fingerprint v1");
        h.update(self.0.as_ref());
        h.finalize().to_hex()[..16].to_string()
    }

    /// A key for the audit chain, derived so the site key itself is never
    /// used twice for different purposes.
    pub fn audit_key(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("umbra archive audit log v1");
        h.update(self.0.as_ref());
        *h.finalize().as_bytes()
    }
}

impl std::fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SiteKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(t: usize, n: usize, per_store: &[&[u8]]) -> Layout {
        let c = Config {
            t,
            n,
            scheme: SchemeKind::Shamir,
            catalog: default_catalog(),
            site_key: default_site_key(),
            audit_log: default_audit_log(),
            staging: default_staging(),
            write_quorum: None,
            orthanc_credentials: None,
            catalog_password_file: None,
            catalog_ca_file: None,
            stores: per_store
                .iter()
                .enumerate()
                .map(|(i, xs)| StoreConfig {
                    name: format!("s{i}"),
                    url: format!("s{i}"),
                    shares: xs.to_vec(),
                    endpoint: None,
                    region: None,
                })
                .collect(),
        };
        c.layout(Path::new("umbra.toml")).unwrap()
    }

    #[test]
    fn paper_placement_is_weaker_than_it_looks() {
        let l = layout(4, 8, &[&[1, 2], &[3, 4], &[5, 6], &[7, 8]]);
        let r = check_placement(&l);
        assert_eq!(r.may_lose_any, 2);
        assert_eq!(r.any_colluding, 2);
        assert_eq!(r.some_colluding, 2);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    }

    #[test]
    fn one_share_per_store() {
        let none: &[u8] = &[];
        let l = layout(4, 8, &[none; 8]);
        let r = check_placement(&l);
        assert_eq!((r.may_lose_any, r.any_colluding), (4, 4));
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn uneven_placement() {
        let l = layout(3, 5, &[&[1, 2, 3], &[4], &[5]]);
        let r = check_placement(&l);
        assert_eq!(r.may_lose_any, 0);
        assert_eq!(r.some_colluding, 1);
        assert_eq!(r.any_colluding, 3);
    }

    #[test]
    fn bad_placements_are_refused() {
        let c = |stores: Vec<Vec<u8>>| Config {
            scheme: SchemeKind::Shamir,
            t: 2,
            n: 3,
            catalog: default_catalog(),
            site_key: default_site_key(),
            audit_log: default_audit_log(),
            staging: default_staging(),
            write_quorum: None,
            orthanc_credentials: None,
            catalog_password_file: None,
            catalog_ca_file: None,
            stores: stores
                .into_iter()
                .enumerate()
                .map(|(i, shares)| StoreConfig {
                    name: format!("s{i}"),
                    url: "x".into(),
                    shares,
                    endpoint: None,
                    region: None,
                })
                .collect(),
        };
        let p = Path::new("umbra.toml");
        assert!(c(vec![vec![1, 2], vec![2, 3]]).layout(p).is_err());
        assert!(c(vec![vec![1, 2]]).layout(p).is_err());
        assert!(c(vec![vec![1, 2], vec![4]]).layout(p).is_err());
        assert!(c(vec![vec![], vec![]]).layout(p).is_err());
        assert!(c(vec![vec![1, 2], vec![3]]).layout(p).is_ok());
    }
}
