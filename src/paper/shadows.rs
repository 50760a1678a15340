//! Shadow images: the (t, n) sharing of one grayscale image into n images,
//! any t of which give the image back exactly.
//!
//! Two fields and two schemes:
//!
//! | field, scheme | shadow pixels | shadow depth | secrecy of t-1 shadows |
//! |---|---|---|---|
//! | gf256, shamir | W x H (as the original) | the original's | perfect |
//! | p257, shamir | (W*d) x H | 16-bit (values 0..=256) | perfect |
//! | gf256, thien-lin | ceil(W*d/t) x H | 8-bit | none: they leak |
//! | p257, thien-lin | ceil(W*d/t) x H | 16-bit (values 0..=256) | none: they leak |
//!
//! d is the original's bytes per sample (1 or 2). Both schemes share the
//! image's bytes: 8-bit pixels as they are, 16-bit samples as two bytes,
//! little-endian. In GF(2^8) that is the core engine's split (Shamir) or its
//! matrix kernel (Thien-Lin); in Z_257 each byte is an element 0..=255 and
//! the arithmetic is [`p257`]'s. A 16-bit image in p257 thus
//! gives shadows twice as wide, one 16-bit sample per shared byte: lossless,
//! at four times the original's storage.
//!
//! Thien-Lin takes t consecutive bytes of a row as the t coefficients of one
//! polynomial (no random coefficients), so shadows have 1/t of the pixels.
//! Each row is cut into groups of t on its own, the last group of a row
//! padded with zeros, so a shadow keeps the original's height and row
//! structure; the original's width is needed to drop the padding on
//! recovery (it is in `shadows.json`). The classic scheme works mod 251 and
//! clips pixels above 250; with p = 257 or GF(2^8) every byte fits, so both
//! are lossless. Any t-1 Thien-Lin shadows leak: a constant region gives
//! constant shadow pixels, and edges survive. The statistics show it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::error::{AtPath, PaperError, RecoverError, Result};
use super::image_io::{self, GrayImage};
use super::p257;
use crate::engine::Backend;
use crate::field;
use crate::keystream::ObjectKey;
use crate::sharing::{Matrix, ParamError, SplitPlan, Threshold, combine_matrix};

/// The field the shadows are computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldKind {
    /// GF(2^8) over 0x11D, the core engine's field.
    Gf256,
    /// Z_257, the paper's field.
    P257,
}

/// How an image becomes polynomials: Shamir (secret) or Thien-Lin (compact, leaks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// Random coefficients: t-1 shadows reveal nothing.
    Shamir,
    /// t pixels as the t coefficients: shadows 1/t the size, and leaky.
    ThienLin,
}

impl std::fmt::Display for FieldKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FieldKind::Gf256 => "gf256",
            FieldKind::P257 => "p257",
        })
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scheme::Shamir => "shamir",
            Scheme::ThienLin => "thien-lin",
        })
    }
}

/// The warning Thien-Lin always comes with.
pub const THIEN_LIN_WARNING: &str = "thien-lin shadows are not secret: fewer than t of them \
    leak information about the image (constant areas give constant shadow pixels, edges \
    survive); use --scheme shamir to keep t-1 shadows free of information";

/// What a set of shadows is: field, scheme, (t, n) and coordinates.
#[derive(Debug, Clone)]
pub struct ShadowParams {
    pub threshold: Threshold,
    pub xs: Vec<u8>,
    pub field: FieldKind,
    pub scheme: Scheme,
}

impl ShadowParams {
    /// Checked parameters: 2 <= t <= n <= 255, at the points 1..=n.
    pub fn new(t: usize, n: usize, field: FieldKind, scheme: Scheme) -> Result<Self> {
        let threshold = Threshold::new(t, n)?;
        Ok(Self {
            threshold,
            xs: crate::sharing::default_xs(n),
            field,
            scheme,
        })
    }

    /// Shadows needed to recover.
    pub fn t(&self) -> usize {
        self.threshold.t()
    }

    /// Shadows made.
    pub fn n(&self) -> usize {
        self.threshold.n()
    }

    /// Number of distinct shadow sample values: 257 in p257, 256 for
    /// Thien-Lin in GF(2^8), and 2^bits for GF(2^8) Shamir.
    pub fn shadow_levels(&self, original_bits: u8) -> u32 {
        match (self.field, self.scheme) {
            (FieldKind::P257, _) => 257,
            (FieldKind::Gf256, Scheme::ThienLin) => 256,
            (FieldKind::Gf256, Scheme::Shamir) => 1 << original_bits,
        }
    }

    /// Width, height and bits of each shadow of a `width` x `height` image
    /// of `bits` bits (see the table in the module docs).
    pub fn shadow_shape(&self, width: u32, height: u32, bits: u8) -> (u32, u32, u8) {
        let d = u32::from(bits / 8);
        let t = self.t() as u32;
        match (self.field, self.scheme) {
            (FieldKind::Gf256, Scheme::Shamir) => (width, height, bits),
            (FieldKind::P257, Scheme::Shamir) => (width * d, height, 16),
            (FieldKind::Gf256, Scheme::ThienLin) => ((width * d).div_ceil(t), height, 8),
            (FieldKind::P257, Scheme::ThienLin) => ((width * d).div_ceil(t), height, 16),
        }
    }
}

/// The n shadows of `img`, in the order of `params.xs`. `key` feeds the
/// Shamir coefficients (unused by Thien-Lin, which has none).
pub fn make_shadows(
    backend: &dyn Backend,
    img: &GrayImage,
    params: &ShadowParams,
    key: &ObjectKey,
) -> Result<Vec<GrayImage>, crate::engine::EngineError> {
    let (sw, sh, sbits) = params.shadow_shape(img.width, img.height, img.bits);
    let bytes = img.to_bytes();
    let n = params.n();
    let t = params.t();
    let row_bytes = img.width as usize * img.bytes_per_sample();
    let shadows = match (params.field, params.scheme) {
        (FieldKind::Gf256, Scheme::Shamir) => {
            let plan = SplitPlan::new(params.threshold, params.xs.clone())
                .expect("coordinates checked by ShadowParams");
            let mut out = vec![vec![0u8; bytes.len()]; n];
            let mut refs: Vec<&mut [u8]> = out.iter_mut().map(Vec::as_mut_slice).collect();
            backend.split(&plan, key, 0, &bytes, &mut refs)?;
            out.iter()
                .map(|s| GrayImage::from_bytes(sw, sh, sbits, s))
                .collect()
        }
        (FieldKind::Gf256, Scheme::ThienLin) => {
            let streams = thien_lin_coefficients(&bytes, row_bytes, t);
            let inputs: Vec<&[u8]> = streams.iter().map(Vec::as_slice).collect();
            let len = streams[0].len();
            let mut out = vec![vec![0u8; len]; n];
            let mut refs: Vec<&mut [u8]> = out.iter_mut().map(Vec::as_mut_slice).collect();
            backend.apply(&Matrix::vandermonde(&params.xs, t), &inputs, &mut refs)?;
            out.iter()
                .map(|s| GrayImage::from_bytes(sw, sh, sbits, s))
                .collect()
        }
        (FieldKind::P257, Scheme::Shamir) => {
            let mut streams: Vec<p257::CoefficientStream> = (1..t)
                .map(|j| p257::CoefficientStream::new(key, j as u32))
                .collect();
            let mut out = vec![Vec::with_capacity(bytes.len()); n];
            let mut coeffs = zeroize::Zeroizing::new(vec![0u16; t]);
            for &b in &bytes {
                coeffs[0] = u16::from(b);
                for (c, s) in coeffs[1..].iter_mut().zip(streams.iter_mut()) {
                    *c = s.next_coefficient();
                }
                for (o, &x) in out.iter_mut().zip(&params.xs) {
                    o.push(p257::eval(&coeffs, u16::from(x)));
                }
            }
            out.into_iter()
                .map(|s| GrayImage::new(sw, sh, 16, s))
                .collect()
        }
        (FieldKind::P257, Scheme::ThienLin) => {
            let streams = thien_lin_coefficients(&bytes, row_bytes, t);
            let len = streams[0].len();
            let mut out = vec![Vec::with_capacity(len); n];
            let mut coeffs = vec![0u16; t];
            for k in 0..len {
                for (c, s) in coeffs.iter_mut().zip(&streams) {
                    *c = u16::from(s[k]);
                }
                for (o, &x) in out.iter_mut().zip(&params.xs) {
                    o.push(p257::eval(&coeffs, u16::from(x)));
                }
            }
            out.into_iter()
                .map(|s| GrayImage::new(sw, sh, 16, s))
                .collect()
        }
    };
    Ok(shadows)
}

/// Thien-Lin's t coefficient streams: stream j holds byte j of every group
/// of t consecutive bytes, each row cut into groups on its own, the last
/// group of a row padded with zeros.
fn thien_lin_coefficients(bytes: &[u8], row_bytes: usize, t: usize) -> Vec<Vec<u8>> {
    let groups_per_row = row_bytes.div_ceil(t);
    let rows = bytes.len().checked_div(row_bytes).unwrap_or(0);
    let mut streams = vec![vec![0u8; rows * groups_per_row]; t];
    for (r, row) in bytes.chunks_exact(row_bytes.max(1)).enumerate() {
        for (i, &b) in row.iter().enumerate() {
            streams[i % t][r * groups_per_row + i / t] = b;
        }
    }
    streams
}

/// Inverse of [`thien_lin_coefficients`].
fn thien_lin_interleave(streams: &[Vec<u8>], row_bytes: usize, rows: usize) -> Vec<u8> {
    let t = streams.len();
    let groups_per_row = row_bytes.div_ceil(t);
    let mut bytes = vec![0u8; row_bytes * rows];
    for (r, row) in bytes.chunks_exact_mut(row_bytes.max(1)).enumerate() {
        for (i, b) in row.iter_mut().enumerate() {
            *b = streams[i % t][r * groups_per_row + i / t];
        }
    }
    bytes
}

/// The inverse of the t x t GF(2^8) Vandermonde matrix at `xs`.
fn gf_vandermonde_inverse(xs: &[u8]) -> Result<Matrix, ParamError> {
    crate::sharing::check_xs(xs)?;
    let t = xs.len();
    let w = 2 * t;
    let v = Matrix::vandermonde(xs, t);
    let mut m = vec![0u8; t * w];
    for r in 0..t {
        m[r * w..r * w + t].copy_from_slice(v.row(r));
        m[r * w + t + r] = 1;
    }
    // Gauss-Jordan; distinct xs make V invertible. Public values only.
    for col in 0..t {
        let pivot = (col..t)
            .find(|&r| m[r * w + col] != 0)
            .expect("distinct xs give an invertible Vandermonde matrix");
        if pivot != col {
            for c in 0..w {
                m.swap(pivot * w + c, col * w + c);
            }
        }
        let inv_p = field::inv(m[col * w + col]).expect("non-zero pivot");
        for c in 0..w {
            m[col * w + c] = field::mul(m[col * w + c], inv_p);
        }
        for r in 0..t {
            let f = m[r * w + col];
            if r != col && f != 0 {
                for c in 0..w {
                    m[r * w + c] ^= field::mul(f, m[col * w + c]);
                }
            }
        }
    }
    let entries = (0..t)
        .flat_map(|r| m[r * w + t..r * w + w].to_vec())
        .collect();
    Ok(Matrix::new(t, t, entries))
}

/// The image of `width` x `height` x `bits` rebuilt from exactly t shadows
/// given as (x, shadow). Errors say what does not fit.
pub fn recover(
    backend: &dyn Backend,
    params: &ShadowParams,
    (width, height, bits): (u32, u32, u8),
    shadows: &[(u8, &GrayImage)],
) -> std::result::Result<GrayImage, RecoverError> {
    let t = params.t();
    if shadows.len() != t {
        return Err(RecoverError::Count {
            given: shadows.len(),
            t,
        });
    }
    let xs: Vec<u8> = shadows.iter().map(|(x, _)| *x).collect();
    crate::sharing::check_xs(&xs)?;
    let expected = params.shadow_shape(width, height, bits);
    for (x, s) in shadows {
        let found = (s.width, s.height, s.bits);
        if found != expected {
            return Err(RecoverError::Shape {
                x: *x,
                found,
                expected,
                what: format!(
                    "{} {} shadows of a {width} x {height} {bits}-bit image",
                    params.field, params.scheme
                ),
            });
        }
    }
    let d = usize::from(bits / 8);
    let row_bytes = width as usize * d;
    let bytes: Vec<u8> = match (params.field, params.scheme) {
        (FieldKind::Gf256, Scheme::Shamir) => {
            let share_bytes: Vec<Vec<u8>> = shadows.iter().map(|(_, s)| s.to_bytes()).collect();
            let inputs: Vec<&[u8]> = share_bytes.iter().map(Vec::as_slice).collect();
            let mut out = vec![0u8; share_bytes[0].len()];
            backend.apply(&combine_matrix(&xs)?, &inputs, &mut [&mut out])?;
            out
        }
        (FieldKind::Gf256, Scheme::ThienLin) => {
            let share_bytes: Vec<Vec<u8>> = shadows.iter().map(|(_, s)| s.to_bytes()).collect();
            let inputs: Vec<&[u8]> = share_bytes.iter().map(Vec::as_slice).collect();
            let len = share_bytes[0].len();
            let mut streams = vec![vec![0u8; len]; t];
            let mut refs: Vec<&mut [u8]> = streams.iter_mut().map(Vec::as_mut_slice).collect();
            backend.apply(&gf_vandermonde_inverse(&xs)?, &inputs, &mut refs)?;
            thien_lin_interleave(&streams, row_bytes, height as usize)
        }
        (FieldKind::P257, scheme) => {
            let xs16: Vec<u16> = xs.iter().map(|&x| u16::from(x)).collect();
            for (x, s) in shadows {
                if let Some(&value) = s.samples.iter().find(|&&v| v > 256) {
                    return Err(RecoverError::OutsideField { x: *x, value });
                }
            }
            let elements: Vec<u16> = match scheme {
                Scheme::Shamir => {
                    let w = p257::lagrange_at_zero(&xs16);
                    (0..shadows[0].1.samples.len())
                        .map(|k| {
                            shadows.iter().zip(&w).fold(0u16, |acc, ((_, s), &l)| {
                                p257::add(acc, p257::mul(l, s.samples[k]))
                            })
                        })
                        .collect()
                }
                Scheme::ThienLin => {
                    let inv = p257::vandermonde_inverse(&xs16)
                        .expect("xs checked distinct and non-zero, and below 257");
                    let len = shadows[0].1.samples.len();
                    let mut streams = vec![vec![0u8; len]; t];
                    for (r, stream) in streams.iter_mut().enumerate() {
                        for (k, out) in stream.iter_mut().enumerate() {
                            let v = (0..t).fold(0u16, |acc, c| {
                                p257::add(acc, p257::mul(inv[r * t + c], shadows[c].1.samples[k]))
                            });
                            *out = u8::try_from(v).map_err(|_| RecoverError::NotOneImage {
                                position: k * t + r,
                                value: v,
                            })?;
                        }
                    }
                    return Ok(GrayImage::from_bytes(
                        width,
                        height,
                        bits,
                        &thien_lin_interleave(&streams, row_bytes, height as usize),
                    ));
                }
            };
            if let Some(k) = elements.iter().position(|&v| v > 255) {
                return Err(RecoverError::NotOneImage {
                    position: k,
                    value: elements[k],
                });
            }
            elements.into_iter().map(|v| v as u8).collect()
        }
    };
    Ok(GrayImage::from_bytes(width, height, bits, &bytes))
}

/// Where the shadows of one image went, as written to `shadows.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShadowManifest {
    pub source: PathBuf,
    pub width: u32,
    pub height: u32,
    pub bits: u8,
    pub monochrome1: bool,
    pub signed: bool,
    pub field: FieldKind,
    pub scheme: Scheme,
    pub t: usize,
    pub n: usize,
    /// Distinct sample values of a shadow (256, 257 or 65536).
    pub shadow_levels: u32,
    pub original: String,
    pub shadows: Vec<ShadowEntry>,
    pub recovered: String,
    pub recovered_from: Vec<u8>,
}

/// One shadow of a manifest: its x and its file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShadowEntry {
    pub x: u8,
    pub file: String,
    pub width: u32,
    pub height: u32,
    pub bits: u8,
    /// BLAKE3 of the shadow's samples as little-endian bytes.
    pub blake3: String,
}

impl ShadowManifest {
    /// The manifest's file name in a shadow directory.
    pub const FILE: &'static str = "shadows.json";

    /// The parameters the shadows were made with.
    pub fn params(&self) -> Result<ShadowParams> {
        let mut p = ShadowParams::new(self.t, self.n, self.field, self.scheme)?;
        p.xs = self.shadows.iter().map(|s| s.x).collect();
        Ok(p)
    }

    /// Reads the manifest of the shadow directory `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(Self::FILE);
        let text = std::fs::read_to_string(&path).at(&path)?;
        serde_json::from_str(&text).map_err(|e| PaperError::BadShadow {
            path,
            reason: format!("not a shadows manifest: {e}"),
        })
    }
}

/// How the per-image key is chosen. The CLI always uses `Os`; tests and
/// test vectors inject a key through the library.
pub enum KeySource {
    Os,
    Fixed([u8; 32]),
}

/// Times of each step for one image, for the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepTimes {
    #[serde(serialize_with = "secs")]
    pub read: Duration,
    #[serde(serialize_with = "secs")]
    pub split: Duration,
    #[serde(serialize_with = "secs")]
    pub write: Duration,
    /// Decoding t shadow PNGs back from disk, recovering, comparing.
    #[serde(serialize_with = "secs")]
    pub recover: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The result of sharing one image.
pub struct ShadowOutput {
    pub dir: PathBuf,
    pub manifest: ShadowManifest,
    pub original: GrayImage,
    pub shadows: Vec<GrayImage>,
    pub times: StepTimes,
}

/// Directory name for an input: its file stem.
pub fn stem_of(input: &Path) -> String {
    input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "image".into())
}

/// `umbra shadows` for one image: reads it, writes `original.png`, the n
/// shadows `shadow-XXX.png` and `shadows.json` into `dir`, then decodes the
/// last t shadow files again, recovers the image from them, checks it pixel
/// for pixel against the original and writes `recovered.png`.
pub fn shadow_image(
    backend: &dyn Backend,
    input: &Path,
    dir: &Path,
    params: &ShadowParams,
    key: &KeySource,
) -> Result<ShadowOutput> {
    let mut times = StepTimes::default();
    let clock = Instant::now();
    let img = image_io::read_gray(input)?;
    times.read = clock.elapsed();

    let key = match key {
        KeySource::Os => ObjectKey::generate().map_err(|e| PaperError::Random(e.to_string()))?,
        KeySource::Fixed(bytes) => ObjectKey::from_bytes(*bytes),
    };
    let clock = Instant::now();
    let shadows =
        make_shadows(backend, &img, params, &key).map_err(|error| PaperError::Engine {
            path: input.to_path_buf(),
            error,
        })?;
    drop(key);
    times.split = clock.elapsed();

    let clock = Instant::now();
    std::fs::create_dir_all(dir).at(dir)?;
    image_io::write_png(&dir.join("original.png"), &img)?;
    let mut entries = Vec::with_capacity(shadows.len());
    for (s, &x) in shadows.iter().zip(&params.xs) {
        let file = format!("shadow-{x:03}.png");
        image_io::write_png(&dir.join(&file), s)?;
        entries.push(ShadowEntry {
            x,
            file,
            width: s.width,
            height: s.height,
            bits: s.bits,
            blake3: blake3::hash(&s.to_bytes()).to_hex().to_string(),
        });
    }
    times.write = clock.elapsed();

    // Recover from the last t shadows as written, read back from disk.
    let clock = Instant::now();
    let t = params.t();
    let pick = &entries[entries.len() - t..];
    let mut read_back = Vec::with_capacity(t);
    for e in pick {
        read_back.push((e.x, image_io::read_gray(&dir.join(&e.file))?));
    }
    let refs: Vec<(u8, &GrayImage)> = read_back.iter().map(|(x, s)| (*x, s)).collect();
    let recovered =
        recover(backend, params, (img.width, img.height, img.bits), &refs).map_err(|error| {
            PaperError::Recover {
                path: dir.join(&pick[0].file),
                error,
            }
        })?;
    let xs: Vec<u8> = pick.iter().map(|e| e.x).collect();
    check_identical(input, &img, &recovered, &xs)?;
    image_io::write_png(&dir.join("recovered.png"), &recovered)?;
    times.recover = clock.elapsed();

    let manifest = ShadowManifest {
        source: input.to_path_buf(),
        width: img.width,
        height: img.height,
        bits: img.bits,
        monochrome1: img.monochrome1,
        signed: img.signed,
        field: params.field,
        scheme: params.scheme,
        t,
        n: params.n(),
        shadow_levels: params.shadow_levels(img.bits),
        original: "original.png".into(),
        shadows: entries,
        recovered: "recovered.png".into(),
        recovered_from: xs,
    };
    let path = dir.join(ShadowManifest::FILE);
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    std::fs::write(&path, json + "\n").at(&path)?;
    Ok(ShadowOutput {
        dir: dir.to_path_buf(),
        manifest,
        original: img,
        shadows,
        times,
    })
}

/// Pixel-for-pixel equality, naming the first difference.
pub fn check_identical(
    input: &Path,
    original: &GrayImage,
    recovered: &GrayImage,
    xs: &[u8],
) -> Result<()> {
    let first = original
        .samples
        .iter()
        .zip(&recovered.samples)
        .position(|(a, b)| a != b);
    if let Some(k) = first {
        let w = original.width.max(1) as usize;
        return Err(PaperError::RecoveryMismatch {
            path: input.to_path_buf(),
            xs: xs.to_vec(),
            x: (k % w) as u32,
            y: (k / w) as u32,
            expected: original.samples[k],
            found: recovered.samples[k],
        });
    }
    if original.samples.len() != recovered.samples.len() {
        return Err(PaperError::BadShadow {
            path: input.to_path_buf(),
            reason: "the recovered image has a different size".into(),
        });
    }
    Ok(())
}

/// `umbra shadows`: each input into its own directory `out/STEM` (STEM-2,
/// ... when stems repeat). `done` hears of each input as it finishes, with
/// its output or its error; a bad input does not stop the others.
pub fn shadow_images(
    backend: &dyn Backend,
    inputs: &[PathBuf],
    out: &Path,
    params: &ShadowParams,
    key: &KeySource,
    done: &mut dyn FnMut(&Path, Result<ShadowOutput>),
) {
    let mut used = std::collections::HashSet::new();
    for input in inputs {
        let base = stem_of(input);
        let mut name = base.clone();
        let mut k = 2;
        while !used.insert(name.clone()) {
            name = format!("{base}-{k}");
            k += 1;
        }
        let result = shadow_image(backend, input, &out.join(&name), params, key);
        done(input, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::CpuBackend;

    fn test_image(width: u32, height: u32, bits: u8) -> GrayImage {
        let mask = if bits == 8 { 0xFF } else { 0xFFFF };
        let samples = (0..width * height)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u16 & mask)
            .collect();
        GrayImage::new(width, height, bits, samples)
    }

    #[test]
    fn every_field_and_scheme_round_trips_from_any_t() {
        let backend = CpuBackend::detect();
        let key = ObjectKey::from_bytes([1; 32]);
        for field in [FieldKind::Gf256, FieldKind::P257] {
            for scheme in [Scheme::Shamir, Scheme::ThienLin] {
                for (w, h, bits) in [(13, 5, 8), (7, 3, 16), (256, 4, 8)] {
                    let img = test_image(w, h, bits);
                    let params = ShadowParams::new(3, 5, field, scheme).unwrap();
                    let shadows = make_shadows(&backend, &img, &params, &key).unwrap();
                    assert_eq!(
                        (shadows[0].width, shadows[0].height, shadows[0].bits),
                        params.shadow_shape(w, h, bits)
                    );
                    for pick in [[0usize, 1, 2], [4, 2, 0], [1, 3, 4]] {
                        let sel: Vec<(u8, &GrayImage)> =
                            pick.iter().map(|&i| (params.xs[i], &shadows[i])).collect();
                        let got = recover(&backend, &params, (w, h, bits), &sel).unwrap();
                        assert_eq!(got, img, "{field} {scheme} {w}x{h}x{bits} {pick:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn p257_notices_shadows_of_two_images() {
        // A mix of shadows of two images recovers values above 255 somewhere
        // (each is uniform over 0..=256); GF(2^8) cannot notice, every byte
        // being valid: shadows carry no integrity, unlike `umbra split`.
        let backend = CpuBackend::detect();
        let key = ObjectKey::from_bytes([3; 32]);
        for scheme in [Scheme::Shamir, Scheme::ThienLin] {
            let params = ShadowParams::new(2, 3, FieldKind::P257, scheme).unwrap();
            let a = make_shadows(&backend, &test_image(64, 64, 8), &params, &key).unwrap();
            let mut other = test_image(64, 64, 8);
            other.samples.reverse();
            let b = make_shadows(&backend, &other, &params, &key).unwrap();
            let err = recover(&backend, &params, (64, 64, 8), &[(1, &a[0]), (2, &b[1])]);
            assert!(
                matches!(err, Err(RecoverError::NotOneImage { .. })),
                "{scheme}: {err:?}"
            );
        }
    }

    #[test]
    fn recovery_refuses_wrong_shapes_and_counts() {
        let backend = CpuBackend::detect();
        let key = ObjectKey::from_bytes([2; 32]);
        let img = test_image(8, 8, 8);
        let params = ShadowParams::new(2, 3, FieldKind::Gf256, Scheme::ThienLin).unwrap();
        let s = make_shadows(&backend, &img, &params, &key).unwrap();
        assert!(recover(&backend, &params, (8, 8, 8), &[(1, &s[0])]).is_err());
        assert!(recover(&backend, &params, (9, 8, 8), &[(1, &s[0]), (2, &s[1])]).is_err());
        assert!(recover(&backend, &params, (8, 8, 8), &[(1, &s[0]), (1, &s[1])]).is_err());
    }
}
