//! REPORT.md of `umbra reproduce`: the paper's claims beside what umbra
//! measured, the tables per configuration, the Thien-Lin leak, the
//! full-resolution images, written from the [`Report`] the experiment made.

use std::path::PathBuf;
use std::time::Duration;

use super::error::{AtPath, Result};
use super::reproduce::{CONFIGS, Report, ReproduceOptions, Run};
use super::shadows::{self, FieldKind, Scheme};
use super::stats::SetStats;
use super::stats_report::{planes_markdown, show_p};

/// Report lines end with a newline each.
fn line(md: &mut String, s: &str) {
    md.push_str(s);
    md.push('\n');
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, c) = v.fold((0.0, 0usize), |(s, c), x| (s + x, c + 1));
    if c == 0 { f64::NAN } else { s / c as f64 }
}

fn opt4(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.4}"))
}

/// Worst (largest) |correlation| over the three directions and all shadows.
fn max_shadow_corr(set: &SetStats) -> Option<f64> {
    set.planes
        .iter()
        .skip(1)
        .flat_map(|p| [p.corr_horizontal, p.corr_vertical, p.corr_diagonal])
        .map(|c| c.map(f64::abs))
        .try_fold(0f64, |acc, c| c.map(|c| acc.max(c)))
}

fn min_shadow_p(set: &SetStats) -> f64 {
    set.planes
        .iter()
        .skip(1)
        .map(|p| p.p_value)
        .fold(1.0, f64::min)
}

fn mean_pairs(set: &SetStats) -> (f64, f64) {
    (
        mean(set.pairs.iter().map(|p| p.npcr_percent)),
        mean(set.pairs.iter().map(|p| p.uaci_percent)),
    )
}

fn config_runs(runs: &[Run], field: FieldKind, scheme: Scheme) -> Vec<&Run> {
    runs.iter()
        .filter(|r| r.field == field && r.scheme == scheme)
        .collect()
}

/// Writes `report.json` (every number) and `REPORT.md` under
/// `opts.output`; returns the path of REPORT.md.
pub fn write(report: &Report, opts: &ReproduceOptions) -> Result<PathBuf> {
    let json_path = opts.output.join("report.json");
    let json = serde_json::to_string_pretty(report).expect("report serialises");
    std::fs::write(&json_path, json + "\n").at(&json_path)?;
    let md_path = opts.output.join("REPORT.md");
    std::fs::write(&md_path, markdown(report, opts)).at(&md_path)?;
    Ok(md_path)
}

/// The whole report.
pub fn markdown(r: &Report, opts: &ReproduceOptions) -> String {
    let mut md = String::new();
    intro(&mut md, r, opts);
    claims_recovery(&mut md, r, opts);
    claims_security(&mut md, r);
    per_configuration(&mut md, r);
    leak(&mut md, r);
    full_resolution(&mut md, r, opts);
    storage_schemes(&mut md, r);
    line(&mut md, "## How to read this\n");
    line(
        &mut md,
        "- Entropy is in bits per sample over the plane's alphabet (256, 257 or 65,536 values); \
         chi-square tests uniformity over that alphabet, and its p-value is P(X >= chi-square) \
         (regularized incomplete gamma). Small p-values (below 0.001) mean \"not uniform\".\n\
         - Correlation: Pearson over every pair of horizontally, vertically or diagonally \
         adjacent pixels.\n\
         - NPCR: percentage of positions where two shadows differ; UACI: their mean absolute \
         difference as a percentage of the largest value.\n\
         - p257 shadows are 16-bit PNGs whose values run 0..=256; the montages scale them to 8 \
         bits for display only.\n\
         - `report.json` holds every number of this report.",
    );
    md
}

/// Title, command, backend and the data used.
fn intro(md: &mut String, r: &Report, opts: &ReproduceOptions) {
    let (t, n) = (r.t, r.n);
    line(md, "# umbra reproduces Marwan et al. (2019)\n");
    line(
        md,
        &format!(
            "\"Improving the Security of Cloud-based Medical Image Storage\" shares medical \
             images with a ({t}, {n}) threshold over p = 257, shows the shadow images and the \
             recovered image (its Fig. 8-14), and argues security from the shadows' histograms \
             (Fig. 15-16). This report runs that experiment with umbra.\n\n\
             Command: `umbra reproduce -o {}{}` (data from `{}`). Backend {}, {} thread(s), \
             {} build; total {:.1} s. Every time below is wall-clock: the GF(2^8) splits run \
             on the backend named here (`--backend gpu` for the GPU's times), the p = 257 \
             arithmetic and the statistics on the CPU.{}\n",
            opts.output.display(),
            if opts.quick { " --quick" } else { "" },
            opts.data.display(),
            r.backend,
            r.threads,
            if r.debug_build {
                "debug (unoptimised)"
            } else {
                "release"
            },
            r.total_time.as_secs_f64(),
            if r.debug_build {
                " **Debug build: times are far slower than a release build's.**"
            } else {
                ""
            }
        ),
    );
    line(
        md,
        "The six 256x256 images are stand-ins built from the bundled DICOM corpus, not the \
         paper's images (there is no mammogram or spine study among them; see \
         `datasets/README.md`). No number from the paper is quoted here: the left column \
         states what the paper claims or shows, the right one what umbra measured.\n",
    );
}

/// The claims table: recovery from t shadows, and what shadows cost.
fn claims_recovery(md: &mut String, r: &Report, opts: &ReproduceOptions) {
    let (t, n) = (r.t, r.n);
    let ps = config_runs(&r.paper256, FieldKind::P257, Scheme::Shamir);
    let gs = config_runs(&r.paper256, FieldKind::Gf256, Scheme::Shamir);
    let subsets_line = |v: &[&Run]| {
        let c: usize = v.iter().map(|x| x.subsets_checked).sum();
        let tot: usize = v.iter().map(|x| x.subsets_total).sum();
        format!("{c} of {tot}")
    };
    let need = t.div_ceil(2);
    line(md, "## The paper's claims beside umbra's numbers\n");
    line(md, "| the paper | umbra, on the 256x256 set |\n|---|---|");
    line(
        md,
        &format!(
            "| ({t}, {n}) threshold over p = 257: any {t} of the {n} shadows recover the image | \
             p257 Shamir: every image recovered pixel for pixel from shadows {:?} read back from \
             the PNG files, and from every set of {need} clouds (below); all t-subsets: {}{}. \
             gf256 Shamir: the same, all t-subsets: {}. |",
            ps.first()
                .map(|x| x.recovered_from.clone())
                .unwrap_or_default(),
            subsets_line(&ps),
            if opts.quick {
                " (in Z_257 only without --quick, where they take longer)"
            } else {
                ""
            },
            subsets_line(&gs)
        ),
    );
    line(
        md,
        &format!(
            "| Shadows are images of the original's size | p257: {} shadow pixels per image, but \
             share values run 0..=256 (257 values do not fit a byte), so they are stored as \
             16-bit PNG: {} bytes of samples per shadow for a {}-byte image ({}x the storage, \
             {}x over {n} shadows). gf256: same size and depth, {} bytes per shadow. |",
            ps.first().map_or(0, |x| x.shadow_width * x.shadow_height),
            ps.first().map_or(0, |x| x.shadow_bytes),
            ps.first().map_or(0, |x| x.original_bytes),
            ps.first()
                .map_or(0, |x| x.shadow_bytes / x.original_bytes.max(1)),
            ps.first()
                .map_or(0, |x| x.shadow_bytes * n as u64 / x.original_bytes.max(1)),
            gs.first().map_or(0, |x| x.shadow_bytes)
        ),
    );
}

/// The claims table: what shadows reveal, Thien-Lin, the clouds, exactness.
fn claims_security(md: &mut String, r: &Report) {
    let (t, n) = (r.t, r.n);
    let ps = config_runs(&r.paper256, FieldKind::P257, Scheme::Shamir);
    let gs = config_runs(&r.paper256, FieldKind::Gf256, Scheme::Shamir);
    let tl: Vec<&Run> = r
        .paper256
        .iter()
        .filter(|x| x.scheme == Scheme::ThienLin)
        .collect();
    let clouds = n / 2;
    let need = t.div_ceil(2);
    let flat = |v: &[&Run]| {
        let min_p = v.iter().map(|x| min_shadow_p(&x.stats)).fold(1.0, f64::min);
        let ent = mean(
            v.iter()
                .flat_map(|x| x.stats.planes.iter().skip(1).map(|p| p.entropy_bits)),
        );
        let corr = v
            .iter()
            .filter_map(|x| max_shadow_corr(&x.stats))
            .fold(0.0, f64::max);
        (min_p, ent, corr)
    };
    let (pp, pe, pc) = flat(&ps);
    let (gp, ge, gc) = flat(&gs);
    let (tp, te, tc) = flat(&tl);
    let max_image_corr = |v: &[&Run]| {
        v.iter()
            .filter_map(|x| x.max_corr_with_image)
            .fold(0.0, f64::max)
    };
    let shamir: Vec<&Run> = ps.iter().chain(&gs).copied().collect();
    let (shi, tli) = (max_image_corr(&shamir), max_image_corr(&tl));
    line(
        md,
        &format!(
            "| The shadows' histograms are flat, so the shadows reveal nothing (Fig. 15-16) | \
             Shamir shadows are uniform: smallest chi-square p-value over all {} shadows {} \
             (p257), {} (gf256), where {} independent uniform shadows give a smallest p-value of \
             1/{} = {:.3} on average, and one below 0.001 {:.0} % of the time; mean entropy {pe:.4} bits of log2(257) = 8.0056 (p257), \
             {ge:.4} of 8 (gf256); largest adjacent-pixel correlation {pc:.4} / {gc:.4}. A flat \
             histogram is necessary, not sufficient: Thien-Lin shadows (below) leak although \
             each looks like noise; their smallest p-value is {}, mean entropy {te:.4}, \
             largest correlation {tc:.4}. The decisive number: a single shadow's correlation \
             with the image it hides is at most {shi:.4} under Shamir, but up to {tli:.4} under \
             Thien-Lin. |",
            ps.len() * n,
            show_p(pp),
            show_p(gp),
            ps.len() * n,
            ps.len() * n + 1,
            1.0 / (ps.len() * n + 1) as f64,
            (1.0 - 0.999f64.powi((ps.len() * n) as i32)) * 100.0,
            show_p(tp)
        ),
    );
    let tl_g = config_runs(&r.paper256, FieldKind::Gf256, Scheme::ThienLin);
    line(
        md,
        &format!(
            "| Section VII: t pixels as the coefficients of one polynomial (Thien-Lin) make \
             shadows 1/t the size | {}x{} shadow pixels for a 256x256 image: 1/{t} of the pixels; \
             lossless in both fields (every byte recovered, no clipping of values above 250 as \
             in the mod-251 original). What the paper does not show: any t-1 Thien-Lin shadows \
             leak (next sections). |",
            tl_g.first().map_or(0, |x| x.shadow_width),
            tl_g.first().map_or(0, |x| x.shadow_height)
        ),
    );
    let cloud_total: usize = r
        .paper256
        .iter()
        .map(|x| x.cloud_sets_checked)
        .sum::<usize>();
    line(
        md,
        &format!(
            "| 2 shadows on each of {clouds} clouds; an attacker must breach {t} shadows | What \
             the paper leaves out: the threshold counts shadows, not clouds. Any {need} clouds \
             together hold {} shadows and rebuild the image: umbra checked every set of {need} \
             clouds for every image and configuration ({cloud_total} recoveries, all pixel for \
             pixel identical). With this placement the real threshold is {need} of {clouds} \
             providers, and losing {} clouds loses the image. Put one shadow per provider, or \
             count providers when you choose t. |",
            2 * need,
            clouds - need + 1
        ),
    );
    line(
        md,
        &format!(
            "| Recovery is exact | {} of {} runs recovered bit for bit from PNG files on disk \
             (the command fails otherwise). |\n",
            r.paper256.len(),
            r.paper256.len()
        ),
    );
}

/// The 256x256 set, a table and figures per field and scheme.
fn per_configuration(md: &mut String, r: &Report) {
    line(md, "## The 256x256 set\n");
    for (field, scheme) in CONFIGS {
        let runs = config_runs(&r.paper256, field, scheme);
        if runs.is_empty() {
            continue;
        }
        let title = match (field, scheme) {
            (FieldKind::P257, Scheme::Shamir) => "p257, Shamir (the paper's scheme)",
            (FieldKind::Gf256, Scheme::Shamir) => "gf256, Shamir (umbra's scheme)",
            (FieldKind::P257, Scheme::ThienLin) => "p257, Thien-Lin (the paper's section VII)",
            (FieldKind::Gf256, Scheme::ThienLin) => "gf256, Thien-Lin",
        };
        line(md, &format!("### {title}\n"));
        if scheme == Scheme::ThienLin {
            line(
                md,
                &format!("> **Warning:** {}\n", shadows::THIEN_LIN_WARNING),
            );
        }
        line(
            md,
            "| image | shadow | read ms | split ms | write PNGs ms | recover+check ms | stats ms \
             | figures ms | t-subsets | cloud sets | shadow entropy (mean) | min p-value | max \
             abs corr. | max abs corr. with image | NPCR % | UACI % |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        );
        for x in &runs {
            let (npcr, uaci) = mean_pairs(&x.stats);
            line(
                md,
                &format!(
                    "| {} | {}x{}, {}-bit | {} | {} | {} | {} | {} | {} | {} / {} | {} | {:.4} | \
                     {} | {} | {} | {npcr:.3} | {uaci:.3} |",
                    x.image,
                    x.shadow_width,
                    x.shadow_height,
                    x.shadow_bits,
                    ms(x.times.read),
                    ms(x.times.split),
                    ms(x.times.write),
                    ms(x.times.recover),
                    ms(x.stats_time),
                    ms(x.figure_time),
                    x.subsets_checked,
                    x.subsets_total,
                    x.cloud_sets_checked,
                    mean(x.stats.planes.iter().skip(1).map(|p| p.entropy_bits)),
                    show_p(min_shadow_p(&x.stats)),
                    opt4(max_shadow_corr(&x.stats)),
                    opt4(x.max_corr_with_image),
                ),
            );
        }
        if let Some(first) = runs.first() {
            let (i_npcr, i_uaci) = (
                first.stats.ideal_npcr_percent.unwrap_or(f64::NAN),
                first.stats.ideal_uaci_percent.unwrap_or(f64::NAN),
            );
            line(
                md,
                &format!(
                    "\nNPCR and UACI are means over the {} pairs of shadows; independent uniform \
                     planes give {i_npcr:.3} % and {i_uaci:.3} %. Full tables per shadow are in \
                     `report.json` and below each figure's directory (`shadows.json`).\n",
                    first.stats.pairs.len()
                ),
            );
        }
        for x in &runs {
            line(
                md,
                &format!(
                    "#### {} ({field}, {scheme})\n\n![{} shadows]({})\n\n![{} histograms]({})\n",
                    x.image, x.image, x.montage, x.image, x.histograms
                ),
            );
            line(md, &planes_markdown(&x.stats.planes));
        }
    }
}

/// A constant image: Thien-Lin shadows leak, Shamir ones do not.
fn leak(md: &mut String, r: &Report) {
    let (t, n) = (r.t, r.n);
    line(md, "## Thien-Lin leaks: a constant image\n");
    line(
        md,
        &format!(
            "A 256x256 image of one grey value (100), shared ({t}, {n}). Statistics of shadow 1 \
             alone: under Shamir a single shadow is uniform noise whatever the image; under \
             Thien-Lin every group of {t} equal pixels gives the same polynomial, so the shadow \
             is constant and tells its holder that the image is flat (and, with its x, which \
             values are possible). On real images the same effect keeps edges and flat areas \
             visible in the Thien-Lin montages above, and shows as high adjacent-pixel \
             correlation and as the correlation of single shadows with the image (column \
             \"max abs corr. with image\": the image's bytes for Shamir, the mean of each group \
             of t bytes for Thien-Lin).\n"
        ),
    );
    line(
        md,
        "| field | scheme | distinct values in shadow 1 | entropy (bits) | chi-square p-value \
         | corr. horiz. |\n|---|---|---|---|---|---|",
    );
    for l in &r.leak {
        line(
            md,
            &format!(
                "| {} | {} | {} | {:.4} | {} | {} |",
                l.field,
                l.scheme,
                l.distinct_values,
                l.shadow.entropy_bits,
                show_p(l.shadow.p_value),
                opt4(l.shadow.corr_horizontal)
            ),
        );
    }
    md.push('\n');
}

/// Every full-resolution DICOM image, gf256 Shamir.
fn full_resolution(md: &mut String, r: &Report, opts: &ReproduceOptions) {
    line(md, "## Full-resolution DICOM images (gf256, Shamir)\n");
    if opts.quick {
        line(
            md,
            "Skipped (`--quick`). Run without it for every image in `dicom/`.\n",
        );
    } else {
        line(
            md,
            "Samples as stored in the file (no rescale, window or inversion; MONOCHROME1 \
             inversion and a min-max stretch only in the montage's display), 16-bit samples \
             shared as two bytes; multi-frame objects as their frames stacked top to bottom. \
             Recovered pixel for pixel from the last t shadow PNGs; cloud sets as above. \
             \"split\" is computing the shadows in memory, buffer conversions included.\n",
        );
        line(
            md,
            "| image | size | read ms | split ms | write PNGs ms | recover+check ms | stats ms | \
             figures ms | split MB/s | cloud sets | min p-value | NPCR % | UACI % |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|",
        );
        for x in &r.full_resolution {
            let (npcr, uaci) = mean_pairs(&x.stats);
            let mbs = x.original_bytes as f64 / x.times.split.as_secs_f64().max(1e-9) / 1e6;
            line(
                md,
                &format!(
                    "| {} | {}x{}, {}-bit | {} | {} | {} | {} | {} | {} | {mbs:.0} | {} | {} | \
                     {npcr:.3} | {uaci:.3} |",
                    x.image,
                    x.width,
                    x.height,
                    x.bits,
                    ms(x.times.read),
                    ms(x.times.split),
                    ms(x.times.write),
                    ms(x.times.recover),
                    ms(x.stats_time),
                    ms(x.figure_time),
                    x.cloud_sets_checked,
                    show_p(min_shadow_p(&x.stats)),
                ),
            );
        }
        if !r.skipped.is_empty() {
            line(md, "\nNot shared as images, with umbra's error:\n");
            for s in &r.skipped {
                line(md, &format!("- `{}`: {}", s.file, s.error));
            }
        }
        md.push('\n');
        for x in &r.full_resolution {
            line(
                md,
                &format!(
                    "### {}\n\n![{} shadows]({})\n\n![{} histograms]({})\n",
                    x.image, x.image, x.montage, x.image, x.histograms
                ),
            );
            line(md, &planes_markdown(&x.stats.planes));
        }
    }
}

/// Shamir and the compact scheme on the same files.
fn storage_schemes(md: &mut String, r: &Report) {
    let (t, n) = (r.t, r.n);
    line(md, "## Storage: Shamir and the compact scheme\n");
    line(
        md,
        &format!(
            "Each file split ({t}, {n}) into real share files with `umbra split`'s pipeline, \
             under each of umbra's schemes, combined back from the last {t} shares and compared \
             byte for byte. Shamir stores {n} times the data and its shares reveal nothing \
             (perfect secrecy); the compact scheme encrypts the file with ChaCha20 under a fresh \
             key, disperses the ciphertext into {n} shares of about 1/{t} of it and Shamir-shares \
             the key, so it stores about {n}/{t} times the data, and fewer than {t} shares \
             reveal nothing of the key and at most ({t}-1)/{t} of a ChaCha20 ciphertext \
             (computational secrecy). The paper places 2 shares on each of {} clouds. \
             Statistics are those of each share's payload as a plane of 256 bytes per row \
             (header and segment table left out); the all-zero file is the most regular input \
             there is.\n",
            n / 2
        ),
    );
    line(
        md,
        "| file | scheme | source (bytes) | per share | per cloud | total | factor | split ms \
         | combine ms | share entropy (min) | chi-square p (min) | max abs adjacent corr. |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|",
    );
    for s in &r.schemes {
        let shares = &s.stats.planes[1..];
        let min_entropy = shares
            .iter()
            .map(|p| p.entropy_bits)
            .fold(f64::INFINITY, f64::min);
        let min_p = shares.iter().map(|p| p.p_value).fold(1.0, f64::min);
        let max_corr = shares
            .iter()
            .flat_map(|p| [p.corr_horizontal, p.corr_vertical, p.corr_diagonal])
            .flatten()
            .map(f64::abs)
            .reduce(f64::max);
        line(
            md,
            &format!(
                "| {} | {} | {} | {} | {} | {} | {:.3}x | {} | {} | {:.4} | {} | {} |",
                s.file,
                s.scheme,
                s.source_bytes,
                s.share_bytes,
                s.bytes_per_cloud,
                s.total_bytes,
                s.storage_factor,
                ms(s.split_time),
                ms(s.combine_time),
                min_entropy,
                show_p(min_p),
                opt4(max_corr),
            ),
        );
    }
    md.push('\n');
    for s in r.schemes.iter().filter(|s| s.file == "all-zero file") {
        line(
            md,
            &format!(
                "### The all-zero file ({})\n\n{}\n![all-zero file, {} shares]({})\n",
                s.scheme,
                planes_markdown(&s.stats.planes),
                s.scheme,
                s.histograms
            ),
        );
    }
}
