//! The paper's commands: `shadows`, `stats` and `reproduce`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use umbra::paper::report;
use umbra::paper::reproduce::{self, ReproduceOptions};
use umbra::paper::shadows::{self, FieldKind, KeySource, Scheme, ShadowParams};

use super::backend::file_len;
use super::ui::Ui;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FieldArg {
    /// GF(2^8), lossless, shadows of the original's size and depth.
    Gf256,
    /// Z_257, the paper's field; shadows are 16-bit PNGs (values 0..=256).
    P257,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemeArg {
    /// Random coefficients: t-1 shadows reveal nothing.
    Shamir,
    /// t pixels as the coefficients: shadows 1/t the size, but t-1 of them leak.
    ThienLin,
}

#[derive(Args)]
pub(crate) struct ShadowsArgs {
    /// Threshold: shadows needed to recover.
    #[arg(short, long, default_value_t = 4)]
    pub(crate) t: usize,
    /// Number of shadows.
    #[arg(short, long, default_value_t = 8)]
    pub(crate) n: usize,
    /// Output directory; each image gets a subdirectory named after it with
    /// shadow-XXX.png, shadows.json, and original.png and recovered.png: the
    /// image itself, so hand out only the shadow files.
    #[arg(short, long, value_name = "DIR")]
    pub(crate) output: PathBuf,
    /// Field of the arithmetic.
    #[arg(long, value_enum, default_value_t = FieldArg::Gf256)]
    pub(crate) field: FieldArg,
    /// Sharing scheme.
    #[arg(long, value_enum, default_value_t = SchemeArg::Shamir)]
    pub(crate) scheme: SchemeArg,
    /// 8- or 16-bit grayscale PNG, TIFF, PGM/PNM or DICOM files.
    #[arg(required = true, value_name = "IMAGE")]
    pub(crate) images: Vec<PathBuf>,
}

#[derive(Args)]
pub(crate) struct StatsArgs {
    /// Output directory for stats.md, stats.json and histograms/.
    #[arg(short, long, value_name = "DIR")]
    pub(crate) output: PathBuf,
    /// Sample values of the given image files (default 2^bits; 257 for p257
    /// shadows). Shadow directories carry their own.
    #[arg(long, value_name = "N")]
    pub(crate) levels: Option<u32>,
    /// Directories written by `umbra shadows`, or image files.
    #[arg(required = true, value_name = "INPUT")]
    pub(crate) inputs: Vec<PathBuf>,
}

#[derive(Args)]
pub(crate) struct ReproduceArgs {
    /// Output directory for REPORT.md and its figures.
    #[arg(short, long, value_name = "DIR")]
    pub(crate) output: PathBuf,
    /// The corpus: a directory with paper256/ and dicom/.
    #[arg(long, value_name = "DIR", default_value = "datasets")]
    pub(crate) data: PathBuf,
    /// Only the 256x256 set, not the full-resolution DICOM images.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Threshold (the paper's is 4).
    #[arg(short, long, default_value_t = 4)]
    pub(crate) t: usize,
    /// Number of shadows (the paper's is 8, two on each of four clouds).
    #[arg(short, long, default_value_t = 8)]
    pub(crate) n: usize,
}

pub(crate) fn shadow_params(
    t: usize,
    n: usize,
    field: FieldArg,
    scheme: SchemeArg,
) -> anyhow::Result<ShadowParams> {
    let field = match field {
        FieldArg::Gf256 => FieldKind::Gf256,
        FieldArg::P257 => FieldKind::P257,
    };
    let scheme = match scheme {
        SchemeArg::Shamir => Scheme::Shamir,
        SchemeArg::ThienLin => Scheme::ThienLin,
    };
    Ok(ShadowParams::new(t, n, field, scheme)?)
}

pub(crate) fn shadows_cmd(ui: &Ui, a: &ShadowsArgs) -> anyhow::Result<ExitCode> {
    let params = shadow_params(a.t, a.n, a.field, a.scheme)?;
    if params.scheme == Scheme::ThienLin {
        ui.note(format!("warning: {}", shadows::THIEN_LIN_WARNING));
    }
    let backend = ui.backend(a.images.iter().map(|f| file_len(f)).sum())?;
    let mut failures = 0;
    shadows::shadow_images(
        backend.as_ref(),
        &a.images,
        &a.output,
        &params,
        &KeySource::Os,
        &mut |input, result| match result {
            Ok(out) => ui.info(format!(
                "{}: {} {} shadows in {}, recovered from shadows {:?} and checked pixel for pixel",
                input.display(),
                out.manifest.n,
                params.field,
                out.dir.display(),
                out.manifest.recovered_from
            )),
            Err(e) => {
                eprintln!("umbra: error: {e}");
                failures += 1;
            }
        },
    );
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(crate) fn stats_cmd(ui: &Ui, a: &StatsArgs) -> anyhow::Result<ExitCode> {
    let sets = umbra::paper::stats_report::run_stats(&a.inputs, &a.output, a.levels)?;
    ui.info(format!(
        "statistics of {} input(s) in {}",
        sets.len(),
        a.output.join("stats.md").display()
    ));
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn reproduce_cmd(ui: &Ui, a: &ReproduceArgs) -> anyhow::Result<ExitCode> {
    let images = a.data.join("paper256");
    if !images.is_dir() {
        anyhow::bail!(
            "{} is not there: run from the umbra checkout, or give --data DIR (the corpus \
             directory, holding paper256/ and dicom/)",
            images.display()
        );
    }
    let backend = ui.backend(0)?;
    let opts = ReproduceOptions {
        output: a.output.clone(),
        data: a.data.clone(),
        quick: a.quick,
        t: a.t,
        n: a.n,
    };
    let results = reproduce::reproduce(backend.as_ref(), &opts, &mut |msg| ui.note(msg))?;
    let report = report::write(&results, &opts)?;
    ui.note(format!("report: {}", report.display()));
    Ok(ExitCode::SUCCESS)
}
