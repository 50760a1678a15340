//! The archive commands: init, config check, migrate, restore, verify,
//! archive-repair, audit verify. Parsing and printing only; the work is in
//! `umbra::archive`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use umbra::archive::Archive;
use umbra::archive::catalog::Selection;
use umbra::archive::config::check_placement;
use umbra::archive::migrate::{self, MigrateOptions};
use umbra::archive::restore::RestoreOptions;
use umbra::archive::source::{self, Filter, SourceSpec};
use umbra::archive::time::rfc3339;
use umbra::archive::verify::VerifyOptions;
use umbra::share::format::SchemeKind;

use super::Ui;
use super::status::human;

#[derive(Args)]
pub struct Location {
    /// The archive directory (where umbra.toml is).
    #[arg(
        short = 'C',
        long = "archive",
        env = "UMBRA_ARCHIVE",
        default_value = ".",
        value_name = "DIR"
    )]
    dir: PathBuf,
    /// If another umbra process holds the archive's lock, wait this long
    /// for it (30s, 10m, 2h) before giving up with exit status 11.
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    retry_lock: Option<std::time::Duration>,
}

/// `--worker` and what goes with it: migrate, restore, verify and
/// archive-repair run as one of many workers on a shared catalog (a
/// Kubernetes Indexed Job, a Slurm array; docs/SCALE.md).
#[derive(Args)]
pub struct WorkerArgs {
    /// Run as one of many workers on a shared catalog (docs/SCALE.md):
    /// work is claimed in groups with leases, a killed worker's groups are
    /// taken over. migrate: one worker scans the source (a folder every
    /// worker sees at the same path); restore, verify, archive-repair: the
    /// first worker of the run records the selection, all claim from it.
    #[arg(long)]
    worker: bool,
    /// This worker's index, for logs and `umbra status` only (default: the
    /// Job's JOB_COMPLETION_INDEX or Slurm's SLURM_ARRAY_TASK_ID).
    #[arg(
        long,
        value_name = "ID",
        requires = "worker",
        env = "JOB_COMPLETION_INDEX",
        hide_env = true
    )]
    worker_index: Option<String>,
    /// How long a worker's claim holds without a heartbeat (renewed every
    /// third of it): a killed worker's work is taken over after this.
    #[arg(long, value_name = "DURATION", value_parser = parse_wait, requires = "worker",
          default_value = "2m")]
    lease: std::time::Duration,
    /// The run the workers belong to (default: UMBRA_RUN_ID, else Slurm's
    /// SLURM_ARRAY_JOB_ID): migrate scans once per run id (without one, a
    /// worker scans unless a scan finished after it started); restore,
    /// verify and archive-repair need one.
    #[arg(long, value_name = "ID", requires = "worker")]
    run_id: Option<String>,
}

impl WorkerArgs {
    fn options(&self) -> Option<umbra::archive::shard::WorkerOptions> {
        self.worker.then(|| umbra::archive::shard::WorkerOptions {
            index: self
                .worker_index
                .clone()
                .or_else(|| std::env::var("SLURM_ARRAY_TASK_ID").ok()),
            lease: self.lease,
            run_id: self
                .run_id
                .clone()
                .or_else(|| std::env::var("UMBRA_RUN_ID").ok())
                .or_else(|| std::env::var("SLURM_ARRAY_JOB_ID").ok()),
        })
    }
}

#[derive(Args)]
pub struct InitArgs {
    /// Directory for the new archive (created if missing; or -C DIR, as
    /// the other archive commands take it).
    #[arg(required_unless_present = "archive", conflicts_with = "archive")]
    dir: Option<PathBuf>,
    /// Directory for the new archive, as every archive command names it.
    #[arg(short = 'C', long = "archive", value_name = "DIR")]
    archive: Option<PathBuf>,
    /// Threshold: any t shares rebuild an object, t - 1 reveal nothing.
    #[arg(short, long, default_value_t = 4)]
    t: usize,
    /// Shares per object (1 <= t <= n <= 255), spread over the stores.
    #[arg(short, long, default_value_t = 8)]
    n: usize,
    /// Number of local stores (default n, one share each; 4 with n = 8
    /// gives the paper's 2 shares per store).
    #[arg(long, value_name = "K")]
    stores: Option<usize>,
    /// How objects are split: shamir (n times the archive stored, perfect
    /// secrecy; the paper's) or compact (encrypt, disperse, Shamir-share the
    /// key: n/t times, computational secrecy). Written to umbra.toml.
    #[arg(long, default_value = "shamir", value_name = "SCHEME")]
    scheme: umbra::share::format::SchemeKind,
    /// The catalog: a file name in the archive (default catalog.sqlite) or
    /// a PostgreSQL database for many workers (postgresql://user@host/db,
    /// or libpq's host=... dbname=...; no password in it: it comes from
    /// UMBRA_CATALOG_PASSWORD or PGPASSWORD). See docs/SCALE.md.
    #[arg(long, value_name = "FILE|URL")]
    catalog: Option<String>,
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Check umbra.toml and say what the placement means: stores that may
    /// be lost, and colluding stores that can reconstruct.
    Check {
        #[command(flatten)]
        loc: Location,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    loc: Location,
    /// The source: a directory tree (DICOM files are recognised by content),
    /// or an Orthanc PACS: orthanc+http://HOST:PORT.
    #[arg(long, value_name = "DIR|URL")]
    source: String,
    /// Only objects at least this old (StudyDate, else the file's time): 12h,
    /// 30d, 2w, 6m (30 days), 1y (365 days); or dated before a day: 2010-01-01.
    #[arg(long, value_name = "AGE|DATE", value_parser = source::parse_age)]
    older_than: Option<source::OlderThan>,
    /// Only these modalities, comma-separated (e.g. CT,MR).
    #[arg(long, value_delimiter = ',', value_name = "MOD,...")]
    modality: Option<Vec<String>>,
    /// Say what would be done; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Orthanc: list every instance (noticing deletions) instead of
    /// following the change log from the last run.
    #[arg(long)]
    full_scan: bool,
    /// Leave out files and directories matching this gitignore-style
    /// pattern, relative to the source (`*.tmp`, `scratch/`, `/top-only`);
    /// repeatable. The archive's own directories are always left out.
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Take only files matching this gitignore-style pattern (or inside a
    /// directory matching it); repeatable. --exclude still applies.
    #[arg(long, value_name = "PATTERN")]
    include: Vec<String>,
    /// Read and hash every file, instead of trusting an unchanged size,
    /// modification time, ctime and inode.
    #[arg(long)]
    rehash: bool,
    /// Objects written and made durable together: one file system sync per
    /// store and one catalog commit per group (1: one object at a time).
    #[arg(long, value_name = "N", default_value_t = migrate::DEFAULT_GROUP as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    group: u64,
    #[command(flatten)]
    worker: WorkerArgs,
    /// Print a JSON summary on stdout (for cron).
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    loc: Location,
    /// Output directory: PATIENT/STUDY/SERIES/SOP.dcm, other files under other/.
    #[arg(short, long, value_name = "DIR", required_unless_present = "to")]
    output: Option<PathBuf>,
    /// Push the restored files into an Orthanc PACS: orthanc+http://HOST:PORT
    /// (without -o, through a temporary directory).
    #[arg(long, value_name = "URL")]
    to: Option<String>,
    /// Every object (the latest version of each).
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    select: SelectArgs,
    /// This version of each selected object (`umbra ls --versions` lists
    /// them), instead of the latest.
    #[arg(
        id = "object_version",
        long = "version",
        value_name = "N",
        value_parser = clap::value_parser!(i64).range(1..)
    )]
    version: Option<i64>,
    /// The version each selected object had at this time: the latest one
    /// recorded by then (YYYY-MM-DD: by the end of that day, UTC; or
    /// YYYY-MM-DDTHH:MM:SSZ).
    #[arg(long, value_name = "TIME", value_parser = parse_as_of)]
    as_of: Option<i64>,
    /// Disaster recovery: rebuild everything from the stores alone (with --all).
    #[arg(long)]
    without_catalog: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    worker: WorkerArgs,
}

/// Which objects: every given selector must hold.
#[derive(Args, Clone, Default)]
pub struct SelectArgs {
    /// Objects of this Study Instance UID.
    #[arg(long, value_name = "UID")]
    study: Option<String>,
    /// Objects of this Series Instance UID.
    #[arg(long, value_name = "UID")]
    series: Option<String>,
    /// The object with this SOP Instance UID.
    #[arg(long, value_name = "UID")]
    sop: Option<String>,
    /// Objects of this Patient ID.
    #[arg(long, value_name = "ID")]
    patient: Option<String>,
    /// Objects whose path in their source matches this glob (`*` crosses
    /// `/`; `?` and `[...]` as in a shell; case-sensitive).
    #[arg(long, value_name = "GLOB")]
    path: Option<String>,
    /// Only objects whose StudyDate is on or after this day (YYYYMMDD).
    #[arg(long, value_name = "YYYYMMDD", value_parser = parse_date)]
    since: Option<String>,
    /// Only objects whose StudyDate is on or before this day (YYYYMMDD).
    #[arg(long, value_name = "YYYYMMDD", value_parser = parse_date)]
    until: Option<String>,
}

impl SelectArgs {
    fn is_empty(&self) -> bool {
        self.study.is_none()
            && self.series.is_none()
            && self.sop.is_none()
            && self.patient.is_none()
            && self.path.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    pub(crate) fn selection(&self, all: bool) -> Selection {
        Selection {
            all,
            study_uid: self.study.clone(),
            sop_uid: self.sop.clone(),
            patient_id: self.patient.clone(),
            series_uid: self.series.clone(),
            path_glob: self.path.clone(),
            date_from: self.since.clone(),
            date_until: self.until.clone(),
            version: None,
            as_of: None,
        }
    }
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    loc: Location,
    /// Also rebuild every object and compare it with the catalog's BLAKE3.
    #[arg(long)]
    deep: bool,
    /// Check only this share of the objects, those checked least recently
    /// (e.g. 5%): nightly runs roll over the whole archive.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    sample: Option<f64>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    worker: WorkerArgs,
}

#[derive(Args)]
pub struct ArchiveRepairArgs {
    #[command(flatten)]
    loc: Location,
    /// Also find shares whose own hashes hold but whose content is wrong
    /// (rebuilds every object and regenerates every share to compare).
    #[arg(long)]
    deep: bool,
    /// Also delete the share files in the stores that no catalog entry
    /// references (verify reports them as orphans).
    #[arg(long)]
    orphans: bool,
    /// Instead, move every share to the store umbra.toml now places its
    /// share number on (a store added, retired with `shares = []`, or
    /// swapped): copied when good, else rebuilt from t good shares; then
    /// the old copies are deleted.
    #[arg(long, conflicts_with_all = ["deep", "orphans", "reshare"])]
    rebalance: bool,
    /// Instead, re-split every version split with another (t, n) or scheme
    /// than umbra.toml's, from t of its shares (no source needed); then its
    /// old shares are deleted.
    #[arg(long, conflicts_with_all = ["deep", "orphans"])]
    reshare: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    worker: WorkerArgs,
}

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Check the audit log's hash chain (and its head in the catalog).
    Verify {
        #[command(flatten)]
        loc: Location,
        /// Print the result as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// After a break (the log deleted, damaged or cut short): set it aside
    /// and start a new log whose first entry records the break.
    Restart {
        #[command(flatten)]
        loc: Location,
        /// Why, for the record (e.g. "restored from backup").
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
}

fn parse_percent(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?}: expected a percentage such as 5%"))?;
    if v > 0.0 && v <= 100.0 {
        Ok(v)
    } else {
        Err(format!("{s:?}: between 0% (excluded) and 100%"))
    }
}

/// A StudyDate bound: `2010-01-01` or `20100101`, a real date; kept as
/// YYYYMMDD, the form the catalog compares.
fn parse_date(s: &str) -> Result<String, String> {
    if source::parse_date_days(s).is_none() {
        return Err(format!(
            "{s:?}: a date is YYYY-MM-DD or YYYYMMDD, and a real one"
        ));
    }
    Ok(s.replace('-', ""))
}

/// `--as-of`: YYYY-MM-DD (the end of that day, UTC) or
/// YYYY-MM-DDTHH:MM:SS[Z] (UTC), as Unix seconds.
fn parse_as_of(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?}: give YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').unwrap_or(t))),
        None => (s, None),
    };
    if date.len() != 10 || date.as_bytes()[4] != b'-' || date.as_bytes()[7] != b'-' {
        return Err(bad());
    }
    let days = source::parse_date_days(date).ok_or_else(bad)?;
    let secs = match time {
        None => 86_399,
        Some(t) => {
            let parts: Vec<u32> = t
                .split(':')
                .map(|p| {
                    (p.len() == 2)
                        .then(|| p.parse().ok())
                        .flatten()
                        .ok_or_else(bad)
                })
                .collect::<Result<_, _>>()?;
            match parts[..] {
                [h, m, sec] if h < 24 && m < 60 && sec < 60 => {
                    i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(sec)
                }
                _ => return Err(bad()),
            }
        }
    };
    Ok(days * 86_400 + secs)
}

pub(crate) fn open(loc: &Location) -> anyhow::Result<Archive> {
    let mut archive = Archive::open(&loc.dir)
        .with_context(|| format!("cannot open the archive in {}", loc.dir.display()))?;
    archive.lock_wait = loc.retry_lock.unwrap_or_default();
    Ok(archive)
}

/// `--retry-lock`: a number and a unit, `30s`, `10m`, `2h`.
fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: give a number and a unit, e.g. 30s, 10m, 2h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3_600,
        _ => return Err(format!("{s:?}: the unit is s, m or h")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

/// A run's warnings (notes, silenced by -q) and failures (always shown).
fn print_problems(ui: &Ui, warnings: &[String], failures: &[String]) {
    for w in warnings {
        ui.note(format!("warning: {w}"));
    }
    for f in failures {
        eprintln!("umbra: failed: {f}");
    }
}

/// The run's report as one JSON object on one line (for cron and log
/// collectors), with when the run started and ended and how long it took
/// (docs/ARCHIVE.md, "JSON reports").
pub(crate) fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut value = serde_json::to_value(v)?;
    if let serde_json::Value::Object(map) = &mut value {
        let (started, at) = super::ui::started();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        map.insert("started_at".into(), rfc3339(started).into());
        map.insert("finished_at".into(), rfc3339(now).into());
        map.insert(
            "duration_seconds".into(),
            ((at.elapsed().as_secs_f64() * 1000.0).round() / 1000.0).into(),
        );
    }
    println!("{}", serde_json::to_string(&value)?);
    Ok(())
}

/// Exit status 3: the run finished, but some objects failed or are only
/// degraded (docs/ARCHIVE.md, "Exit codes").
pub const EXIT_INCOMPLETE: u8 = 3;

pub(crate) fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INCOMPLETE)
    }
}

pub fn init_cmd(ui: &Ui, a: &InitArgs) -> anyhow::Result<ExitCode> {
    let dir = a
        .dir
        .as_ref()
        .or(a.archive.as_ref())
        .expect("clap requires one");
    let archive = umbra::archive::init(
        dir,
        a.t,
        a.n,
        a.stores.unwrap_or(a.n),
        a.scheme,
        a.catalog.as_deref(),
    )?;
    ui.note(format!(
        "new archive in {}: ({}, {}) {} over {} local stores, {:.2}x the archive stored; keep a \
         copy of site.key",
        dir.display(),
        a.t,
        a.n,
        a.scheme,
        archive.stores.len(),
        a.scheme.storage_factor(a.t, a.n)
    ));
    for w in check_placement(&archive.layout).warnings {
        ui.note(format!("warning: {w}"));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn config_cmd(c: &ConfigCmd) -> anyhow::Result<ExitCode> {
    let ConfigCmd::Check { loc, json } = c;
    let archive = open(loc)?;
    let r = archive.config_check()?;
    if *json {
        print_json(&r)?;
    } else {
        for l in &r.placement.lines {
            println!("{l}");
        }
        println!(
            "scheme: {}: the stores hold {:.2} bytes per byte of source; secrecy of fewer than \
             t shares: {}",
            r.scheme, r.storage_factor, r.secrecy
        );
        println!(
            "        ({} would hold {:.2} bytes per byte; secrecy: {})",
            r.other_scheme, r.other_storage_factor, r.other_secrecy
        );
        println!(
            "catalog: {} stored version(s), {} of source",
            r.stored_versions,
            human(r.source_bytes)
        );
        for s in &r.stores {
            println!("store {s}");
        }
        for w in &r.warnings {
            println!("warning: {w}");
        }
        for e in &r.errors {
            println!("error: {e}");
        }
    }
    Ok(if r.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A password in a URL is seen by every user through the process list.
fn warn_password_in_url(ui: &Ui, url: &str) {
    if url != umbra::archive::source::strip_userinfo(url) {
        ui.note(
            "warning: a password in the URL is visible to other users in the process list; \
             use UMBRA_ORTHANC_USER and UMBRA_ORTHANC_PASSWORD, or orthanc_credentials in \
             umbra.toml",
        );
    }
}

pub fn migrate_cmd(ui: &Ui, a: &MigrateArgs) -> anyhow::Result<ExitCode> {
    warn_password_in_url(ui, &a.source);
    let mut archive = open(&a.loc)?;
    let n = archive.layout.threshold.n();
    let opts = MigrateOptions {
        source: SourceSpec::parse(&a.source),
        filter: Filter {
            older_than: a.older_than,
            modalities: a.modality.clone(),
        },
        dry_run: a.dry_run,
        full_scan: a.full_scan,
        group: a.group as usize,
        rehash: a.rehash,
        exclude: a.exclude.clone(),
        include: a.include.clone(),
        worker: a.worker.options(),
    };
    let meter = archive.meter.clone();
    let report = ui.with_meter(&meter, !a.json, || {
        archive.migrate(&opts, &mut |bytes| {
            ui.backend(bytes).map_err(|e| format!("{e:#}"))
        })
    })?;
    print_problems(ui, &report.warnings, &report.failures);
    for d in &report.degraded_objects {
        eprintln!("umbra: degraded: {d}");
    }
    if let Some(e) = &report.audit_error {
        eprintln!("umbra: WARNING: {e}");
    }
    for s in &report.skipped {
        ui.note(format!("skipped {s}"));
    }
    for v in &report.vanished_objects {
        ui.note(format!("gone from the source before it was written: {v}"));
    }
    if report.dry_run && !a.json {
        for w in &report.would_write {
            println!(
                "would write {:>11} {} ({})",
                human(w.size),
                w.path,
                w.reason
            );
        }
        let t = archive.layout.threshold.t();
        let stored = match archive.layout.scheme {
            SchemeKind::Shamir => format!(
                "{} in the stores: {n} shares of each",
                human(report.would_write_bytes * n as u64)
            ),
            SchemeKind::Compact => format!(
                "about {} in the stores: {n} shares of about 1/{t} of each",
                human((report.would_write_bytes as f64 * n as f64 / t as f64).round() as u64)
            ),
        };
        ui.note(format!(
            "dry run: would write {} object(s), {} of source ({} bytes; {stored})",
            report.would_write.len(),
            human(report.would_write_bytes),
            report.would_write_bytes,
        ));
    }
    if a.json {
        print_json(&report)?;
    } else {
        ui.note(format!(
            "{}{} files scanned, {} unchanged, {} not selected, {} excluded, {} skipped, {} new version(s); {} written ({}), {} degraded, {} completed, {} failed, {} vanished",
            if report.dry_run { "dry run: " } else { "" },
            report.scanned,
            report.unchanged,
            report.not_selected,
            report.excluded,
            report.skipped.len(),
            report.new_versions,
            report.written,
            human(report.bytes_written),
            report.degraded,
            report.completed,
            report.failed,
            report.vanished
        ));
    }
    Ok(exit(
        report.failed == 0 && report.degraded == 0 && report.audit_error.is_none(),
    ))
}

pub fn restore_cmd(ui: &Ui, a: &RestoreArgs) -> anyhow::Result<ExitCode> {
    if let Some(to) = &a.to {
        warn_password_in_url(ui, to);
    }
    let archive = open(&a.loc)?;
    if a.without_catalog && !a.all {
        bail!("--without-catalog restores everything: give --all");
    }
    if a.without_catalog && (a.version.is_some() || a.as_of.is_some()) {
        bail!(
            "--without-catalog restores the latest version in the stores: --version and \
             --as-of need the catalog"
        );
    }
    if !a.all && a.select.is_empty() {
        bail!(
            "say what to restore: --all, --study UID, --series UID, --sop UID, --patient ID, \
             --path GLOB or a date range (--since, --until)"
        );
    }
    let push_to = match &a.to {
        Some(url) => match url.strip_prefix("orthanc+") {
            Some(u) => Some(u.to_string()),
            None => bail!("--to {url}: give orthanc+http://HOST:PORT"),
        },
        None => None,
    };
    let temp = match &a.output {
        Some(_) => None,
        None => Some(tempfile::tempdir().context("temporary directory")?),
    };
    let out = match (&a.output, &temp) {
        (Some(o), _) => o.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => unreachable!("one of them is set"),
    };
    let opts = RestoreOptions {
        selection: Selection {
            version: a.version,
            as_of: a.as_of,
            ..a.select.selection(a.all)
        },
        out: out.clone(),
        without_catalog: a.without_catalog,
        push_to,
        worker: a.worker.options(),
    };
    let backend = ui.backend(0)?;
    let meter = archive.meter.clone();
    let report = ui.with_meter(&meter, !a.json, || archive.restore(&opts, backend.as_ref()))?;
    print_problems(ui, &report.warnings, &report.failures);
    for f in &report.not_pushed {
        match &a.output {
            Some(_) => ui.note(format!("not DICOM, not pushed to Orthanc: {}", f.display())),
            None => eprintln!(
                "umbra: not DICOM, so not pushed to Orthanc, and not kept: {} (give -o DIR to \
                 restore it as a file)",
                f.strip_prefix(&out).unwrap_or(f).display()
            ),
        }
    }
    if let Some(e) = &report.audit_error {
        // Even with -q: the files are restored, the record of it is not.
        eprintln!("umbra: WARNING: {e}");
    }
    if a.json {
        print_json(&report)?;
    } else {
        ui.note(format!(
            "{} object(s) restored ({}) into {}{}, {} already there, {} failed",
            report.restored,
            human(report.bytes),
            out.display(),
            if a.to.is_some() {
                format!(", {} pushed to Orthanc", report.pushed)
            } else {
                String::new()
            },
            report.already_present,
            report.failed
        ));
    }
    Ok(exit(report.failed == 0))
}

fn verify_common(
    ui: &Ui,
    loc: &Location,
    opts: VerifyOptions,
    worker: &WorkerArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let (deep, repair) = (opts.deep, opts.repair);
    let mut archive = open(loc)?;
    let backend = ui.backend(0)?;
    let meter = archive.meter.clone();
    let w = worker.options();
    let report = ui.with_meter(&meter, !json, || {
        archive.verify_as(opts, w.as_ref(), backend.as_ref())
    })?;
    if json {
        print_json(&report)?;
    } else {
        println!(
            "{:<16} {:>8} {:>8} {:>8} {:>12} {:>8}",
            "store", "present", "missing", "corrupt", "unreachable", "orphans"
        );
        for s in &report.stores {
            println!(
                "{:<16} {:>8} {:>8} {:>8} {:>12} {:>8}",
                s.store, s.present, s.missing, s.corrupt, s.unreachable, s.orphans
            );
        }
        for n in &report.notes {
            println!("note: {n}");
        }
        for r in &report.repaired_shares {
            println!("repaired: {r}");
        }
        for p in &report.problems {
            println!("problem: {p}");
        }
        ui.note(format!(
            "{} object(s) checked{}{}{}, {} problem(s)",
            report.objects,
            if report.pending + report.degraded > 0 {
                format!(
                    " ({} degraded), {} pending",
                    report.degraded, report.pending
                )
            } else {
                String::new()
            },
            if deep {
                format!(", {} rebuilt and matched", report.rebuilt_ok)
            } else {
                String::new()
            },
            if repair {
                format!(", {} share(s) repaired", report.repaired)
            } else {
                String::new()
            },
            report.problems.len()
        ));
    }
    Ok(exit(report.healthy()))
}

pub fn verify_cmd(ui: &Ui, a: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let opts = VerifyOptions {
        deep: a.deep,
        sample_percent: a.sample,
        ..Default::default()
    };
    verify_common(ui, &a.loc, opts, &a.worker, a.json)
}

/// What a lifecycle operation says: its problems on stderr, then its report
/// as JSON or its summary line; exit 0 when `ok`, else 3.
fn finish_report(
    ui: &Ui,
    json: bool,
    report: &impl serde::Serialize,
    problems: &[&String],
    audit_error: Option<&String>,
    summary: String,
    ok: bool,
) -> anyhow::Result<ExitCode> {
    for p in problems {
        eprintln!("umbra: {p}");
    }
    if let Some(e) = audit_error {
        eprintln!("umbra: WARNING: {e}");
    }
    if json {
        print_json(report)?;
    } else {
        ui.note(summary);
    }
    Ok(exit(ok))
}

pub fn archive_repair_cmd(ui: &Ui, a: &ArchiveRepairArgs) -> anyhow::Result<ExitCode> {
    if a.worker.worker && (a.reshare || a.rebalance) {
        bail!("--worker repairs shares; --rebalance and --reshare run as one process");
    }
    if a.reshare || a.rebalance {
        let mut archive = open(&a.loc)?;
        let backend = ui.backend(0)?;
        if a.reshare {
            let r = archive.reshare(backend.as_ref())?;
            let summary = format!(
                "reshared: {} version(s) re-split as umbra.toml says, {} old share(s) deleted, \
                 {} still to delete, {} failed",
                r.resplit,
                r.old_shares_deleted,
                r.old_shares_pending,
                r.failed.len()
            );
            let problems: Vec<&String> = r.failed.iter().chain(&r.notes).collect();
            let ok = r.failed.is_empty() && r.old_shares_pending == 0;
            return finish_report(
                ui,
                a.json,
                &r,
                &problems,
                r.audit_error.as_ref(),
                summary,
                ok,
            );
        }
        let r = archive.rebalance(backend.as_ref())?;
        let summary = format!(
            "rebalanced: {} share(s) of {} version(s) moved ({} rebuilt from t good shares), \
             {} old copies deleted, {} still to delete, {} failed",
            r.moved,
            r.versions,
            r.rebuilt,
            r.old_copies_deleted,
            r.old_copies_pending,
            r.failed.len()
        );
        let problems: Vec<&String> = r.failed.iter().chain(&r.notes).collect();
        let ok = r.failed.is_empty() && r.old_copies_pending == 0;
        return finish_report(
            ui,
            a.json,
            &r,
            &problems,
            r.audit_error.as_ref(),
            summary,
            ok,
        );
    }
    let opts = VerifyOptions {
        deep: a.deep,
        repair: true,
        orphans: a.orphans,
        sample_percent: None,
    };
    verify_common(ui, &a.loc, opts, &a.worker, a.json)
}

pub fn audit_cmd(ui: &Ui, c: &AuditCmd) -> anyhow::Result<ExitCode> {
    match c {
        AuditCmd::Verify { loc, json } => {
            let archive = open(loc)?;
            let lines = archive.audit_verify()?;
            if *json {
                print_json(&serde_json::json!({ "intact": true, "entries": lines }))?;
            } else {
                ui.note(format!(
                    "audit log intact: {lines} entries, chain and head hold"
                ));
            }
        }
        AuditCmd::Restart { loc, reason } => {
            let mut archive = open(loc)?;
            match archive.audit_restart(reason)? {
                Some(old) => ui.note(format!(
                    "new audit log started; the old one is kept as {}",
                    old.display()
                )),
                None => ui.note("new audit log started (there was none)"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
