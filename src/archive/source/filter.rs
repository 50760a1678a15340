//! The selection of a migrate run: `--older-than` and `--modality`.

use crate::archive::catalog::Identity;
use crate::archive::time::dicom_date_days;

/// How old an object must be to leave in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OlderThan {
    /// At least this many seconds old.
    Age(i64),
    /// Dated before this day (days since the epoch).
    Before(i64),
}

/// Which objects leave the archive in this run.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only objects at least this old: by StudyDate (the day, as UTC), or
    /// the file's modification time (Orthanc: its reception) when there is
    /// none.
    pub older_than: Option<OlderThan>,
    /// Only these modalities (upper case); objects without one are left out.
    pub modalities: Option<Vec<String>>,
}

/// Parses `--older-than`: a number and a unit, `12h`, `30d`, `2w`, `6m`
/// (30-day months), `1y` (365 days), or a date, `2010-01-01` or `20100101`
/// (objects dated before it). A bare number is refused: 30 what?
pub fn parse_age(s: &str) -> std::result::Result<OlderThan, String> {
    let s = s.trim();
    if let Some(day) = parse_date_days(s) {
        return Ok(OlderThan::Before(day));
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num.parse().map_err(|_| {
        format!("{s:?}: give a number and a unit (12h, 30d, 2w, 6m, 1y) or a date (2010-01-01)")
    })?;
    let unit_secs = match unit {
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "m" => 30 * 86_400,
        "y" => 365 * 86_400,
        "" => {
            return Err(format!(
                "{s:?}: a unit is needed: h, d, w, m (30 days) or y (365 days), e.g. {s}d"
            ));
        }
        _ => {
            return Err(format!(
                "{s:?}: the unit is h (hours), d (days), w (weeks), m (30 days) or y (365 days)"
            ));
        }
    };
    n.checked_mul(unit_secs)
        .map(OlderThan::Age)
        .ok_or_else(|| format!("{s:?} is too long ago"))
}

/// `2010-01-01` or `20100101` as days since the epoch, if it is a real date.
pub fn parse_date_days(s: &str) -> Option<i64> {
    let compact: String = match s.len() {
        10 if s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-' => {
            format!("{}{}{}", &s[..4], &s[5..7], &s[8..10])
        }
        8 => s.to_string(),
        _ => return None,
    };
    dicom_date_days(&compact)
}

impl Filter {
    /// Whether the filter selects everything.
    pub fn is_empty(&self) -> bool {
        self.older_than.is_none() && self.modalities.is_none()
    }

    /// Whether the object, of identity `ids` and (when it has no StudyDate)
    /// time `time_ns`, leaves in a run at `now` (Unix seconds).
    pub fn accepts(&self, ids: &Identity, time_ns: i64, now: i64) -> bool {
        if let Some(mods) = &self.modalities {
            match &ids.modality {
                Some(m) if mods.iter().any(|x| x.eq_ignore_ascii_case(m)) => {}
                _ => return false,
            }
        }
        let Some(older) = self.older_than else {
            return true;
        };
        let secs = ids
            .study_date
            .as_deref()
            .and_then(dicom_date_days)
            .map_or(time_ns.div_euclid(1_000_000_000), |d| d * 86_400);
        match older {
            OlderThan::Age(age) => now - secs >= age,
            OlderThan::Before(day) => secs < day * 86_400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d"), Ok(OlderThan::Age(30 * 86_400)));
        assert_eq!(parse_age("2w"), Ok(OlderThan::Age(14 * 86_400)));
        assert_eq!(parse_age("1h"), Ok(OlderThan::Age(3_600)));
        assert_eq!(parse_age("1y"), Ok(OlderThan::Age(365 * 86_400)));
        assert_eq!(parse_age("6m"), Ok(OlderThan::Age(180 * 86_400)));
        let day = crate::archive::time::days_from_civil(2010, 1, 1);
        assert_eq!(parse_age("2010-01-01"), Ok(OlderThan::Before(day)));
        assert_eq!(parse_age("20100101"), Ok(OlderThan::Before(day)));
        for bad in ["d", "30", "3x", "2010-13-01", "20101399", "-1d", ""] {
            assert!(parse_age(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filter_by_modality_and_age() {
        let ids = Identity {
            modality: Some("CT".into()),
            study_date: Some("20040119".into()),
            ..Default::default()
        };
        let now = crate::archive::time::days_from_civil(2004, 3, 1) * 86_400;
        let f = Filter {
            older_than: Some(OlderThan::Age(30 * 86_400)),
            modalities: Some(vec!["CT".into(), "MR".into()]),
        };
        assert!(f.accepts(&ids, 0, now));
        let f2 = Filter {
            older_than: Some(OlderThan::Age(60 * 86_400)),
            modalities: None,
        };
        assert!(!f2.accepts(&ids, 0, now));
        let f3 = Filter {
            older_than: None,
            modalities: Some(vec!["US".into()]),
        };
        assert!(!f3.accepts(&ids, 0, now));
        assert!(!f3.accepts(&Identity::default(), 0, now));
        // Hours count: a file modified 2 hours ago is 1h old, not 3h.
        let f4 = Filter {
            older_than: Some(OlderThan::Age(3_600)),
            modalities: None,
        };
        let undated = Identity::default();
        assert!(f4.accepts(&undated, (now - 7_200) * 1_000_000_000, now));
        let f5 = Filter {
            older_than: Some(OlderThan::Age(3 * 3_600)),
            modalities: None,
        };
        assert!(!f5.accepts(&undated, (now - 7_200) * 1_000_000_000, now));
        let before = Filter {
            older_than: Some(OlderThan::Before(crate::archive::time::days_from_civil(
                2004, 1, 20,
            ))),
            modalities: None,
        };
        assert!(before.accepts(&ids, 0, now));
    }
}
