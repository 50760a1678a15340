//! `umbra forget` (retention) and `umbra erase` (erasure on request).

use std::process::ExitCode;

use clap::Args;

use umbra::archive::forget::{EraseSelector, ForgetPolicy, ForgetReport};
use umbra::archive::source;

use super::Ui;
use super::archive::{Location, exit, open, print_json};
use super::status::human;

#[derive(Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    loc: Location,
    /// Keep the newest N stored versions of each object.
    #[arg(long, value_name = "N")]
    keep_last: Option<usize>,
    /// Keep versions superseded less than AGE ago (12h, 30d, 2w, 6m, 1y), or
    /// after a day (2026-01-01). With --keep-last, a version goes when
    /// neither keeps it. The latest stored version of every object always
    /// stays.
    #[arg(long, value_name = "AGE|DATE", value_parser = source::parse_age)]
    keep_within: Option<source::OlderThan>,
    /// Opt-in: also forget every version of objects gone from their source
    /// for longer than AGE (or since before a day), as migrate saw it.
    #[arg(long, value_name = "AGE|DATE", value_parser = source::parse_age)]
    gone_for: Option<source::OlderThan>,
    /// List what would be forgotten; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct EraseArgs {
    #[command(flatten)]
    loc: Location,
    /// Every object of this Patient ID.
    #[arg(long, value_name = "ID")]
    patient: Option<String>,
    /// Every object of this Study Instance UID.
    #[arg(long, value_name = "UID")]
    study: Option<String>,
    /// The object with this SOP Instance UID.
    #[arg(long, value_name = "UID")]
    sop: Option<String>,
    /// List what would be erased (on this terminal only); change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON on stdout (no identifier in it).
    #[arg(long)]
    json: bool,
}

fn finish(
    ui: &Ui,
    r: &ForgetReport,
    (what, done): (&str, &str),
    json: bool,
) -> anyhow::Result<ExitCode> {
    for p in &r.problems {
        eprintln!("umbra: {p}");
    }
    if let Some(e) = &r.audit_error {
        eprintln!("umbra: WARNING: {e}");
    }
    if r.still_in_source > 0 {
        eprintln!(
            "umbra: WARNING: {} erased object(s) are still in their source folder: the next \
             migrate protects them again unless they are deleted there",
            r.still_in_source
        );
    }
    if json {
        print_json(r)?;
    } else if r.dry_run {
        for f in &r.forgotten {
            println!(
                "would {what} {} version {} ({})",
                f.path,
                f.version,
                human(f.size)
            );
        }
        ui.note(format!(
            "dry run: would {what} {} version(s), {} of source",
            r.versions,
            human(r.bytes)
        ));
    } else {
        ui.note(format!(
            "{} version(s) {done} from the catalog ({} of source); {} share(s) deleted from \
             the stores{}",
            r.versions,
            human(r.bytes),
            r.shares_deleted,
            if r.shares_pending > 0 {
                format!(
                    ", {} still to delete (their store did not answer: the next run deletes them)",
                    r.shares_pending
                )
            } else {
                String::new()
            }
        ));
    }
    Ok(exit(r.shares_pending == 0 && r.problems.is_empty()))
}

/// Exit 0, or 3 when some shares could not be deleted yet.
pub fn forget_cmd(ui: &Ui, a: &ForgetArgs) -> anyhow::Result<ExitCode> {
    let mut archive = open(&a.loc)?;
    let r = archive.forget_versions(&ForgetPolicy {
        keep_last: a.keep_last,
        keep_superseded_within: a.keep_within,
        gone_for: a.gone_for,
        dry_run: a.dry_run,
    })?;
    finish(ui, &r, ("forget", "forgotten"), a.json)
}

/// Exit 0, or 3 when some shares could not be deleted yet.
pub fn erase_cmd(ui: &Ui, a: &EraseArgs) -> anyhow::Result<ExitCode> {
    let mut archive = open(&a.loc)?;
    let r = archive.erase(&EraseSelector {
        patient_id: a.patient.clone(),
        study_uid: a.study.clone(),
        sop_uid: a.sop.clone(),
        dry_run: a.dry_run,
    })?;
    finish(ui, &r, ("erase", "erased"), a.json)
}

#[derive(clap::Subcommand)]
pub enum KeyCmd {
    /// A new site key: every share renamed under it in its store, the audit
    /// chain moved to it, then the old key retired. Resumable: run it again
    /// after a kill or while a store did not answer (exit 3).
    Rotate {
        #[command(flatten)]
        loc: Location,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub fn key_cmd(ui: &Ui, c: &KeyCmd) -> anyhow::Result<ExitCode> {
    let KeyCmd::Rotate { loc, json } = c;
    let mut archive = open(loc)?;
    let r = archive.rotate_key()?;
    for p in &r.problems {
        eprintln!("umbra: {p}");
    }
    if *json {
        print_json(&r)?;
    } else if r.finished {
        ui.note(format!(
            "site key rotated{}: {} share(s) renamed ({} already), {} old name(s) deleted, {} \
             still to delete; the old audit log is {}",
            if r.resumed {
                " (finishing an earlier run)"
            } else {
                ""
            },
            r.renamed,
            r.already,
            r.old_names_deleted,
            r.old_names_pending,
            r.audit_set_aside.as_deref().unwrap_or("-")
        ));
    } else {
        eprintln!(
            "umbra: key rotation unfinished: {} share(s) renamed, {} left (their store did not \
             answer); run `umbra key rotate` again",
            r.renamed, r.left
        );
    }
    Ok(exit(r.finished && r.old_names_pending == 0))
}
