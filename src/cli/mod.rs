//! Argument parsing and the commands. Errors are anyhow here; the library's
//! typed errors already name the file or share at fault.

mod archive;
mod backend;
mod bench;
mod paper;
mod retention;
mod share;
mod signals;
mod status;
mod ui;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use umbra::kernel::Level;

use backend::BackendChoice;
use ui::Ui;

#[derive(Parser)]
#[command(
    name = "umbra",
    version,
    about = "Threshold secret sharing (Shamir over GF(2^8)) for medical image archives",
    long_about = "Splits files into n shares so that any t of them rebuild the file bit for bit \
                  and any t-1 reveal nothing but its length. Shares carry BLAKE3 hashes that name \
                  a bad share, and a keyed tag that proves the rebuilt object.",
    propagate_version = true
)]
struct Cli {
    /// No progress bars and no notes on stderr (errors are still printed).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Say which backend runs, and more.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// CPU SIMD level: portable, ssse3, avx2, avx2-gfni, avx512-gfni, neon.
    /// Can lower the level; asking for one the CPU lacks is an error.
    #[arg(long, global = true, env = "UMBRA_SIMD", value_name = "LEVEL")]
    simd: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, global = true, env = "UMBRA_THREADS", value_name = "N")]
    threads: Option<usize>,
    /// Where share arithmetic runs. auto: a hardware GPU for large jobs when
    /// there is one, else the CPU (never a software adapter); gpu: the best
    /// adapter there is, software included (an error if none); cpu: SIMD on
    /// all cores.
    #[arg(long, global = true, env = "UMBRA_BACKEND", value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    /// Compute with both backends (CPU and GPU; or the CPU's SIMD level and
    /// its portable path when there is no GPU) from the same key, and fail
    /// at the first differing byte.
    #[arg(long, global = true)]
    cross_check: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Split files into n share files each; any t rebuild a file.
    Split(share::SplitArgs),
    /// Rebuild a file from t or more of its shares.
    Combine(share::CombineArgs),
    /// Rebuild a lost or corrupt share from t good ones, without the source.
    Repair(share::RepairArgs),
    /// Print share headers and check each share's own hashes.
    Inspect(share::InspectArgs),
    /// Measure split and combine throughput per backend and size.
    Bench(bench::BenchArgs),
    /// Write a synthetic CT-like volume to try umbra on large files.
    ///
    /// Raw 16-bit little-endian slices, the data `umbra bench` uses; the same
    /// arguments always give the same bytes.
    SynthVolume(bench::SynthVolumeArgs),
    /// Shadow images of grayscale images, as in the paper.
    ///
    /// Reads PNG, TIFF, PGM and DICOM; writes n shadow PNGs per image and the
    /// image recovered from t of them, checked pixel for pixel.
    Shadows(paper::ShadowsArgs),
    /// Statistics and histograms of images and shadows.
    ///
    /// Histograms, entropy, chi-square, adjacent-pixel correlation, NPCR and
    /// UACI of images and of `umbra shadows` directories.
    Stats(paper::StatsArgs),
    /// Run the paper's experiment on the bundled images and write REPORT.md.
    Reproduce(paper::ReproduceArgs),
    /// Create an archive: umbra.toml, empty catalog, site key, local stores.
    Init(archive::InitArgs),
    /// Archive configuration.
    #[command(subcommand)]
    Config(archive::ConfigCmd),
    /// Protect a source's new and changed objects: split each into the stores.
    Migrate(archive::MigrateArgs),
    /// Rebuild archived objects from any t reachable stores.
    ///
    /// Its --version chooses an object's version (`umbra --version` prints
    /// umbra's).
    #[command(disable_version_flag = true)]
    Restore(archive::RestoreArgs),
    /// Check every share in every store (--deep: rebuild every object).
    Verify(archive::VerifyArgs),
    /// Rebuild the archive's missing or corrupt shares from t good ones
    /// (--rebalance: move shares to the stores umbra.toml now names;
    /// --reshare: re-split versions of another t, n or scheme).
    ArchiveRepair(archive::ArchiveRepairArgs),
    /// The archive's hash-chained audit log.
    #[command(subcommand)]
    Audit(archive::AuditCmd),
    /// What the archive holds: objects by state, bytes per store, stores
    /// reachable, verification lag, the last runs (exit 3: a store does not
    /// answer, or the audit log does not check).
    Status(status::StatusArgs),
    /// List archived objects (the latest version of each, or --versions),
    /// filtered like restore.
    Ls(status::LsArgs),
    /// Apply a retention policy: older versions leave the catalog (recorded
    /// with the rule) and their shares every store.
    Forget(retention::ForgetArgs),
    /// Erase every version of a patient, study or SOP instance from every
    /// store and from the catalog, on request (GDPR art. 17).
    Erase(retention::EraseArgs),
    /// The site key (store names are keyed hashes under it).
    #[command(subcommand)]
    Key(retention::KeyCmd),
}

/// Exit status 11: another umbra process holds the archive's lock.
pub const EXIT_LOCKED: u8 = 11;

/// The exit status of a fatal error: 11 for a held lock, else 1.
pub fn exit_code_of(e: &anyhow::Error) -> ExitCode {
    let locked = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<umbra::archive::ArchiveError>(),
            Some(umbra::archive::ArchiveError::Locked { .. })
        )
    });
    if locked {
        ExitCode::from(EXIT_LOCKED)
    } else {
        ExitCode::FAILURE
    }
}

/// Exit status 2: the command line is wrong.
const EXIT_USAGE: u8 = 2;

/// An argument error on one line of stderr, with the command's usage and a
/// hint where the mistake is a known one; help and version as clap prints
/// them.
fn argument_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return if e.use_stderr() {
            ExitCode::from(EXIT_USAGE)
        } else {
            ExitCode::SUCCESS
        };
    }
    let text = e.render().to_string();
    let mut message = Vec::new();
    let mut usage = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u.to_string());
        } else if !line.starts_with("For more information") && !line.starts_with("tip:") {
            message.push(line.strip_prefix("error: ").unwrap_or(line).to_string());
        }
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hint = if args.first().map(String::as_str) == Some("repair")
        && args.iter().any(|a| a == "-C" || a.starts_with("--archive"))
    {
        "; `umbra repair` rebuilds one share file from share files: to repair an archive, \
         run `umbra archive-repair -C DIR`"
            .to_string()
    } else {
        match usage {
            Some(u) => format!(" (usage: {u}; see --help)"),
            None => " (see --help)".to_string(),
        }
    };
    eprintln!("umbra: error: {}{hint}", message.join(" "));
    ExitCode::from(EXIT_USAGE)
}

pub fn run() -> anyhow::Result<ExitCode> {
    ui::started();
    signals::clean_up_on_signals();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return Ok(argument_error(e)),
    };
    if let Some(threads) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("could not start the worker threads")?;
    }
    let level = match &cli.simd {
        Some(name) => Level::parse(name)?.checked()?,
        None => Level::detect(),
    };
    let ui = Ui {
        quiet: cli.quiet,
        verbose: cli.verbose,
        level,
        backend: cli.backend,
        cross_check: cli.cross_check,
    };
    match &cli.command {
        Command::Split(a) => share::split_cmd(&ui, a),
        Command::Combine(a) => share::combine_cmd(&ui, a),
        Command::Repair(a) => share::repair_cmd(&ui, a),
        Command::Inspect(a) => share::inspect_cmd(a),
        Command::Bench(a) => bench::bench_cmd(&ui, a),
        Command::SynthVolume(a) => bench::synth_volume_cmd(a),
        Command::Shadows(a) => paper::shadows_cmd(&ui, a),
        Command::Stats(a) => paper::stats_cmd(&ui, a),
        Command::Reproduce(a) => paper::reproduce_cmd(&ui, a),
        Command::Init(a) => archive::init_cmd(&ui, a),
        Command::Config(c) => archive::config_cmd(c),
        Command::Migrate(a) => archive::migrate_cmd(&ui, a),
        Command::Restore(a) => archive::restore_cmd(&ui, a),
        Command::Verify(a) => archive::verify_cmd(&ui, a),
        Command::ArchiveRepair(a) => archive::archive_repair_cmd(&ui, a),
        Command::Audit(c) => archive::audit_cmd(&ui, c),
        Command::Status(a) => status::status_cmd(&ui, a),
        Command::Ls(a) => status::ls_cmd(&ui, a),
        Command::Forget(a) => retention::forget_cmd(&ui, a),
        Command::Erase(a) => retention::erase_cmd(&ui, a),
        Command::Key(c) => retention::key_cmd(&ui, c),
    }
}
