//! Sources of objects: a directory tree. DICOM Part 10 files are recognised
//! by content ("DICM" after the 128-byte preamble), whatever their name; their
//! identity is read with dicom-rs up to Pixel Data only. The bytes themselves
//! are shared exactly as read, never re-serialised. Files dicom-rs cannot
//! parse are still protected, as plain bytes, with a warning.

pub mod orthanc;

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;

use crate::archive::catalog::Identity;
use crate::archive::error::{At, Result};
use crate::archive::time::dicom_date_days;

/// One regular file under the source root.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The path relative to the root, with `/` separators.
    pub source_ref: String,
    pub size: u64,
    /// What the catalog compares to notice a change without reading the
    /// bytes: the modification time in ns (files), an MD5 prefix (Orthanc).
    pub change_sig: i64,
    /// The object's time for `--older-than` when it has no StudyDate.
    pub time_ns: i64,
}

/// Every regular file under `root`, in a stable order. Symbolic links are
/// not followed (a link out of the tree would protect files nobody chose).
pub fn walk(root: &Path) -> Result<Vec<SourceFile>> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            let path = entry.path();
            let ft = entry.file_type().at(&path)?;
            if ft.is_dir() {
                dirs.push(path);
            } else if ft.is_file() {
                let meta = entry.metadata().at(&path)?;
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let source_ref = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let mtime_ns = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
                out.push(SourceFile {
                    source_ref,
                    size: meta.len(),
                    change_sig: mtime_ns,
                    time_ns: mtime_ns,
                    path,
                });
            }
        }
    }
    out.sort_by(|a, b| a.source_ref.cmp(&b.source_ref));
    Ok(out)
}

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

/// Whether the file starts like DICOM Part 10.
pub fn looks_like_dicom(path: &Path) -> Result<bool> {
    let mut head = [0u8; 132];
    let mut f = std::fs::File::open(path).at(path)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]).at(path)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n == 132 && &head[128..132] == b"DICM")
}

/// What kind of object a file is, and its DICOM identity.
#[derive(Debug, Clone)]
pub struct Identified {
    pub kind: &'static str,
    pub ids: Identity,
    /// Why a DICOM-looking file could not be parsed.
    pub warning: Option<String>,
}

/// Reads the DICOM header (up to Pixel Data) of a file that looks like
/// DICOM; other files are plain objects.
pub fn identify(path: &Path) -> Result<Identified> {
    if !looks_like_dicom(path)? {
        return Ok(Identified {
            kind: "file",
            ids: Identity::default(),
            warning: None,
        });
    }
    match read_identity(path) {
        Ok(ids) => Ok(Identified {
            kind: "dicom",
            ids,
            warning: None,
        }),
        Err(e) => Ok(Identified {
            kind: "unparsed-dicom",
            ids: Identity::default(),
            warning: Some(format!(
                "{}: DICOM header unreadable ({e}); protected as plain bytes",
                path.display()
            )),
        }),
    }
}

/// Identity from a DICOM file's header.
pub fn read_identity(path: &Path) -> std::result::Result<Identity, String> {
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| e.to_string())?;
    let text = |tag| {
        obj.element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_string())
            .filter(|s| !s.is_empty())
    };
    Ok(Identity {
        sop_uid: text(tags::SOP_INSTANCE_UID),
        study_uid: text(tags::STUDY_INSTANCE_UID),
        series_uid: text(tags::SERIES_INSTANCE_UID),
        study_date: text(tags::STUDY_DATE),
        modality: text(tags::MODALITY),
        patient_id: text(tags::PATIENT_ID),
    })
}

/// Which objects leave the archive in this run.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only objects at least this many days old (StudyDate, or the file's
    /// modification time when there is none).
    pub older_than_days: Option<i64>,
    /// Only these modalities (upper case); objects without one are left out.
    pub modalities: Option<Vec<String>>,
}

/// Parses an age such as `30d`, `2w` or `12h` into days (rounded down).
pub fn parse_age(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit, e.g. 30d"))?;
    match unit {
        "d" | "" => Ok(n),
        "w" => Ok(n * 7),
        "h" => Ok(n / 24),
        _ => Err(format!(
            "{s:?}: the unit is d (days), w (weeks) or h (hours)"
        )),
    }
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.older_than_days.is_none() && self.modalities.is_none()
    }

    /// `today` in days since the epoch.
    pub fn accepts(&self, ids: &Identity, time_ns: i64, today: i64) -> bool {
        if let Some(mods) = &self.modalities {
            match &ids.modality {
                Some(m) if mods.iter().any(|x| x.eq_ignore_ascii_case(m)) => {}
                _ => return false,
            }
        }
        if let Some(days) = self.older_than_days {
            let day = ids
                .study_date
                .as_deref()
                .and_then(dicom_date_days)
                .unwrap_or(time_ns.div_euclid(86_400_000_000_000));
            if today - day < days {
                return false;
            }
        }
        true
    }
}

/// One path component made safe: letters, digits, `.`, `-`, `_`; others `_`.
fn component(s: &str) -> String {
    let c: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if c.is_empty() || c == "." || c == ".." {
        "_".into()
    } else {
        c
    }
}

/// Where a restored object goes below the output directory:
/// `PATIENT/STUDY/SERIES/SOP.dcm` for DICOM with its UIDs, else
/// `other/SOURCE_REF` (each component made safe: nothing escapes).
pub fn restore_path(ids: &Identity, source_ref: &str) -> PathBuf {
    match (&ids.study_uid, &ids.series_uid, &ids.sop_uid) {
        (Some(study), Some(series), Some(sop)) => {
            let mut p = PathBuf::from(component(
                ids.patient_id.as_deref().unwrap_or("unknown-patient"),
            ));
            p.push(component(study));
            p.push(component(series));
            p.push(format!("{}.dcm", component(sop)));
            p
        }
        _ => {
            let mut p = PathBuf::from("other");
            for part in source_ref.split('/').filter(|s| !s.is_empty()) {
                p.push(component(part));
            }
            if p.as_os_str() == "other" {
                p.push("_");
            }
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d"), Ok(30));
        assert_eq!(parse_age("2w"), Ok(14));
        assert_eq!(parse_age("48h"), Ok(2));
        assert!(parse_age("d").is_err());
        assert!(parse_age("3y").is_err());
    }

    #[test]
    fn restore_paths_stay_inside() {
        let ids = Identity::default();
        assert_eq!(
            restore_path(&ids, "../../etc/passwd"),
            PathBuf::from("other/_/_/etc/passwd")
        );
        let ids = Identity {
            patient_id: Some("../x".into()),
            study_uid: Some("1.2".into()),
            series_uid: Some("1.2.3".into()),
            sop_uid: Some("1.2.3.4".into()),
            ..Default::default()
        };
        assert_eq!(
            restore_path(&ids, "a"),
            PathBuf::from(".._x/1.2/1.2.3/1.2.3.4.dcm")
        );
    }

    #[test]
    fn filter_by_modality_and_age() {
        let ids = Identity {
            modality: Some("CT".into()),
            study_date: Some("20040119".into()),
            ..Default::default()
        };
        let today = crate::archive::time::days_from_civil(2004, 3, 1);
        let f = Filter {
            older_than_days: Some(30),
            modalities: Some(vec!["CT".into(), "MR".into()]),
        };
        assert!(f.accepts(&ids, 0, today));
        let f2 = Filter {
            older_than_days: Some(60),
            modalities: None,
        };
        assert!(!f2.accepts(&ids, 0, today));
        let f3 = Filter {
            older_than_days: None,
            modalities: Some(vec!["US".into()]),
        };
        assert!(!f3.accepts(&ids, 0, today));
        assert!(!f3.accepts(&Identity::default(), 0, today));
    }
}
