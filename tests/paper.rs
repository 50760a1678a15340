//! The paper's experiment on the real binary: `umbra shadows`, `umbra stats`
//! and `umbra reproduce`, with round trips in every field and scheme, golden
//! shadows for a fixed key, the Thien-Lin leak, and bad input.

mod common;

use std::path::{Path, PathBuf};

use common::{repo_file, run_line, sha256_hex, stderr};
use umbra::engine::CpuBackend;
use umbra::keystream::ObjectKey;
use umbra::paper::image_io::{GrayImage, read_gray, write_png};
use umbra::paper::shadows::{FieldKind, Scheme, ShadowManifest, ShadowParams, make_shadows};
use umbra::paper::stats::PlaneStats;

const FIELDS: [(&str, FieldKind); 2] = [("gf256", FieldKind::Gf256), ("p257", FieldKind::P257)];
const SCHEMES: [(&str, Scheme); 2] = [("shamir", Scheme::Shamir), ("thien-lin", Scheme::ThienLin)];

fn shadows_cmd(out: &Path, field: &str, scheme: &str, inputs: &[&Path]) -> std::process::Output {
    let mut c = common::umbra();
    c.args([
        "shadows", "-t", "4", "-n", "8", "--field", field, "--scheme", scheme, "-o",
    ])
    .arg(out)
    .args(inputs);
    c.output().expect("umbra runs")
}

/// A 16-bit TIFF and an 8-bit PGM with structure, written with the image crate.
fn synthetic_inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let tiff = dir.join("ramp16.tiff");
    let buf = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(37, 21, |x, y| {
        image::Luma([(x * 1771 + y * 60_013) as u16])
    });
    buf.save(&tiff).unwrap();
    let pgm = dir.join("ramp8.pgm");
    let buf = image::ImageBuffer::<image::Luma<u8>, _>::from_fn(30, 17, |x, y| {
        image::Luma([(x * 7 + y * 3) as u8])
    });
    buf.save(&pgm).unwrap();
    (tiff, pgm)
}

#[test]
fn shadows_round_trip_in_every_field_and_scheme() {
    let tmp = tempfile::tempdir().unwrap();
    let (tiff, pgm) = synthetic_inputs(tmp.path());
    let png = repo_file("datasets/paper256/ct_small.png");
    let dcm = repo_file("datasets/dicom/MR_small.dcm"); // 16-bit signed
    let inputs: [&Path; 4] = [&png, &dcm, &tiff, &pgm];
    for (fname, field) in FIELDS {
        for (sname, scheme) in SCHEMES {
            let out = tmp.path().join(format!("{fname}-{sname}"));
            let o = shadows_cmd(&out, fname, sname, &inputs);
            assert!(o.status.success(), "{fname} {sname}: {}", stderr(&o));
            assert_eq!(
                stderr(&o).contains("leak"),
                scheme == Scheme::ThienLin,
                "the Thien-Lin warning, and only for Thien-Lin: {}",
                stderr(&o)
            );
            let params = ShadowParams::new(4, 8, field, scheme).unwrap();
            for input in inputs {
                let original = read_gray(input).unwrap();
                let dir = out.join(input.file_stem().unwrap());
                let manifest = ShadowManifest::read(&dir).unwrap();
                assert_eq!(manifest.shadows.len(), 8);
                let shape = params.shadow_shape(original.width, original.height, original.bits);
                for e in &manifest.shadows {
                    let s = read_gray(&dir.join(&e.file)).unwrap();
                    assert_eq!((s.width, s.height, s.bits), shape, "{fname} {sname} {e:?}");
                }
                let recovered = read_gray(&dir.join("recovered.png")).unwrap();
                assert_eq!(
                    recovered.samples,
                    original.samples,
                    "{fname} {sname} {}",
                    input.display()
                );
                // And from another t of the written shadows, through the library.
                let picked: Vec<(u8, GrayImage)> = [1usize, 3, 4, 6]
                    .iter()
                    .map(|&i| {
                        let e = &manifest.shadows[i];
                        (e.x, read_gray(&dir.join(&e.file)).unwrap())
                    })
                    .collect();
                let refs: Vec<(u8, &GrayImage)> = picked.iter().map(|(x, s)| (*x, s)).collect();
                let again = umbra::paper::shadows::recover(
                    &CpuBackend::detect(),
                    &params,
                    (original.width, original.height, original.bits),
                    &refs,
                )
                .unwrap();
                assert_eq!(again.samples, original.samples);
            }
        }
    }
}

#[test]
fn dicom_multi_frame_and_jpeg_lossless_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let ect = repo_file("datasets/dicom/eCT_Supplemental.dcm");
    let jpll = repo_file("datasets/dicom/JPEG-LL.dcm");
    let o = shadows_cmd(tmp.path(), "gf256", "shamir", &[&ect, &jpll]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = ShadowManifest::read(&tmp.path().join("eCT_Supplemental")).unwrap();
    assert_eq!(
        (m.width, m.height, m.bits),
        (512, 1024, 16),
        "2 frames stacked"
    );
    let m = ShadowManifest::read(&tmp.path().join("JPEG-LL")).unwrap();
    assert_eq!((m.width, m.height, m.bits, m.signed), (256, 1024, 16, true));
}

/// SHA-256 of every shadow's samples (little-endian bytes), concatenated
/// in x order, for the fixed key [42; 32] on ct_small.png, (4, 8).
const GOLDEN: [(FieldKind, Scheme, &str); 4] = [
    (
        FieldKind::Gf256,
        Scheme::Shamir,
        "6724132500216b9542f61f150c9689743041c98bbff8605cdb9624cca04c7f84",
    ),
    (
        FieldKind::P257,
        Scheme::Shamir,
        "5fb9dbee910aeaca7b6087bb22a80ac5afa219303f15aa8f577c8ef17582ff50",
    ),
    (
        FieldKind::Gf256,
        Scheme::ThienLin,
        "d0c07a02e4daee77838f2d6d920125cc07a9a81f5cc3b9106b413b7b75228140",
    ),
    (
        FieldKind::P257,
        Scheme::ThienLin,
        "775542eb673117d3a5b0abaa193d9856ae01d73596478294dec00e5daf4c274b",
    ),
];

/// The shadows computed again from their definition, by code that shares
/// nothing with the library but the field multiply and the keystream: so
/// the golden hashes pin the definition, not just the implementation.
fn shadows_by_definition(
    img: &GrayImage,
    field: FieldKind,
    scheme: Scheme,
    key: &ObjectKey,
) -> Vec<Vec<u16>> {
    use umbra::field::mul;
    use umbra::keystream::fill;
    let (t, n) = (4usize, 8u16);
    let bytes = img.to_bytes();
    let eval = |coeffs: &[u16], x: u16| -> u16 {
        match field {
            FieldKind::Gf256 => {
                let mut acc = 0u8;
                let mut power = 1u8;
                for &c in coeffs {
                    acc ^= mul(c as u8, power);
                    power = mul(power, x as u8);
                }
                u16::from(acc)
            }
            FieldKind::P257 => {
                let mut acc = 0u32;
                let mut power = 1u32;
                for &c in coeffs {
                    acc = (acc + u32::from(c) * power) % 257;
                    power = power * u32::from(x) % 257;
                }
                acc as u16
            }
        }
    };
    let polys: Vec<Vec<u16>> = match scheme {
        Scheme::Shamir => {
            // Coefficient j for every byte position: GF(2^8) takes byte k of
            // stream j; Z_257 takes 16-bit words, skips 0xFFFF, reduces mod 257.
            let coeff: Vec<Vec<u16>> = (1..t as u32)
                .map(|j| match field {
                    FieldKind::Gf256 => {
                        let mut b = vec![0u8; bytes.len()];
                        fill(key, j, 0, &mut b);
                        b.into_iter().map(u16::from).collect()
                    }
                    FieldKind::P257 => {
                        let mut raw = vec![0u8; bytes.len() * 2 + 4096];
                        fill(key, j, 0, &mut raw);
                        raw.chunks_exact(2)
                            .map(|w| u16::from_le_bytes([w[0], w[1]]))
                            .filter(|&w| w != u16::MAX)
                            .map(|w| w % 257)
                            .take(bytes.len())
                            .collect()
                    }
                })
                .collect();
            (0..bytes.len())
                .map(|k| {
                    let mut c = vec![u16::from(bytes[k])];
                    c.extend(coeff.iter().map(|s| s[k]));
                    c
                })
                .collect()
        }
        Scheme::ThienLin => {
            let row = img.width as usize * img.bytes_per_sample();
            bytes
                .chunks(row)
                .flat_map(|r| {
                    r.chunks(t).map(|g| {
                        let mut c: Vec<u16> = g.iter().map(|&b| u16::from(b)).collect();
                        c.resize(t, 0);
                        c
                    })
                })
                .collect()
        }
    };
    (1..=n)
        .map(|x| polys.iter().map(|c| eval(c, x)).collect())
        .collect()
}

#[test]
fn shadows_match_their_definition() {
    let img = read_gray(&repo_file("datasets/paper256/ct_small.png")).unwrap();
    let small = read_gray(&repo_file("datasets/dicom/MR_small.dcm")).unwrap();
    let backend = CpuBackend::detect();
    let key = ObjectKey::from_bytes([42; 32]);
    for source in [&img, &small] {
        for (field, scheme, _) in GOLDEN {
            let params = ShadowParams::new(4, 8, field, scheme).unwrap();
            let shadows = make_shadows(&backend, source, &params, &key).unwrap();
            let expected = shadows_by_definition(source, field, scheme, &key);
            for (i, (s, e)) in shadows.iter().zip(&expected).enumerate() {
                // GF(2^8) Shamir shadows of 16-bit images pair bytes back
                // into little-endian samples; compare as bytes there.
                let got: Vec<u16> = if field == FieldKind::Gf256 && scheme == Scheme::Shamir {
                    s.to_bytes().into_iter().map(u16::from).collect()
                } else {
                    s.samples.clone()
                };
                assert!(got == *e, "{field} {scheme} shadow {}", i + 1);
            }
        }
    }
}

fn all_shadow_bytes(shadows: &[GrayImage]) -> Vec<u8> {
    shadows.iter().flat_map(GrayImage::to_bytes).collect()
}

#[test]
fn golden_shadows_for_a_fixed_key() {
    let img = read_gray(&repo_file("datasets/paper256/ct_small.png")).unwrap();
    let backend = CpuBackend::detect();
    let key = ObjectKey::from_bytes([42; 32]);
    let mut got = Vec::new();
    for (field, scheme, expected) in GOLDEN {
        let params = ShadowParams::new(4, 8, field, scheme).unwrap();
        let shadows = make_shadows(&backend, &img, &params, &key).unwrap();
        let hash = sha256_hex(&all_shadow_bytes(&shadows));
        got.push((format!("{field} {scheme}"), hash, expected));
    }
    for (what, hash, expected) in &got {
        assert_eq!(hash, expected, "{what}; all: {got:#?}");
    }
    // Thien-Lin has no key, so the binary must write exactly these shadows.
    let tmp = tempfile::tempdir().unwrap();
    let png = repo_file("datasets/paper256/ct_small.png");
    for (fname, field) in FIELDS {
        let o = shadows_cmd(tmp.path(), fname, "thien-lin", &[&png]);
        assert!(o.status.success(), "{}", stderr(&o));
        let dir = tmp.path().join("ct_small");
        let m = ShadowManifest::read(&dir).unwrap();
        let shadows: Vec<GrayImage> = m
            .shadows
            .iter()
            .map(|e| read_gray(&dir.join(&e.file)).unwrap())
            .collect();
        let expected = GOLDEN
            .iter()
            .find(|g| g.0 == field && g.1 == Scheme::ThienLin)
            .unwrap()
            .2;
        assert_eq!(sha256_hex(&all_shadow_bytes(&shadows)), expected, "{fname}");
    }
}

/// The 99.99th percentile of chi-square with 255 and 256 degrees of freedom.
const CHI2_P9999: [(u32, f64); 2] = [(256, 358.0), (257, 359.3)];

#[test]
fn shamir_shadows_of_a_constant_image_are_uniform_thien_lin_are_not() {
    let img = GrayImage::new(256, 256, 8, vec![77; 256 * 256]);
    let backend = CpuBackend::detect();
    for (_, field) in FIELDS {
        for seed in 0..3u8 {
            let params = ShadowParams::new(4, 8, field, Scheme::Shamir).unwrap();
            let key = ObjectKey::from_bytes([seed; 32]);
            let shadows = make_shadows(&backend, &img, &params, &key).unwrap();
            let levels = params.shadow_levels(8);
            let limit = CHI2_P9999.iter().find(|c| c.0 == levels).unwrap().1;
            for (i, s) in shadows.iter().enumerate() {
                let st = PlaneStats::compute("s", s, levels).unwrap();
                assert!(
                    st.chi_square < limit,
                    "{field} key {seed} shadow {}: chi-square {:.1} (p {:.2e})",
                    i + 1,
                    st.chi_square,
                    st.p_value
                );
            }
        }
    }
    // Thien-Lin, through the binary and `umbra stats`: every shadow of a
    // constant image is constant, so its chi-square p-value is 0.
    let tmp = tempfile::tempdir().unwrap();
    let flat = tmp.path().join("flat.png");
    write_png(&flat, &img).unwrap();
    for (fname, _) in FIELDS {
        for (sname, scheme) in SCHEMES {
            let out = tmp.path().join(format!("{fname}-{sname}"));
            let o = shadows_cmd(&out, fname, sname, &[&flat]);
            assert!(o.status.success(), "{}", stderr(&o));
            let st = tmp.path().join(format!("stats-{fname}-{sname}"));
            let o = run_line("stats -o {} {}", &[&st, &out.join("flat")]);
            assert!(o.status.success(), "{}", stderr(&o));
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(st.join("stats.json")).unwrap())
                    .unwrap();
            let planes = json[0]["planes"].as_array().unwrap();
            assert_eq!(planes.len(), 9, "original and 8 shadows");
            for p in &planes[1..] {
                let pv = p["p_value"].as_f64().unwrap();
                let entropy = p["entropy_bits"].as_f64().unwrap();
                match scheme {
                    // Fresh OS keys here: a bound this lax never fails by chance.
                    Scheme::Shamir => assert!(pv > 1e-9 && entropy > 7.99, "{fname} {p}"),
                    Scheme::ThienLin => assert!(pv == 0.0 && entropy == 0.0, "{fname} {p}"),
                }
            }
        }
    }
}

#[test]
fn stats_on_images_and_shadow_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let png = repo_file("datasets/paper256/mr_small.png");
    let o = shadows_cmd(&tmp.path().join("s"), "p257", "shamir", &[&png]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = tmp.path().join("st");
    let o = run_line(
        "stats -o {} {} {}",
        &[&out, &tmp.path().join("s/mr_small"), &png],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("stats.md")).unwrap();
    assert!(md.contains("NPCR") && md.contains("p-value"), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    assert_eq!(json[0]["planes"][1]["levels"], 257);
    assert_eq!(json[0]["pairs"].as_array().unwrap().len(), 28);
    for set in json.as_array().unwrap() {
        let fig = out.join(set["histogram_figure"].as_str().unwrap());
        image::open(&fig).expect("the histogram figure decodes");
    }
    // A directory that is not a shadow set.
    let o = run_line("stats -o {} {}", &[&out, &tmp.path()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("shadows.json"), "{}", stderr(&o));
}

#[test]
fn reproduce_quick_writes_the_report_and_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("r");
    let o = run_line(
        "reproduce --quick -o {} --data {}",
        &[&out, &repo_file("datasets")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("REPORT.md")).unwrap();
    for phrase in [
        "2 clouds together hold 4 shadows",
        "Thien-Lin leaks",
        "p257, Shamir (the paper's scheme)",
        "gf256, Thien-Lin",
        "split ms",
    ] {
        assert!(md.contains(phrase), "REPORT.md lacks {phrase:?}");
    }
    // Every inline figure exists and decodes.
    let mut figures = 0;
    for part in md.split("](").skip(1) {
        let target = &part[..part.find(')').unwrap()];
        if target.ends_with(".png") {
            image::open(out.join(target)).unwrap_or_else(|e| panic!("{target}: {e}"));
            figures += 1;
        }
    }
    assert_eq!(
        figures,
        6 * 4 * 2 + 2,
        "a montage and a histogram figure per run, and the all-zero file's histograms \
         under each storage scheme"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let runs = json["paper256"].as_array().unwrap();
    assert_eq!(runs.len(), 24);
    assert!(runs.iter().all(|r| r["cloud_sets_checked"] == 6));
    check_storage_schemes(&out, &json, &md);
}

/// The storage section: both schemes on the 6 files and an all-zero file,
/// from real share files combined back byte for byte (a mismatch fails the
/// command), with the bytes each stores and the statistics of each share.
fn check_storage_schemes(out: &std::path::Path, json: &serde_json::Value, md: &str) {
    assert!(md.contains("## Storage: Shamir and the compact scheme"));
    let runs = json["schemes"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        2 * (6 + 1),
        "two schemes on 6 files and the zeros"
    );
    for r in runs {
        let (source, share) = (
            r["source_bytes"].as_u64().unwrap(),
            r["share_bytes"].as_u64().unwrap(),
        );
        let factor = r["storage_factor"].as_f64().unwrap();
        assert_eq!(r["total_bytes"].as_u64().unwrap(), 8 * share);
        assert_eq!(r["bytes_per_cloud"].as_u64().unwrap(), 2 * share);
        assert_eq!(r["combined_from"].as_array().unwrap().len(), 4);
        // The share files are on disk, 0600, as long as recorded.
        let dir = out.join(r["dir"].as_str().unwrap());
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "umbra"))
            .collect();
        assert_eq!(files.len(), 8, "{}", dir.display());
        for f in &files {
            let meta = std::fs::metadata(f).unwrap();
            assert_eq!(meta.len(), share);
            assert_eq!(
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
                0o600
            );
        }
        match r["scheme"].as_str().unwrap() {
            "shamir" => assert!(share > source && factor > 8.0 && factor < 8.2, "{r}"),
            "compact" => assert!(share > source / 4 && factor > 2.0 && factor < 2.1, "{r}"),
            other => panic!("scheme {other}"),
        }
        // Shares of the all-zero file look like noise under both schemes:
        // near 8 bits of entropy, no chi-square rejection, no correlation
        // (a scheme that leaked the zeros, or shares left unencrypted,
        // would give entropy near 0 here).
        if r["file"] == "all-zero file" {
            let planes = r["stats"]["planes"].as_array().unwrap();
            assert_eq!(planes.len(), 9, "the source, then 8 shares");
            assert!(planes[0]["entropy_bits"].as_f64().unwrap() < 0.01);
            for p in &planes[1..] {
                assert!(p["entropy_bits"].as_f64().unwrap() > 7.99, "{p}");
                assert!(p["p_value"].as_f64().unwrap() > 1e-6, "{p}");
                for c in ["corr_horizontal", "corr_vertical", "corr_diagonal"] {
                    assert!(p[c].as_f64().unwrap().abs() < 0.02, "{c}: {p}");
                }
            }
        }
    }
    assert!(
        !out.join("schemes/all-zero.bin").exists(),
        "the input is removed"
    );
    assert!(
        std::fs::read_dir(out.join("schemes/compact/all-zero-file"))
            .unwrap()
            .all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("recovered")),
        "no rebuilt copy is kept"
    );
}

#[test]
fn bad_input_fails_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let rgb = tmp.path().join("colour.png");
    image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]))
        .save(&rgb)
        .unwrap();
    let gray_alpha = tmp.path().join("alpha.png");
    image::GrayAlphaImage::from_pixel(4, 4, image::LumaA([1, 255]))
        .save(&gray_alpha)
        .unwrap();
    let pbm = tmp.path().join("bits.pbm");
    std::fs::write(&pbm, "P1\n2 2\n0 1\n1 0\n").unwrap();
    let text = tmp.path().join("notes.png");
    std::fs::write(&text, "not an image at all").unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (repo_file("datasets/dicom/rtplan.dcm"), "without Pixel Data"),
        (repo_file("datasets/dicom/US1_UNCR.dcm"), "colour"),
        (
            repo_file("datasets/malformed/no_meta.dcm"),
            "not a readable DICOM",
        ),
        (
            repo_file("datasets/malformed/MR_truncated.dcm"),
            "not a readable DICOM",
        ),
        (repo_file("Cargo.toml"), "not a PNG, TIFF"),
        (rgb, "colour"),
        (gray_alpha, "colour"),
        (pbm, "only 8- and 16-bit"),
        (text, "cannot read it as an image"),
        (tmp.path().join("missing.png"), "No such file"),
    ];
    for (path, why) in &cases {
        let o = shadows_cmd(&tmp.path().join("out"), "gf256", "shamir", &[path]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{} was accepted", path.display());
        assert!(
            err.contains(&path.display().to_string()) && err.contains(why),
            "{}: {err}",
            path.display()
        );
    }
    // A bad file among good ones: the good one is done, the exit is non-zero.
    let good = repo_file("datasets/paper256/mr_small.png");
    let out = tmp.path().join("mixed");
    let o = shadows_cmd(&out, "p257", "shamir", &[&cases[0].0, &good]);
    assert!(!o.status.success());
    assert!(out.join("mr_small/recovered.png").exists());
    // Parameters.
    let o = run_line("shadows -t 9 -n 8 -o {} {}", &[&out, &good]);
    assert!(
        !o.status.success() && stderr(&o).contains("exceeds"),
        "{}",
        stderr(&o)
    );
    let o = run_line(
        "stats --levels 256 -o {} {}",
        &[&out, &out.join("mr_small/shadow-001.png")],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("--levels"),
        "{}",
        stderr(&o)
    );
}

/// Outside the checkout, the corpus is not found: the error says where it
/// looked and that --data names it.
#[test]
fn reproduce_without_the_corpus_names_the_data_option() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = common::umbra();
    c.current_dir(tmp.path())
        .args(["reproduce", "--quick", "-o", "r"]);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("datasets/paper256") && err.contains("--data DIR"),
        "{err}"
    );
    assert!(
        !tmp.path().join("r").exists(),
        "an output directory was left"
    );
}
