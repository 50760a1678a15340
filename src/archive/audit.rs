//! The audit log: append-only JSON lines, each carrying a MAC that chains it
//! to the line before, so that an edited, reordered or removed line breaks
//! the chain. The MAC key is derived from the site key, so nobody without it
//! can forge a fresh chain. Truncation at a line boundary keeps a valid
//! chain, so the catalog also records the last sequence number and MAC (the
//! head); a log that ends before the head, or is missing while the catalog
//! has a head, is reported, and nothing is appended to it until `umbra audit
//! restart` sets it aside and starts a new chain that records the break. The
//! catalog also keeps a fingerprint of the audit key, so that a wrong site
//! key is named as such, not as tampering.
//!
//! Line format: `{"mac":"<64 hex>","entry":{...}}`; the MAC is keyed BLAKE3
//! over the previous line's MAC (hex, or 64 zeros for the first) and the exact
//! bytes of the entry. Entries hold actions and counts, never patient data.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::catalog::Catalog;
use super::error::{ArchiveError, At, Result};
use super::time::now_secs;

const HEAD_KEY: &str = "audit_head";
const KEY_ID: &str = "audit_key_id";
const ZERO_MAC: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const LINE_START: &str = "{\"mac\":\"";
const ENTRY_KEY: &str = "\",\"entry\":";

/// The audit log of an archive, and the key its chain is made with: a file
/// beside a SQLite catalog, or, when the catalog is shared (PostgreSQL,
/// many workers on many machines), the rows of the catalog's `audit` table
/// (chain `current`), each exactly the line the file would hold, appended
/// under a transaction-scoped advisory lock so that N writers keep one
/// chain.
pub struct AuditLog {
    path: PathBuf,
    key: [u8; 32],
    in_catalog: bool,
}

/// Where a new line goes.
enum Sink<'a> {
    File(&'a mut std::fs::File),
    Catalog(&'a Catalog),
}

/// The catalog's name of the chain being written.
const CURRENT: &str = "current";

/// One checked line.
struct Line {
    seq: u64,
    mac: String,
    entry: Value,
}

/// A fingerprint of the audit key, safe to keep in the catalog: it tells a
/// wrong site key from a damaged log.
fn key_id(key: &[u8; 32]) -> String {
    let mut h = blake3::Hasher::new_derive_key("umbra audit key fingerprint v1");
    h.update(key);
    h.finalize().to_hex()[..16].to_string()
}

fn mac(key: &[u8; 32], prev: &str, entry: &str) -> String {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(entry.as_bytes());
    h.finalize().to_hex().to_string()
}

impl AuditLog {
    /// The log at `path`, chained with `key` (the site key's audit key).
    pub fn new(path: &Path, key: [u8; 32]) -> Self {
        Self {
            path: path.to_path_buf(),
            key,
            in_catalog: false,
        }
    }

    /// The chain kept in a shared catalog's `audit` table; `name` is how
    /// messages call it.
    pub fn in_catalog(name: &str, key: [u8; 32]) -> Self {
        Self {
            path: PathBuf::from(name),
            key,
            in_catalog: true,
        }
    }

    fn shown(&self) -> String {
        if self.in_catalog {
            format!("the audit chain in catalog {}", self.path.display())
        } else {
            format!("audit log {}", self.path.display())
        }
    }

    fn bad(&self, line: usize, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::Failed(format!("{} line {line}: {}", self.shown(), reason.into()))
    }

    fn catalog<'c>(&self, catalog: Option<&'c Catalog>) -> Result<&'c Catalog> {
        catalog.ok_or_else(|| {
            ArchiveError::Failed(format!(
                "{} cannot be read without the catalog",
                self.shown()
            ))
        })
    }

    /// The text of chain `chain` (the file, or the catalog's rows as the
    /// file's lines); None when there is none.
    fn text(&self, catalog: Option<&Catalog>, chain: &str) -> Result<Option<String>> {
        if self.in_catalog {
            let lines = self.catalog(catalog)?.audit_lines(chain)?;
            return Ok((!lines.is_empty())
                .then(|| lines.iter().map(|l| format!("{l}\n")).collect::<String>()));
        }
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at(&self.path),
        };
        String::from_utf8(text)
            .map(Some)
            .map_err(|_| self.bad(0, "not UTF-8"))
    }

    /// Whether the chain is there at all (a file, or rows).
    pub(crate) fn has_entries(&self, catalog: Option<&Catalog>) -> Result<bool> {
        if self.in_catalog {
            Ok(!self.catalog(catalog)?.audit_lines(CURRENT)?.is_empty())
        } else {
            Ok(self.path.exists())
        }
    }

    /// Checks every line of the chain; returns the lines in order.
    fn read_chain(&self, catalog: Option<&Catalog>) -> Result<Vec<Line>> {
        match self.text(catalog, CURRENT)? {
            Some(text) => self.parse_chain(&text),
            None => Ok(Vec::new()),
        }
    }

    fn parse_chain(&self, text: &str) -> Result<Vec<Line>> {
        if !text.is_empty() && !text.ends_with('\n') {
            let n = text.lines().count();
            return Err(self.bad(n, "the last line is cut short (truncated)"));
        }
        let mut out: Vec<Line> = Vec::new();
        let mut prev = ZERO_MAC.to_string();
        for (i, line) in text.lines().enumerate() {
            let no = i + 1;
            let rest = line
                .strip_prefix(LINE_START)
                .ok_or_else(|| self.bad(no, "not an audit line"))?;
            if rest.len() < 64 + ENTRY_KEY.len() || !rest.is_char_boundary(64) {
                return Err(self.bad(no, "not an audit line"));
            }
            let (stored, rest) = rest.split_at(64);
            let entry = rest
                .strip_prefix(ENTRY_KEY)
                .and_then(|r| r.strip_suffix('}'))
                .ok_or_else(|| self.bad(no, "not an audit line"))?;
            let expected = mac(&self.key, &prev, entry);
            if !constant_time_eq(stored.as_bytes(), expected.as_bytes()) {
                return Err(self.bad(
                    no,
                    "MAC mismatch: this line or the one before was edited, removed or reordered",
                ));
            }
            let v: Value =
                serde_json::from_str(entry).map_err(|e| self.bad(no, format!("bad JSON: {e}")))?;
            let seq = v["seq"].as_u64().ok_or_else(|| self.bad(no, "no seq"))?;
            if seq != no as u64 {
                return Err(self.bad(no, format!("sequence number {seq}, expected {no}")));
            }
            prev = stored.to_string();
            out.push(Line {
                seq,
                mac: prev.clone(),
                entry: v,
            });
        }
        Ok(out)
    }

    /// Appends one entry and records the new head in the catalog. The log
    /// stays locked from reading its last line to writing the new one, so
    /// concurrent commands (a restore during a migrate) never fork the chain.
    /// A log that does not match the catalog (missing, cut short, rewritten,
    /// or of another site key) is refused: see [`AuditLog::restart`].
    pub fn append(&self, catalog: Option<&Catalog>, action: &str, details: Value) -> Result<()> {
        if self.in_catalog {
            return self.catalog(catalog)?.audit_transaction(|c| {
                let chain = self.checked(Some(c))?;
                self.write_entry(Sink::Catalog(c), Some(c), &chain, action, details)
            });
        }
        // 0600 like the catalog: the log names no patient, but what was
        // done when is the hospital's business.
        super::catalog::private_file(&self.path)?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .at(&self.path)?;
        f.lock().at(&self.path)?;
        let chain = self.checked(catalog)?;
        self.write_entry(Sink::File(&mut f), catalog, &chain, action, details)?;
        f.unlock().at(&self.path)
    }

    fn write_entry(
        &self,
        sink: Sink<'_>,
        catalog: Option<&Catalog>,
        chain: &[Line],
        action: &str,
        details: Value,
    ) -> Result<()> {
        let (seq, prev) = chain
            .last()
            .map_or((1, ZERO_MAC.to_string()), |l| (l.seq + 1, l.mac.clone()));
        let entry = json!({
            "seq": seq,
            "time": now_secs(),
            "action": action,
            "details": details,
            "prev": prev,
        })
        .to_string();
        let m = mac(&self.key, &prev, &entry);
        let line = format!("{LINE_START}{m}{ENTRY_KEY}{entry}}}");
        match sink {
            Sink::File(f) => {
                f.write_all(format!("{line}\n").as_bytes()).at(&self.path)?;
                f.sync_all().at(&self.path)?;
            }
            Sink::Catalog(c) => c.audit_insert(CURRENT, seq, &line)?,
        }
        if let Some(c) = catalog {
            c.set_meta(HEAD_KEY, &format!("{seq} {m}"))?;
            c.set_meta(KEY_ID, &key_id(&self.key))?;
        }
        Ok(())
    }

    /// Checks the chain, and against the catalog's head when there is one.
    /// Returns the number of lines.
    pub fn verify(&self, catalog: Option<&Catalog>) -> Result<u64> {
        Ok(self.checked(catalog)?.len() as u64)
    }

    /// The entries of a chain that checks (as [`AuditLog::verify`]), in
    /// order: `{"seq", "time", "action", "details", "prev"}`.
    pub fn entries(&self, catalog: Option<&Catalog>) -> Result<Vec<Value>> {
        Ok(self
            .checked(catalog)?
            .into_iter()
            .map(|l| l.entry)
            .collect())
    }

    /// The chain, checked line by line and against the catalog: its key
    /// fingerprint (a wrong site key is named as such) and its head (a log
    /// missing, cut short or rewritten since).
    fn checked(&self, catalog: Option<&Catalog>) -> Result<Vec<Line>> {
        if let Some(c) = catalog
            && let Some(id) = c.get_meta(KEY_ID)?
            && id != key_id(&self.key)
        {
            return Err(ArchiveError::Failed(format!(
                "wrong site key: it is not the key this archive's audit log was made with \
                 (fingerprint {}, the catalog records {id}); use the archive's own site.key",
                key_id(&self.key)
            )));
        }
        let head = match catalog {
            Some(c) => c.get_meta(HEAD_KEY)?,
            None => None,
        };
        if head.is_some() && !self.has_entries(catalog)? {
            return Err(ArchiveError::Failed(format!(
                "{} is missing, but the catalog records entries in it (it was deleted or \
                 moved); `umbra audit restart` starts a new log that records the break",
                self.shown()
            )));
        }
        let chain = self.read_chain(catalog)?;
        if let Some(head) = head {
            let (seq, m) = head
                .split_once(' ')
                .and_then(|(s, m)| Some((s.parse::<u64>().ok()?, m)))
                .ok_or_else(|| {
                    ArchiveError::Failed("the catalog's audit head is malformed".into())
                })?;
            match chain.get(seq as usize - 1) {
                Some(l) if l.mac == m => {}
                Some(_) => {
                    return Err(self.bad(
                        seq as usize,
                        "differs from the head recorded in the catalog (the log was rewritten)",
                    ));
                }
                None => {
                    return Err(ArchiveError::Failed(format!(
                        "{}: truncated: it has {} line(s), the catalog records {seq}",
                        self.shown(),
                        chain.len()
                    )));
                }
            }
        }
        Ok(chain)
    }

    /// After a break (the log missing, damaged, cut short): sets the old
    /// file aside (`audit.log.broken-TIME`) and starts a new chain whose
    /// first entry records the break, the catalog's last head and `why`.
    /// Returns where the old log went, if there was one.
    pub fn restart(&self, catalog: &Catalog, why: &str) -> Result<Option<PathBuf>> {
        if self.in_catalog {
            let aside = format!("broken-{}", now_secs());
            return catalog.audit_transaction(|c| {
                let had = self.has_entries(Some(c))?;
                c.audit_set_aside(CURRENT, &aside)?;
                let details = json!({
                    "reason": why,
                    "previous_head": c.get_meta(HEAD_KEY)?,
                    "set_aside": had.then_some(&aside),
                });
                self.write_entry(Sink::Catalog(c), Some(c), &[], "restart", details)?;
                Ok(had.then(|| PathBuf::from(format!("the catalog's audit chain {aside}"))))
            });
        }
        let set_aside = if self.path.exists() {
            let mut name = self.path.as_os_str().to_os_string();
            name.push(format!(".broken-{}", now_secs()));
            let to = PathBuf::from(name);
            std::fs::rename(&self.path, &to).at(&self.path)?;
            Some(to)
        } else {
            None
        };
        super::catalog::private_file(&self.path)?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .at(&self.path)?;
        f.lock().at(&self.path)?;
        let details = json!({
            "reason": why,
            "previous_head": catalog.get_meta(HEAD_KEY)?,
            "set_aside": set_aside.as_ref().map(|p| p.display().to_string()),
        });
        self.write_entry(Sink::File(&mut f), Some(catalog), &[], "restart", details)?;
        f.unlock().at(&self.path)?;
        Ok(set_aside)
    }
}

impl AuditLog {
    /// A site key rotation: checks this chain (the old key), sets the file
    /// aside as `set_aside`, and starts the chain of `next` (the new key)
    /// with an entry that names the old file, its length and head, so the
    /// two chains read as one history. Resumable: with the old file already
    /// set aside and no new log yet, only the new chain is started.
    pub fn rotate_to(&self, catalog: &Catalog, next: &AuditLog, set_aside: &Path) -> Result<()> {
        if self.in_catalog {
            let aside = set_aside
                .file_name()
                .map_or("key-old".into(), |n| n.to_string_lossy().into_owned());
            return catalog.audit_transaction(|c| {
                let chain = if self.has_entries(Some(c))? {
                    let chain = self.checked(Some(c))?;
                    c.audit_set_aside(CURRENT, &aside)?;
                    chain
                } else {
                    match self.text(Some(c), &aside)? {
                        Some(text) => self.parse_chain(&text)?,
                        None => Vec::new(),
                    }
                };
                let details = json!({
                    "previous_log": aside,
                    "previous_entries": chain.len(),
                    "previous_head": chain.last().map(|l| format!("{} {}", l.seq, l.mac)),
                    "previous_key": key_id(&self.key),
                });
                next.write_entry(Sink::Catalog(c), Some(c), &[], "key rotate", details)
            });
        }
        let (entries, head) = if self.path.exists() {
            let chain = self.checked(Some(catalog))?;
            let head = chain.last().map(|l| format!("{} {}", l.seq, l.mac));
            std::fs::rename(&self.path, set_aside).at(&self.path)?;
            (chain.len(), head)
        } else if set_aside.exists() {
            let old = AuditLog::new(set_aside, self.key);
            let chain = old.checked(Some(catalog))?;
            (
                chain.len(),
                chain.last().map(|l| format!("{} {}", l.seq, l.mac)),
            )
        } else {
            (0, None)
        };
        super::catalog::private_file(&next.path)?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&next.path)
            .at(&next.path)?;
        f.lock().at(&next.path)?;
        let details = json!({
            "previous_log": set_aside.file_name().map(|n| n.to_string_lossy().into_owned()),
            "previous_entries": entries,
            "previous_head": head,
            "previous_key": key_id(&self.key),
        });
        next.write_entry(
            Sink::File(&mut f),
            Some(catalog),
            &[],
            "key rotate",
            details,
        )?;
        f.unlock().at(&next.path)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_detects_edits_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let cat = Catalog::create(&crate::archive::catalog::Location::File(
            dir.path().join("c.sqlite"),
        ))
        .unwrap();
        let log = AuditLog::new(&path, [7; 32]);
        for i in 0..3 {
            log.append(Some(&cat), "migrate", json!({ "written": i }))
                .unwrap();
        }
        assert_eq!(log.verify(Some(&cat)).unwrap(), 3);
        let text = std::fs::read_to_string(&path).unwrap();

        std::fs::write(&path, text.replace("\"written\":1", "\"written\":9")).unwrap();
        assert!(
            log.verify(Some(&cat))
                .unwrap_err()
                .to_string()
                .contains("line 2")
        );

        let two: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, &two).unwrap();
        assert!(log.verify(None).is_ok());
        assert!(
            log.verify(Some(&cat))
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );

        std::fs::write(&path, &text[..text.len() - 5]).unwrap();
        assert!(
            log.verify(None)
                .unwrap_err()
                .to_string()
                .contains("cut short")
        );

        let other = AuditLog::new(&path, [8; 32]);
        std::fs::write(&path, &text).unwrap();
        assert!(other.verify(None).is_err());
        let e = other.verify(Some(&cat)).unwrap_err().to_string();
        assert!(e.contains("wrong site key"), "{e}");

        // Deleted: noticed, and not hidden by the next append.
        std::fs::remove_file(&path).unwrap();
        let e = log.verify(Some(&cat)).unwrap_err().to_string();
        assert!(e.contains("is missing"), "{e}");
        assert!(log.append(Some(&cat), "migrate", json!({})).is_err());
        assert!(log.verify(Some(&cat)).is_err(), "still not hidden");
        // A restart records the break and the log goes on from there.
        log.restart(&cat, "deleted").unwrap();
        log.append(Some(&cat), "migrate", json!({})).unwrap();
        assert_eq!(log.verify(Some(&cat)).unwrap(), 2);
    }
}
