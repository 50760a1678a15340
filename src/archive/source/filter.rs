//! The selection of a migrate run: `--older-than` and `--modality`.

use crate::archive::catalog::Identity;
use crate::archive::time::dicom_date_days;

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
    /// Whether the filter selects everything.
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
