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

/// An Orthanc server's REST API at a base URL, with HTTP basic
/// authentication when it needs it.
pub struct Orthanc {
    /// `http://HOST:PORT`, never with a user name or password in it: this
    /// is what messages show.
    base: String,
    agent: ureq::Agent,
    /// `Basic ...`, when credentials were given.
    authorization: Option<String>,
}

/// An Orthanc user name and password. Never written anywhere, never
/// printed (no `Debug`).
pub struct Credentials {
    pub user: String,
    pub password: zeroize::Zeroizing<String>,
}

impl Orthanc {
    /// `url`: `http://HOST:PORT`. A `user:password@` in it is taken out of
    /// the URL and used, unless `credentials` are given.
    pub fn new(url: &str, credentials: Option<Credentials>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(300)))
            .http_status_as_error(false)
            .build()
            .into();
        let base = super::strip_userinfo(url.trim_end_matches('/'));
        let credentials = credentials.or_else(|| userinfo(url));
        let authorization = credentials.map(|c| {
            use base64::Engine as _;
            let pair = zeroize::Zeroizing::new(format!("{}:{}", c.user, *c.password));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(&*pair)
            )
        });
        Self {
            base,
            agent,
            authorization,
        }
    }

    /// The base URL, without credentials.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> ArchiveError {
        ArchiveError::Failed(format!("Orthanc at {}: {what}: {e}", self.base))
    }

    /// `resp` if its status is a success; else an error that quotes
    /// Orthanc's answer (and, for 401/403, says where credentials go).
    fn ok(
        &self,
        what: &str,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        let answer = answer_text(&body);
        let hint = if status == 401 || status == 403 {
            "; give the credentials in UMBRA_ORTHANC_USER and UMBRA_ORTHANC_PASSWORD, or \
             orthanc_credentials in umbra.toml"
        } else {
            ""
        };
        Err(self.err(what, format!("HTTP {status}{answer}{hint}")))
    }

    /// GET `path`, with the credentials, whatever the status.
    fn raw_get(&self, path: &str) -> Result<ureq::http::Response<ureq::Body>> {
        let mut r = self.agent.get(&format!("{}{path}", self.base));
        if let Some(auth) = &self.authorization {
            r = r.header("Authorization", auth);
        }
        r.call().map_err(|e| self.err(&format!("GET {path}"), e))
    }

    fn get(&self, path: &str) -> Result<ureq::http::Response<ureq::Body>> {
        let resp = self.raw_get(path)?;
        self.ok(&format!("GET {path}"), resp)
    }

    fn get_text(&self, path: &str) -> Result<String> {
        self.get(path)?
            .body_mut()
            .read_to_string()
            .map_err(|e| self.err(&format!("GET {path}"), e))
    }

    /// Whether the server answers (and takes the credentials): checked
    /// before a restore pushes anything into it.
    pub fn check(&self) -> Result<()> {
        self.get_text("/system").map(drop)
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
        let resp = self.raw_get(&size_path)?;
        if resp.status() == 404 {
            return Ok(None);
        }
        let size_text = self
            .ok(&format!("GET {size_path}"), resp)?
            .body_mut()
            .read_to_string()
            .map_err(|e| self.err(&format!("GET {size_path}"), e))?;
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
        let received = self
            .get_text(&format!("/instances/{id}/metadata/ReceptionDate"))
            .ok()
            .and_then(|t| t.get(..8).and_then(dicom_date_days));
        Ok((ids, received))
    }

    /// Downloads the instance's file, as stored, to `dest` (atomically).
    pub fn download(&self, id: &str, dest: &Path) -> Result<()> {
        check_id(id)?;
        let path = format!("/instances/{id}/file");
        let resp = self.get(&path)?;
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
        let url = format!("{}/instances", self.base);
        let what = format!("POST /instances ({})", file.display());
        let mut r = self
            .agent
            .post(&url)
            .header("Content-Type", "application/dicom");
        if let Some(auth) = &self.authorization {
            r = r.header("Authorization", auth);
        }
        let resp = r.send(f).map_err(|e| self.err(&what, e))?;
        let text = self
            .ok(&what, resp)?
            .body_mut()
            .read_to_string()
            .map_err(|e| self.err(&what, e))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| self.err("POST /instances", e))?;
        Ok(v["ID"].as_str().unwrap_or_default().to_string())
    }
}

/// `user:password@` of a URL, if it has one.
fn userinfo(url: &str) -> Option<Credentials> {
    let rest = url.split_once("://")?.1;
    let host_end = rest.find('/').unwrap_or(rest.len());
    let (info, _) = rest[..host_end].rsplit_once('@')?;
    let (user, password) = info.split_once(':').unwrap_or((info, ""));
    Some(Credentials {
        user: user.to_string(),
        password: zeroize::Zeroizing::new(password.to_string()),
    })
}

/// Orthanc's answer to a failed request, for the error: its `Message` and
/// `Details` when it sent JSON, else the text (short).
fn answer_text(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let parts: Vec<&str> = ["Message", "Details", "OrthancError"]
            .iter()
            .filter_map(|k| v[k].as_str())
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return format!(": Orthanc says \"{}\"", parts.join(": "));
        }
    }
    let text: String = body.trim().chars().take(300).collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(": Orthanc says \"{text}\"")
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
