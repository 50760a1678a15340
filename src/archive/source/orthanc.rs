//! An Orthanc PACS as a source and a restore target, over its REST API.
//!
//! Instances are listed page by page (`/instances?since=N&limit=M`); a
//! changed instance is noticed by its stored file's size and MD5 (two small
//! requests), and only then downloaded byte for byte (`/instances/{id}/file`)
//! into a cache beside the catalog, from where migrate reads it like any file.
//! Restores are pushed back with `POST /instances` (Orthanc keeps the bytes of
//! a REST upload as sent).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::archive::catalog::Identity;
use crate::archive::error::{ArchiveError, At, Result};
use crate::archive::time::dicom_date_days;

const PAGE: usize = 1000;

/// An Orthanc server's REST API at a base URL.
pub struct Orthanc {
    base: String,
    agent: ureq::Agent,
}

impl Orthanc {
    /// `base`: `http://HOST:PORT`.
    pub fn new(base: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// The base URL, as given.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> ArchiveError {
        ArchiveError::Failed(format!("Orthanc at {}: {what}: {e}", self.base))
    }

    fn get_text(&self, path: &str) -> Result<String> {
        let url = format!("{}{path}", self.base);
        self.agent
            .get(&url)
            .call()
            .and_then(|mut r| r.body_mut().read_to_string())
            .map_err(|e| self.err(&format!("GET {path}"), e))
    }

    /// Every instance id, in Orthanc's order.
    pub fn instances(&self) -> Result<Vec<String>> {
        let mut all = Vec::new();
        loop {
            let path = format!("/instances?since={}&limit={PAGE}", all.len());
            let page: Vec<String> = serde_json::from_str(&self.get_text(&path)?)
                .map_err(|e| self.err(&format!("GET {path}"), e))?;
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// The sequence number of the latest change (the cursor to keep).
    pub fn last_change(&self) -> Result<u64> {
        let v: serde_json::Value = serde_json::from_str(&self.get_text("/changes?last")?)
            .map_err(|e| self.err("GET /changes?last", e))?;
        v["Last"]
            .as_u64()
            .ok_or_else(|| self.err("GET /changes?last", "no Last"))
    }

    /// Instances added since change `since`, and the new cursor. Orthanc
    /// does not log deletions: a full listing notices those.
    pub fn new_instances_since(&self, since: u64) -> Result<(Vec<String>, u64)> {
        let mut ids = Vec::new();
        let mut cursor = since;
        loop {
            let path = format!("/changes?since={cursor}&limit={PAGE}");
            let v: serde_json::Value = serde_json::from_str(&self.get_text(&path)?)
                .map_err(|e| self.err(&format!("GET {path}"), e))?;
            for c in v["Changes"].as_array().into_iter().flatten() {
                if c["ChangeType"] == "NewInstance"
                    && let Some(id) = c["ID"].as_str()
                    && !ids.iter().any(|i| i == id)
                {
                    ids.push(id.to_string());
                }
            }
            cursor = v["Last"].as_u64().unwrap_or(cursor);
            if v["Done"].as_bool() != Some(false) {
                return Ok((ids, cursor));
            }
        }
    }

    /// The stored file's size and a change signature from its MD5; `None`
    /// when the instance is gone.
    pub fn signature(&self, id: &str) -> Result<Option<(u64, i64)>> {
        check_id(id)?;
        let size_path = format!("/instances/{id}/attachments/dicom/size");
        let url = format!("{}{size_path}", self.base);
        let size_text = match self.agent.get(&url).call() {
            Ok(mut r) => r
                .body_mut()
                .read_to_string()
                .map_err(|e| self.err(&format!("GET {size_path}"), e))?,
            Err(ureq::Error::StatusCode(404)) => return Ok(None),
            Err(e) => return Err(self.err(&format!("GET {size_path}"), e)),
        };
        let size: u64 = size_text
            .trim()
            .parse()
            .map_err(|e| self.err(&format!("GET {size_path}"), e))?;
        let md5 = self.get_text(&format!("/instances/{id}/attachments/dicom/md5"))?;
        let md5 = md5.trim();
        let sig = (0..8)
            .filter_map(|i| md5.get(2 * i..2 * i + 2))
            .filter_map(|h| u8::from_str_radix(h, 16).ok())
            .enumerate()
            .fold(0i64, |acc, (i, b)| acc | (b as i64) << (8 * i));
        Ok(Some((size, sig)))
    }

    /// What a run's selection needs of an instance, without its file: the
    /// identity tags (StudyDate, Modality, UIDs, PatientID) and the day
    /// Orthanc received it (days since the epoch), for objects without a
    /// StudyDate.
    pub fn selection_tags(&self, id: &str) -> Result<(Identity, Option<i64>)> {
        check_id(id)?;
        let path = format!("/instances/{id}/simplified-tags");
        let v: serde_json::Value = serde_json::from_str(&self.get_text(&path)?)
            .map_err(|e| self.err(&format!("GET {path}"), e))?;
        let tag = |k: &str| {
            v[k].as_str()
                .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
                .filter(|s| !s.is_empty())
        };
        let ids = Identity {
            sop_uid: tag("SOPInstanceUID"),
            study_uid: tag("StudyInstanceUID"),
            series_uid: tag("SeriesInstanceUID"),
            study_date: tag("StudyDate"),
            modality: tag("Modality"),
            patient_id: tag("PatientID"),
        };
        // "20261201T194300"; an old Orthanc may not keep it.
        let url = format!("{}/instances/{id}/metadata/ReceptionDate", self.base);
        let received = match self.agent.get(&url).call() {
            Ok(mut r) => r
                .body_mut()
                .read_to_string()
                .ok()
                .and_then(|t| t.get(..8).and_then(dicom_date_days)),
            Err(_) => None,
        };
        Ok((ids, received))
    }

    /// Downloads the instance's file, as stored, to `dest` (atomically).
    pub fn download(&self, id: &str, dest: &Path) -> Result<()> {
        check_id(id)?;
        let path = format!("/instances/{id}/file");
        let resp = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .map_err(|e| self.err(&format!("GET {path}"), e))?;
        let dir = dest.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).at(dir)?;
        let mut temp = tempfile::Builder::new()
            .prefix(".umbra-")
            .suffix(".partial")
            .tempfile_in(dir)
            .at(dir)?;
        let mut body = resp.into_body().into_reader();
        std::io::copy(&mut body, temp.as_file_mut())
            .map_err(|e| self.err(&format!("GET {path}"), e))?;
        temp.as_file_mut().flush().at(dest)?;
        temp.persist(dest).map_err(|e| e.error).at(dest)?;
        Ok(())
    }

    /// Stores a file in Orthanc (`POST /instances`); returns its id.
    pub fn upload(&self, file: &Path) -> Result<String> {
        let f = std::fs::File::open(file).at(file)?;
        let text = self
            .agent
            .post(&format!("{}/instances", self.base))
            .header("Content-Type", "application/dicom")
            .send(f)
            .and_then(|mut r| r.body_mut().read_to_string())
            .map_err(|e| self.err(&format!("POST /instances ({})", file.display()), e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| self.err("POST /instances", e))?;
        Ok(v["ID"].as_str().unwrap_or_default().to_string())
    }
}

/// Orthanc ids are hex groups joined by `-`: nothing else goes into a URL
/// or a cache path.
fn check_id(id: &str) -> Result<()> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(())
    } else {
        Err(ArchiveError::Failed(format!(
            "Orthanc returned an unexpected instance id {id:?}"
        )))
    }
}
