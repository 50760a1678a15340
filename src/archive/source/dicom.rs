//! DICOM Part 10 files recognised by content ("DICM" after the 128-byte
//! preamble), whatever their name; their identity is read with dicom-rs up
//! to Pixel Data only. The bytes themselves are shared exactly as read, never
//! re-serialised. Files dicom-rs cannot parse are still protected, as plain
//! bytes, with a warning.

use std::io::Read;
use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;

use crate::archive::catalog::Identity;
use crate::archive::error::{At, Result};

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
