//! Sources of objects: a directory tree ([`folder`]), whose DICOM files are
//! recognised and identified ([`dicom`]), or an Orthanc PACS ([`orthanc`]);
//! and what a run selects of them ([`filter`]).

pub mod dicom;
pub mod filter;
pub mod folder;
pub mod orthanc;

use std::path::PathBuf;

use crate::archive::error::{ArchiveError, At, Result};

pub use dicom::{Identified, identify, looks_like_dicom, read_identity};
pub use filter::{Filter, OlderThan, parse_age, parse_date_days};
pub use folder::{SourceFile, Walk, WalkRules, join_bytes, relative_bytes, walk};

/// Where objects come from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// A directory tree.
    Dir(PathBuf),
    /// An Orthanc PACS over its REST API: the base URL (`http://HOST:PORT`).
    Orthanc(String),
}

impl SourceSpec {
    /// `orthanc+http://HOST:PORT` or a directory.
    pub fn parse(s: &str) -> Self {
        match s.strip_prefix("orthanc+") {
            Some(url) => SourceSpec::Orthanc(url.trim_end_matches('/').to_string()),
            None => SourceSpec::Dir(PathBuf::from(s)),
        }
    }

    /// The source's part of every object's identity in the catalog: a
    /// folder's absolute path without symbolic links (so `./src` and
    /// `/data/src` are one source), or `orthanc+` and the URL without user
    /// name or password.
    pub fn key(&self) -> Result<Vec<u8>> {
        use std::os::unix::ffi::OsStrExt;
        match self {
            SourceSpec::Dir(d)
                if d.to_str()
                    .is_some_and(|s| s.starts_with("http://") || s.starts_with("https://")) =>
            {
                Err(ArchiveError::Failed(format!(
                    "--source {}: an Orthanc is given as orthanc+{}",
                    strip_userinfo(&d.to_string_lossy()),
                    strip_userinfo(&d.to_string_lossy())
                )))
            }
            SourceSpec::Dir(d) => Ok(std::fs::canonicalize(d)
                .at(d)?
                .as_os_str()
                .as_bytes()
                .to_vec()),
            SourceSpec::Orthanc(url) => Ok(format!("orthanc+{}", strip_userinfo(url)).into_bytes()),
        }
    }
}

/// `scheme://user:pass@host/...` without `user:pass@`: what umbra writes
/// anywhere (catalog, logs, messages) never carries a password.
pub fn strip_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}
