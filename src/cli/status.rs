//! `umbra status` and `umbra ls`: what the archive holds, for people
//! (human-readable sizes) and for scripts (`--json`).

use std::process::ExitCode;

use clap::Args;

use umbra::archive::catalog::Listed;
use umbra::archive::time::rfc3339;

use super::Ui;
use super::archive::{Location, SelectArgs, exit, open, print_json};

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    loc: Location,
    /// Do not contact the stores (a listing of a large cloud store takes a
    /// while); the rest comes from the catalog and the audit log.
    #[arg(long)]
    offline: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    loc: Location,
    #[command(flatten)]
    select: SelectArgs,
    /// Every version of each object, not only the latest.
    #[arg(long)]
    versions: bool,
    /// Sizes in bytes instead of KiB, MiB, GiB.
    #[arg(long)]
    bytes: bool,
    /// Print the objects as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Appends one line to a report being built.
macro_rules! out {
    ($buf:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($buf, $($arg)*);
    }};
}

/// Writes a report to stdout; a reader that went away (`| head`) ends it
/// quietly, as for any Unix tool.
fn print_text(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Bytes for people to read: 512 B, 1.5 KiB, 218.4 MiB, 3.02 TiB.
pub(crate) fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ if v < 10.0 => format!("{v:.2} {}", UNITS[unit]),
        _ => format!("{v:.1} {}", UNITS[unit]),
    }
}

/// Unix seconds as `2026-12-02 15:40` (UTC), for a listing.
fn minute(secs: i64) -> String {
    let t = rfc3339(secs);
    format!("{} {}", &t[..10], &t[11..16])
}

/// Exit 0, or 3 when a store does not answer or the audit log does not
/// check: a health check for cron.
pub fn status_cmd(_ui: &Ui, a: &StatusArgs) -> anyhow::Result<ExitCode> {
    let archive = open(&a.loc)?;
    let r = archive.status(!a.offline)?;
    let mut o = String::new();
    let healthy = r.audit_error.is_none() && r.stores.iter().all(|s| s.reachable != Some(false));
    if a.json {
        print_json(&r)?;
        return Ok(exit(healthy));
    }
    out!(
        o,
        "archive {}: ({}, {}), {} scheme ({:.2} bytes stored per byte of source)",
        r.archive,
        r.t,
        r.n,
        r.scheme,
        r.configured_storage_factor
    );
    out!(o, "{} object(s), {} version(s)", r.objects, r.versions);
    out!(
        o,
        "  {:<9} {:>9} {:>9} {:>11}",
        "state",
        "objects",
        "versions",
        "source"
    );
    for s in &r.states {
        out!(
            o,
            "  {:<9} {:>9} {:>9} {:>11}",
            s.state,
            s.objects,
            s.versions,
            human(s.bytes)
        );
    }
    let factor = r
        .storage_factor
        .map_or_else(String::new, |f| format!(" ({f:.2}x)"));
    out!(
        o,
        "stored: {} version(s), {} of source, {} in the stores{factor}",
        r.stored_versions,
        human(r.stored_source_bytes),
        human(r.store_bytes)
    );
    for s in &r.stores {
        let unknown = if s.shares_of_unknown_size > 0 {
            format!(
                " (+{} share(s) of unrecorded size)",
                s.shares_of_unknown_size
            )
        } else {
            String::new()
        };
        let reach = match (s.reachable, &s.error, s.listed) {
            (Some(true), _, Some(listed)) => format!("reachable, {listed} object(s) listed"),
            (Some(false), Some(e), _) => format!("NOT reachable: {e}"),
            (_, Some(e), _) => e.clone(),
            _ => "not contacted (--offline)".into(),
        };
        out!(
            o,
            "store {} ({}): {} share(s), {}{unknown}; {reach}",
            s.name,
            if s.url.is_empty() { "-" } else { &s.url },
            s.shares,
            human(s.bytes)
        );
    }
    for p in &r.other_parameters {
        out!(
            o,
            "other parameters: {p} (umbra.toml says ({}, {}), {})",
            r.t,
            r.n,
            r.scheme
        );
    }
    match &r.oldest_unverified {
        Some((path, version, at)) => out!(
            o,
            "verification: {} stored version(s) never verified; the oldest: {path} (version \
             {version}, recorded {at})",
            r.never_verified
        ),
        None if r.stored_versions > 0 => out!(o, "verification: every stored version verified"),
        None => {}
    }
    if let Some(at) = &r.least_recently_verified {
        out!(
            o,
            "verification: the least recently verified was checked at {at}"
        );
    }
    for action in ["migrate", "verify", "repair", "restore"] {
        match r.last_runs.iter().find(|l| l.action == action) {
            Some(l) => out!(o, "last {action}: {} {}", l.time, summary(&l.details)),
            None => out!(o, "last {action}: never"),
        }
    }
    for l in r
        .last_runs
        .iter()
        .filter(|l| matches!(l.action.as_str(), "forget" | "erase" | "rebalance"))
    {
        out!(o, "last {}: {} {}", l.action, l.time, summary(&l.details));
    }
    if !r.workers.is_empty() {
        let live = r.workers.iter().filter(|w| w.live).count();
        out!(
            o,
            "workers: {live} live of {} in the last day, {} pending version(s) claimed, {}/s \
             together",
            r.workers.len(),
            r.leases,
            human(r.workers_bytes_per_second as u64)
        );
        for w in &r.workers {
            let state = if w.live {
                "live"
            } else if w.lost {
                "lost"
            } else {
                "done"
            };
            out!(
                o,
                "  {state:<4} {} {} objects, {} ({}/s), started {}, last heard {}",
                w.id,
                w.objects,
                human(w.bytes),
                human(w.bytes_per_second as u64),
                w.started,
                w.last_heartbeat
            );
        }
    }
    if r.deletions_pending > 0 {
        out!(
            o,
            "{} share(s) owed a delete (forgotten, erased or moved) wait for their store to \
             answer: the next migrate, forget, erase or rebalance deletes them",
            r.deletions_pending
        );
    }
    if let Some(e) = &r.audit_error {
        out!(o, "audit log: {e}");
    }
    print_text(&o);
    Ok(exit(healthy))
}

/// An audit entry's counts on one line: `written 160, failed 0`.
fn summary(details: &serde_json::Value) -> String {
    match details.as_object() {
        Some(map) => map
            .iter()
            .filter(|(_, v)| v.is_number() || v.is_boolean())
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        None => details.to_string(),
    }
}

#[derive(serde::Serialize)]
struct LsObject<'a> {
    path: &'a str,
    version: i64,
    /// Versions recorded of its path and kept, and the newest's number.
    versions: i64,
    latest_version: i64,
    size: u64,
    state: &'a str,
    kind: &'a str,
    scheme: Option<&'a str>,
    t: Option<i64>,
    n: Option<i64>,
    share_bytes: Option<u64>,
    sop_uid: Option<&'a str>,
    study_uid: Option<&'a str>,
    series_uid: Option<&'a str>,
    study_date: Option<&'a str>,
    modality: Option<&'a str>,
    patient_id: Option<&'a str>,
    recorded_at: String,
    updated_at: String,
    verified_at: Option<String>,
    last_error: Option<&'a str>,
}

fn ls_object(l: &Listed) -> LsObject<'_> {
    LsObject {
        path: &l.source_ref,
        version: l.version,
        versions: l.versions,
        latest_version: l.latest_version,
        size: l.size,
        state: if l.state == "pending" && l.last_error.is_some() {
            "failed"
        } else {
            &l.state
        },
        kind: &l.kind,
        scheme: l.scheme.as_deref(),
        t: l.t,
        n: l.n,
        share_bytes: l.share_bytes,
        sop_uid: l.ids.sop_uid.as_deref(),
        study_uid: l.ids.study_uid.as_deref(),
        series_uid: l.ids.series_uid.as_deref(),
        study_date: l.ids.study_date.as_deref(),
        modality: l.ids.modality.as_deref(),
        patient_id: l.ids.patient_id.as_deref(),
        recorded_at: rfc3339(l.created_at),
        updated_at: rfc3339(l.updated_at),
        verified_at: l.checked_at.map(rfc3339),
        last_error: l.last_error.as_deref(),
    }
}

/// One line per object (or version): state, version of versions, size,
/// when recorded, path; the summary on stderr.
pub fn ls_cmd(ui: &Ui, a: &LsArgs) -> anyhow::Result<ExitCode> {
    let archive = open(&a.loc)?;
    let listed = archive.ls(&a.select.selection(false), a.versions)?;
    let objects: Vec<LsObject<'_>> = listed.iter().map(ls_object).collect();
    if a.json {
        println!("{}", serde_json::to_string(&objects)?);
        return Ok(ExitCode::SUCCESS);
    }
    let total: u64 = listed.iter().map(|l| l.size).sum();
    let mut text = String::new();
    for (l, o) in listed.iter().zip(&objects) {
        let size = if a.bytes {
            o.size.to_string()
        } else {
            human(o.size)
        };
        out!(
            text,
            "{:<8} v{}/{} {:>11} {} {}",
            o.state,
            o.version,
            o.latest_version,
            size,
            minute(l.created_at),
            o.path
        );
    }
    print_text(&text);
    ui.note(format!(
        "{} {}, {}",
        objects.len(),
        if a.versions {
            "version(s)"
        } else {
            "object(s)"
        },
        if a.bytes {
            format!("{total} bytes")
        } else {
            human(total)
        }
    ));
    Ok(ExitCode::SUCCESS)
}
