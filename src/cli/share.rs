//! The share tools: `split`, `combine`, `repair` and `inspect`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use umbra::keystream::ObjectKey;
use umbra::share::format;
use umbra::sharing::{self, SplitPlan, Threshold};
use umbra::stream::combine::{self, CombineOptions, CombineTarget};
use umbra::stream::gfshare;
use umbra::stream::split::{self, ShareNaming, SplitOptions, SplitSecrets};

use super::backend::file_len;
use super::ui::Ui;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// umbra share files (header, hashes, integrity tag; the file name travels inside).
    Umbra,
    /// Bare libgfshare files NAME.xxx, readable by gfcombine; no integrity.
    Gfshare,
}

#[derive(Args)]
pub(crate) struct SplitArgs {
    /// Threshold: shares needed to rebuild.
    #[arg(short, long, default_value_t = 4)]
    pub(crate) t: usize,
    /// Number of shares to write.
    #[arg(short, long, default_value_t = 8)]
    pub(crate) n: usize,
    /// Share coordinates, comma-separated (default 1..n).
    #[arg(long, value_delimiter = ',', value_name = "X,...")]
    pub(crate) xs: Option<Vec<u8>>,
    /// Directory for the share files (created if missing).
    #[arg(short, long, value_name = "DIR")]
    pub(crate) output: PathBuf,
    /// Share file format.
    #[arg(long, value_enum, default_value_t = Format::Umbra)]
    pub(crate) format: Format,
    /// shamir: n times the input stored, perfect secrecy (the paper's).
    /// compact: encrypt (ChaCha20), disperse the ciphertext, Shamir-share
    /// the key: n/t times the input, computational secrecy.
    #[arg(long, default_value = "shamir", value_name = "SCHEME")]
    pub(crate) scheme: format::SchemeKind,
    /// Name shares by their random split id instead of the input's name,
    /// so that a share's name reveals nothing (umbra format only).
    #[arg(long)]
    pub(crate) anonymous: bool,
    /// Payload bytes per hashed segment (a power of two from 4096 to 64 MiB;
    /// default 1 MiB, and for compact 4 MiB / t, at most 1 MiB).
    #[arg(long, value_name = "BYTES")]
    pub(crate) segment_size: Option<u32>,
    /// Overwrite existing share files.
    #[arg(long)]
    pub(crate) force: bool,
    /// fsync each share before it is renamed into place.
    #[arg(long)]
    pub(crate) sync: bool,
    /// Files to split.
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
}

#[derive(Args)]
pub(crate) struct CombineArgs {
    /// Output file, or an existing directory to restore the original name into.
    #[arg(short, long, value_name = "OUT")]
    pub(crate) output: PathBuf,
    /// Share file format.
    #[arg(long, value_enum, default_value_t = Format::Umbra)]
    pub(crate) format: Format,
    /// Overwrite an existing output.
    #[arg(long)]
    pub(crate) force: bool,
    /// fsync the output before it is renamed into place.
    #[arg(long)]
    pub(crate) sync: bool,
    /// Shares of one split: at least t; extra ones stand in for bad ones.
    #[arg(required = true, value_name = "SHARE")]
    pub(crate) shares: Vec<PathBuf>,
}

#[derive(Args)]
pub(crate) struct RepairArgs {
    /// The x of the share to rebuild.
    #[arg(long, value_name = "X")]
    pub(crate) x: u8,
    /// Output share file (default: beside the first share, named for x).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Overwrite an existing output.
    #[arg(long)]
    pub(crate) force: bool,
    /// At least t good shares of the same split.
    #[arg(required = true, value_name = "SHARE")]
    pub(crate) shares: Vec<PathBuf>,
}

#[derive(Args)]
pub(crate) struct InspectArgs {
    /// One JSON object per share, as a JSON array.
    #[arg(long)]
    pub(crate) json: bool,
    #[arg(required = true, value_name = "SHARE")]
    pub(crate) shares: Vec<PathBuf>,
}

pub(crate) fn split_cmd(ui: &Ui, a: &SplitArgs) -> anyhow::Result<ExitCode> {
    let threshold = Threshold::new(a.t, a.n)?;
    let xs = a.xs.clone().unwrap_or_else(|| sharing::default_xs(a.n));
    let plan = SplitPlan::new(threshold, xs)?;
    let mut opts = SplitOptions::new(plan.clone()).with_scheme(a.scheme);
    if let Some(size) = a.segment_size {
        if !(format::MIN_SEGMENT_SIZE..=format::MAX_SEGMENT_SIZE).contains(&size)
            || !size.is_power_of_two()
        {
            bail!(
                "--segment-size {} is invalid: a power of two from {} to {}",
                size,
                format::MIN_SEGMENT_SIZE,
                format::MAX_SEGMENT_SIZE
            );
        }
        opts.segment_size = size;
    }
    if a.scheme == format::SchemeKind::Compact && a.format == Format::Gfshare {
        bail!(
            "--format gfshare is Shamir only: libgfshare files have no room for the compact scheme's key shares"
        );
    }
    if a.anonymous && a.format == Format::Gfshare {
        bail!(
            "--anonymous needs --format umbra: gfshare share names are NAME.xxx, the input's name"
        );
    }
    // Every input checked before anything is created.
    let unusable: Vec<String> = a
        .files
        .iter()
        .filter_map(|f| match std::fs::metadata(f) {
            Ok(m) if m.is_file() => None,
            Ok(m) => Some(format!(
                "{} is {}, not a regular file",
                f.display(),
                umbra::error::file_kind(m.file_type())
            )),
            Err(e) => Some(format!("{}: {e}", f.display())),
        })
        .collect();
    if !unusable.is_empty() {
        bail!("nothing split: {}", unusable.join("; "));
    }
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("cannot create output directory {}", a.output.display()))?;
    let backend = ui.backend(a.files.iter().map(|f| file_len(f)).sum())?;
    let backend = backend.as_ref();
    opts.overwrite = a.force;
    opts.sync = a.sync;
    opts.naming = if a.anonymous {
        ShareNaming::SplitId
    } else {
        ShareNaming::InputName
    };
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for input in &a.files {
        let bar = ui.progress(file_len(input), &input.display().to_string());
        let result = match a.format {
            Format::Umbra => SplitSecrets::from_os().and_then(|secrets| {
                split::split_file(backend, input, &a.output, &opts, &secrets, &mut |done| {
                    bar.set_position(done)
                })
                .map(|r| r.shares)
            }),
            Format::Gfshare => ObjectKey::generate()
                .map_err(|e| umbra::Error::Random(e.to_string()))
                .and_then(|key| {
                    gfshare::split_file(
                        backend,
                        &plan,
                        &key,
                        input,
                        &a.output,
                        a.force,
                        &mut |done| bar.set_position(done),
                    )
                }),
        };
        bar.finish_and_clear();
        match result {
            Ok(shares) => {
                ui.info(format!(
                    "{}: {} shares in {}",
                    input.display(),
                    shares.len(),
                    a.output.display()
                ));
                done.push(input.display().to_string());
            }
            Err(e) => {
                eprintln!("umbra: error: {e}");
                failed.push(input.display().to_string());
            }
        }
    }
    if a.format == Format::Gfshare {
        ui.note(
            "gfshare shares carry no integrity check: a damaged share gives wrong bytes silently",
        );
    }
    let what = match done.as_slice() {
        [one] => one.clone(),
        _ => format!("{} files", done.len()),
    };
    if failed.is_empty() {
        let scheme = match a.scheme {
            format::SchemeKind::Shamir => String::new(),
            format::SchemeKind::Compact => format!(
                " compact ({:.2}x the input stored, computational secrecy)",
                a.n as f64 / a.t as f64
            ),
        };
        ui.note(format!(
            "split {what} into {}{scheme} shares each (any {} rebuild it) in {}",
            a.n,
            a.t,
            a.output.display()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    if a.files.len() == 1 {
        return Ok(ExitCode::FAILURE);
    }
    eprintln!(
        "umbra: error: {} of {} files not split ({}); split, with their shares in {}: {}",
        failed.len(),
        a.files.len(),
        failed.join(", "),
        a.output.display(),
        if done.is_empty() {
            "none".to_string()
        } else {
            done.join(", ")
        }
    );
    Ok(ExitCode::FAILURE)
}

pub(crate) fn combine_cmd(ui: &Ui, a: &CombineArgs) -> anyhow::Result<ExitCode> {
    let total: u64 = a.shares.first().map_or(0, |s| file_len(s));
    let backend = ui.backend(total)?;
    let backend = backend.as_ref();
    let bar = ui.progress(total, "combine");
    match a.format {
        Format::Umbra => {
            if a.output.as_os_str().as_encoded_bytes().ends_with(b"/") && !a.output.is_dir() {
                bail!(
                    "{} is not a directory that exists: create it first, or give -o FILE",
                    a.output.display()
                );
            }
            let target = if a.output.is_dir() {
                CombineTarget::Dir(a.output.clone())
            } else {
                CombineTarget::File(a.output.clone())
            };
            let opts = CombineOptions {
                overwrite: a.force,
                sync: a.sync,
                ..CombineOptions::default()
            };
            let report = combine::combine_files(backend, &a.shares, &target, &opts, &mut |done| {
                bar.set_position(done)
            });
            bar.finish_and_clear();
            let report = report?;
            for w in &report.warnings {
                ui.note(format!("warning: {w}"));
            }
            ui.note(format!(
                "restored {} ({} bytes, {}) to {}",
                report.meta.display_name(),
                report.meta.content_len,
                report.meta.content_type,
                report.output.display()
            ));
        }
        Format::Gfshare => {
            if a.output.is_dir() {
                bail!(
                    "{} is a directory: gfshare shares hold no file name, give -o FILE",
                    a.output.display()
                );
            }
            let result =
                gfshare::combine_files(backend, &a.shares, &a.output, a.force, &mut |done| {
                    bar.set_position(done)
                });
            bar.finish_and_clear();
            result?;
            ui.note(format!(
                "combined {} gfshare shares into {} (no integrity check: the output was not verified)",
                a.shares.len(),
                a.output.display()
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn repair_cmd(ui: &Ui, a: &RepairArgs) -> anyhow::Result<ExitCode> {
    let backend = ui.backend(a.shares.first().map_or(0, |s| file_len(s)))?;
    let output = match &a.output {
        Some(o) => o.clone(),
        None => default_repair_path(&a.shares[0], a.x),
    };
    let report = umbra::stream::repair::repair_share(
        backend.as_ref(),
        &a.shares,
        a.x,
        &output,
        &CombineOptions {
            overwrite: a.force,
            ..CombineOptions::default()
        },
    )?;
    for w in &report.warnings {
        ui.note(format!("warning: {w}"));
    }
    ui.note(format!(
        "rebuilt share x = {} as {}",
        report.x,
        report.output.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// `BASE.xxx.umbra` beside a share named that way; else `share-xxx.umbra`.
pub(crate) fn default_repair_path(first: &Path, x: u8) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let name = first.file_name().map(|n| n.as_bytes()).unwrap_or_default();
    // BASE.xxx.umbra: ".xxx.umbra" is 10 bytes.
    let numbered = name.len() > 10
        && name.ends_with(b".umbra")
        && name[name.len() - 10] == b'.'
        && name[name.len() - 9..name.len() - 6]
            .iter()
            .all(u8::is_ascii_digit);
    let new_name = if numbered {
        let base = std::ffi::OsStr::from_bytes(&name[..name.len() - 10]);
        umbra::share::writer::share_file_name(base, x)
    } else {
        format!("share-{x:03}.umbra").into()
    };
    first.with_file_name(new_name)
}

pub(crate) fn inspect_cmd(a: &InspectArgs) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::new();
    let mut json = Vec::new();
    let mut all_intact = true;
    for path in &a.shares {
        match umbra::share::inspect::inspect_share(path) {
            Ok(r) => {
                all_intact &= r.intact();
                json.push(serde_json::to_value(&r)?);
                reports.push(r);
            }
            Err(e) => {
                all_intact = false;
                json.push(serde_json::json!({
                    "path": path,
                    "header_ok": false,
                    "error": e.to_string(),
                }));
                eprintln!("umbra: error: {e}");
            }
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        for r in &reports {
            println!("{}", r.path.display());
            println!(
                "  format      umbra share v{}, field {}",
                r.version, r.field_polynomial
            );
            println!(
                "  threshold   t = {}, n = {}, this share x = {}",
                r.t, r.n, r.x
            );
            println!(
                "  scheme      {}",
                if r.scheme == "compact" {
                    "compact (ChaCha20 + dispersal, key Shamir-shared: computational secrecy)"
                } else {
                    "shamir (perfect secrecy)"
                }
            );
            println!("  split id    {}", r.split_id);
            println!(
                "  payload     {} bytes in {} segment(s) of {} bytes",
                r.payload_len, r.segments, r.segment_size
            );
            if r.scheme == "compact" {
                println!("  stream      {} bytes", r.stream_len);
            }
            println!("  tag         {}", r.tag);
            if r.corrupt_segments.is_empty() {
                println!("  hashes      ok (header and all segments)");
            } else {
                println!(
                    "  hashes      CORRUPT segment(s): {}",
                    r.corrupt_segments
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
    }
    Ok(if all_intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
