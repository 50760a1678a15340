//! Sources of objects: a directory tree ([`folder`]), whose DICOM files are
//! recognised and identified ([`dicom`]), or an Orthanc PACS ([`orthanc`]);
//! and what a run selects of them ([`filter`]).

pub mod dicom;
pub mod filter;
pub mod folder;
pub mod orthanc;

use std::path::PathBuf;

pub use dicom::{Identified, identify, looks_like_dicom, read_identity};
pub use filter::{Filter, parse_age};
pub use folder::{SourceFile, walk};

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
}
