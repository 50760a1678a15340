//! `umbra stats`: the statistics of images and of `umbra shadows`
//! directories, read from their files and written as Markdown and JSON with
//! histogram figures; and the Markdown tables that `umbra reproduce` shares.

use std::path::{Path, PathBuf};

use super::error::{AtPath, PaperError, Result};
use super::figures;
use super::image_io;
use super::shadows::ShadowManifest;
use super::stats::{PairStats, PlaneStats, SetStats, ideal_npcr_uaci, npcr_uaci};

/// Statistics of the original and every shadow in a `umbra shadows`
/// directory, with NPCR / UACI for every pair of shadows.
pub fn set_stats(dir: &Path, name: &str) -> Result<SetStats> {
    let manifest = ShadowManifest::read(dir)?;
    let bad = |path: PathBuf| move |reason: String| PaperError::BadShadow { path, reason };
    let original_path = dir.join(&manifest.original);
    let original = image_io::read_gray(&original_path)?;
    let mut planes = vec![
        PlaneStats::compute("original", &original, original.levels())
            .map_err(bad(original_path))?,
    ];
    let mut shadows = Vec::new();
    for e in &manifest.shadows {
        let path = dir.join(&e.file);
        let img = image_io::read_gray(&path)?;
        planes.push(
            PlaneStats::compute(&format!("shadow {}", e.x), &img, manifest.shadow_levels)
                .map_err(bad(path))?,
        );
        shadows.push((e.x, img));
    }
    let mut pairs = Vec::new();
    for i in 0..shadows.len() {
        for j in i + 1..shadows.len() {
            if let Some((npcr, uaci)) =
                npcr_uaci(&shadows[i].1, &shadows[j].1, manifest.shadow_levels)
            {
                pairs.push(PairStats {
                    a: format!("shadow {}", shadows[i].0),
                    b: format!("shadow {}", shadows[j].0),
                    npcr_percent: npcr,
                    uaci_percent: uaci,
                });
            }
        }
    }
    let (npcr, uaci) = ideal_npcr_uaci(manifest.shadow_levels);
    Ok(SetStats {
        name: name.to_string(),
        source: manifest.source.clone(),
        field: Some(manifest.field.to_string()),
        scheme: Some(manifest.scheme.to_string()),
        t: Some(manifest.t),
        n: Some(manifest.n),
        planes,
        pairs,
        ideal_npcr_percent: Some(npcr),
        ideal_uaci_percent: Some(uaci),
        histogram_figure: String::new(),
    })
}

/// Statistics of a lone image file.
pub fn image_stats(path: &Path, name: &str, levels: Option<u32>) -> Result<SetStats> {
    let img = image_io::read_gray(path)?;
    let levels = levels.unwrap_or_else(|| img.levels());
    let plane =
        PlaneStats::compute(name, &img, levels).map_err(|reason| PaperError::BadShadow {
            path: path.to_path_buf(),
            reason,
        })?;
    Ok(SetStats {
        name: name.to_string(),
        source: path.to_path_buf(),
        field: None,
        scheme: None,
        t: None,
        n: None,
        planes: vec![plane],
        pairs: Vec::new(),
        ideal_npcr_percent: None,
        ideal_uaci_percent: None,
        histogram_figure: String::new(),
    })
}

fn opt(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.4}"))
}

/// A p-value in a few characters: small ones in scientific notation.
pub fn show_p(p: f64) -> String {
    if p == 0.0 {
        "< 1e-300".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// One Markdown table of per-plane statistics.
pub fn planes_markdown(planes: &[PlaneStats]) -> String {
    let mut s = String::new();
    if planes.iter().any(|p| p.chi_square_approximate) {
        s.push_str(
            "\\* fewer than 5 samples expected per value: the chi-square p-value is only \
             approximate. Entropy is shown against its ceiling, log2 of the alphabet or of the \
             sample count, whichever is smaller.\n\n",
        );
    }
    s.push_str(
        "| plane | size | levels | entropy (bits) | chi-square (dof) | p-value | corr. horiz. | corr. vert. | corr. diag. |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for p in planes {
        s.push_str(&format!(
            "| {} | {} x {} | {} | {:.4} / {:.2} | {:.1} ({}){} | {} | {} | {} | {} |\n",
            p.name,
            p.width,
            p.height,
            p.levels,
            p.entropy_bits,
            p.max_entropy_bits,
            p.chi_square,
            p.dof,
            if p.chi_square_approximate { " \\*" } else { "" },
            show_p(p.p_value),
            opt(p.corr_horizontal),
            opt(p.corr_vertical),
            opt(p.corr_diagonal)
        ));
    }
    s
}

/// Min, mean and max of NPCR and UACI over all pairs, as one Markdown line.
pub fn pairs_summary(set: &SetStats) -> Option<String> {
    if set.pairs.is_empty() {
        return None;
    }
    let stat = |f: fn(&PairStats) -> f64| {
        let v: Vec<f64> = set.pairs.iter().map(f).collect();
        let min = v.iter().cloned().fold(f64::MAX, f64::min);
        let max = v.iter().cloned().fold(f64::MIN, f64::max);
        (min, v.iter().sum::<f64>() / v.len() as f64, max)
    };
    let (n0, n1, n2) = stat(|p| p.npcr_percent);
    let (u0, u1, u2) = stat(|p| p.uaci_percent);
    Some(format!(
        "Between the {} pairs of shadows: NPCR {n0:.3} / {n1:.3} / {n2:.3} % (min / mean / max; \
         {:.3} % for independent uniform planes), UACI {u0:.3} / {u1:.3} / {u2:.3} % ({:.3} %).",
        set.pairs.len(),
        set.ideal_npcr_percent.unwrap_or(f64::NAN),
        set.ideal_uaci_percent.unwrap_or(f64::NAN)
    ))
}

/// `umbra stats`: for each input (a `umbra shadows` directory or an image),
/// a histogram figure in `out/histograms/`, and every table in
/// `out/stats.md` and `out/stats.json`.
pub fn run_stats(inputs: &[PathBuf], out: &Path, levels: Option<u32>) -> Result<Vec<SetStats>> {
    std::fs::create_dir_all(out.join("histograms")).at(out)?;
    let mut sets = Vec::new();
    let mut used = std::collections::HashSet::new();
    for input in inputs {
        let base = super::shadows::stem_of(input);
        let mut name = base.clone();
        let mut k = 2;
        while !used.insert(name.clone()) {
            name = format!("{base}-{k}");
            k += 1;
        }
        let mut set = if input.is_dir() {
            if !input.join(ShadowManifest::FILE).exists() {
                return Err(PaperError::NotAnImage {
                    path: input.clone(),
                    reason: format!(
                        "a directory without {}: give a directory written by `umbra shadows`, \
                         or image files",
                        ShadowManifest::FILE
                    ),
                });
            }
            set_stats(input, &name)?
        } else {
            image_stats(input, &name, levels)?
        };
        let figure = format!("histograms/{name}.png");
        figures::histogram_figure(&out.join(&figure), &set)?;
        set.histogram_figure = figure;
        sets.push(set);
    }
    let md = stats_markdown(&sets);
    std::fs::write(out.join("stats.md"), md).at(&out.join("stats.md"))?;
    let json = serde_json::to_string_pretty(&sets).expect("stats serialise");
    std::fs::write(out.join("stats.json"), json + "\n").at(&out.join("stats.json"))?;
    Ok(sets)
}

/// All sets as one Markdown document with the figures inline.
pub fn stats_markdown(sets: &[SetStats]) -> String {
    let mut md = String::from("# umbra stats\n\n");
    for set in sets {
        md.push_str(&format!(
            "## {}\n\nSource: `{}`",
            set.name,
            set.source.display()
        ));
        if let (Some(f), Some(s), Some(t), Some(n)) = (&set.field, &set.scheme, set.t, set.n) {
            md.push_str(&format!("; {f}, {s}, (t, n) = ({t}, {n})"));
        }
        md.push_str(&format!(
            ".\n\n![histograms of {}]({})\n\n",
            set.name, set.histogram_figure
        ));
        md.push_str(&planes_markdown(&set.planes));
        if let Some(line) = pairs_summary(set) {
            md.push('\n');
            md.push_str(&line);
            md.push('\n');
        }
        md.push('\n');
    }
    md
}
