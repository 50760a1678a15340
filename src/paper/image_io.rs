//! Grayscale images in and out: PNG, TIFF and PGM/PNM through the `image`
//! crate, DICOM pixel data through dicom-rs, PNG out.
//!
//! Only 8- and 16-bit grayscale is accepted. Colour images are refused with
//! advice rather than shared per channel: a per-channel split would triple
//! the shadows and the paper's experiment is grayscale only; the file itself
//! can always be protected, losslessly, with `umbra split`.
//!
//! DICOM: the samples are taken exactly as stored (signed values keep their
//! two's-complement bits, MONOCHROME1 is not inverted, no rescale or window),
//! so sharing stays lossless; the flags are kept for display. A multi-frame
//! object becomes one tall image with its frames stacked top to bottom.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use image::{DynamicImage, ExtendedColorType, ImageDecoder};

use super::error::{AtPath, PaperError, Result, chain};
use crate::output::PendingFile;

/// One grayscale plane, row-major; `bits` is 8 or 16.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayImage {
    pub width: u32,
    pub height: u32,
    pub bits: u8,
    pub samples: Vec<u16>,
    /// Display hints from the source: MONOCHROME1 (bright is low) and signed
    /// samples. They never change the samples.
    pub monochrome1: bool,
    pub signed: bool,
}

impl GrayImage {
    /// An image from samples; panics if the lengths or depth disagree
    /// (a programming error, never input).
    pub fn new(width: u32, height: u32, bits: u8, samples: Vec<u16>) -> Self {
        assert!(bits == 8 || bits == 16, "8 or 16 bits");
        assert_eq!(samples.len(), width as usize * height as usize, "samples");
        Self {
            width,
            height,
            bits,
            samples,
            monochrome1: false,
            signed: false,
        }
    }

    /// 1 for 8-bit images, 2 for 16-bit ones.
    pub fn bytes_per_sample(&self) -> usize {
        usize::from(self.bits / 8)
    }

    /// The number of sample values, 2^bits.
    pub fn levels(&self) -> u32 {
        1u32 << self.bits
    }

    /// The samples as bytes, 16-bit ones little-endian (as DICOM stores them).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self.bits {
            8 => self.samples.iter().map(|&s| s as u8).collect(),
            _ => {
                let mut bytes = Vec::with_capacity(self.samples.len() * 2);
                for s in &self.samples {
                    bytes.extend_from_slice(&s.to_le_bytes());
                }
                bytes
            }
        }
    }

    /// The inverse of [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(width: u32, height: u32, bits: u8, bytes: &[u8]) -> Self {
        let samples = match bits {
            8 => bytes.iter().map(|&b| u16::from(b)).collect(),
            _ => bytes
                .chunks_exact(2)
                .map(|p| u16::from_le_bytes([p[0], p[1]]))
                .collect(),
        };
        Self::new(width, height, bits, samples)
    }

    /// The sample at column `x`, row `y`.
    pub fn get(&self, x: u32, y: u32) -> u16 {
        self.samples[y as usize * self.width as usize + x as usize]
    }
}

/// Reads an 8- or 16-bit grayscale image. DICOM is recognised by its `DICM`
/// magic or a `.dcm` name; anything else goes to the `image` crate, which
/// guesses the format from the content.
pub fn read_gray(path: &Path) -> Result<GrayImage> {
    let mut head = [0u8; 132];
    let mut file = std::fs::File::open(path).at(path)?;
    let mut got = 0;
    while got < head.len() {
        let n = file.read(&mut head[got..]).at(path)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    drop(file);
    let dicom_magic = got == 132 && &head[128..132] == b"DICM";
    let dicom_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("dcm") || e.eq_ignore_ascii_case("dicom"));
    let img = if dicom_magic || dicom_name {
        read_dicom(path)?
    } else {
        read_raster(path)?
    };
    if img.width == 0 || img.height == 0 {
        return Err(PaperError::NotAnImage {
            path: path.to_path_buf(),
            reason: format!("{} x {} pixels: nothing to share", img.width, img.height),
        });
    }
    Ok(img)
}

fn read_raster(path: &Path) -> Result<GrayImage> {
    let reader = image::ImageReader::open(path)
        .at(path)?
        .with_guessed_format()
        .at(path)?;
    if reader.format().is_none() {
        return Err(PaperError::NotAnImage {
            path: path.to_path_buf(),
            reason: "not a PNG, TIFF, PGM/PNM or DICOM file".into(),
        });
    }
    let unreadable = |e: image::ImageError| PaperError::Unreadable {
        path: path.to_path_buf(),
        reason: chain(&e),
    };
    let decoder = reader.into_decoder().map_err(unreadable)?;
    let original = decoder.original_color_type();
    match original {
        ExtendedColorType::L8 | ExtendedColorType::L16 => {}
        ExtendedColorType::L1 | ExtendedColorType::L2 | ExtendedColorType::L4 => {
            return Err(PaperError::BitDepth {
                path: path.to_path_buf(),
                what: format!("{original:?} grayscale"),
            });
        }
        ExtendedColorType::La1
        | ExtendedColorType::La2
        | ExtendedColorType::La4
        | ExtendedColorType::La8
        | ExtendedColorType::La16 => {
            return Err(PaperError::Colour {
                path: path.to_path_buf(),
                what: format!("grayscale with alpha ({original:?})"),
            });
        }
        other if other.channel_count() >= 3 => {
            return Err(PaperError::Colour {
                path: path.to_path_buf(),
                what: format!("{other:?}"),
            });
        }
        other => {
            return Err(PaperError::BitDepth {
                path: path.to_path_buf(),
                what: format!("{other:?}"),
            });
        }
    }
    let image = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    let (width, height) = (image.width(), image.height());
    match image {
        DynamicImage::ImageLuma8(buf) => Ok(GrayImage::new(
            width,
            height,
            8,
            buf.into_raw().into_iter().map(u16::from).collect(),
        )),
        DynamicImage::ImageLuma16(buf) => Ok(GrayImage::new(width, height, 16, buf.into_raw())),
        other => Err(PaperError::BitDepth {
            path: path.to_path_buf(),
            what: format!("decoded as {:?}", other.color()),
        }),
    }
}

fn read_dicom(path: &Path) -> Result<GrayImage> {
    use dicom_dictionary_std::tags;
    use dicom_pixeldata::PixelDecoder;

    let obj = dicom_object::open_file(path).map_err(|e| PaperError::Unreadable {
        path: path.to_path_buf(),
        reason: format!("not a readable DICOM file: {}", chain(&e)),
    })?;
    if obj.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
        let text = |tag| {
            obj.element_opt(tag)
                .ok()
                .flatten()
                .and_then(|e| e.to_str().ok().map(|s| s.trim().to_string()))
                .unwrap_or_else(|| "?".into())
        };
        return Err(PaperError::NotAnImage {
            path: path.to_path_buf(),
            reason: format!(
                "DICOM object without Pixel Data (Modality {}, SOP Class {}); protect it as a \
                 file with `umbra split`",
                text(tags::MODALITY),
                text(tags::SOP_CLASS_UID)
            ),
        });
    }
    let decoded = obj
        .decode_pixel_data()
        .map_err(|e| PaperError::Unreadable {
            path: path.to_path_buf(),
            reason: format!("cannot decode its pixel data: {}", chain(&e)),
        })?;
    let photometric = decoded.photometric_interpretation().as_str().to_string();
    if decoded.samples_per_pixel() != 1 || !photometric.starts_with("MONOCHROME") {
        return Err(PaperError::Colour {
            path: path.to_path_buf(),
            what: format!(
                "DICOM {photometric} with {} sample(s) per pixel",
                decoded.samples_per_pixel()
            ),
        });
    }
    let bits = decoded.bits_allocated();
    if bits != 8 && bits != 16 {
        return Err(PaperError::BitDepth {
            path: path.to_path_buf(),
            what: format!("DICOM with {bits} bits allocated"),
        });
    }
    let (cols, rows, frames) = (
        decoded.columns(),
        decoded.rows(),
        decoded.number_of_frames().max(1),
    );
    let height = rows
        .checked_mul(frames)
        .ok_or_else(|| PaperError::Unreadable {
            path: path.to_path_buf(),
            reason: "too many rows".into(),
        })?;
    let count = cols as usize * height as usize;
    let need = count * usize::from(bits / 8);
    let data = decoded.data();
    if data.len() < need {
        return Err(PaperError::Unreadable {
            path: path.to_path_buf(),
            reason: format!(
                "pixel data holds {} bytes, {need} expected for {cols} x {rows} x {frames} frame(s) \
                 at {bits} bits: the file is truncated",
                data.len()
            ),
        });
    }
    // The decoder hands samples over in native byte order.
    let samples: Vec<u16> = match bits {
        8 => data[..need].iter().map(|&b| u16::from(b)).collect(),
        _ => data[..need]
            .chunks_exact(2)
            .map(|p| u16::from_ne_bytes([p[0], p[1]]))
            .collect(),
    };
    let mut img = GrayImage::new(cols, height, bits as u8, samples);
    img.monochrome1 = photometric == "MONOCHROME1";
    img.signed = matches!(
        decoded.pixel_representation(),
        dicom_pixeldata::PixelRepresentation::Signed
    );
    Ok(img)
}

/// Encodes a PNG with fast deflate and the `Sub` filter: adaptive filtering
/// buys nothing on shadows (noise) and costs most of the time in debug
/// builds. `pixels` is as `image` expects it: 16-bit samples in native order.
fn encode_png(
    path: &Path,
    pixels: &[u8],
    width: u32,
    height: u32,
    color: ExtendedColorType,
) -> Result<()> {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};

    let mut pending = PendingFile::create(path, true).map_err(|e| PaperError::Figure {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    {
        let mut out = BufWriter::new(pending.file());
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
            .write_image(pixels, width, height, color)
            .map_err(|e| PaperError::Figure {
                path: path.to_path_buf(),
                reason: chain(&e),
            })?;
        out.flush().at(path)?;
    }
    pending
        .commit(true, false)
        .map_err(|e| PaperError::Figure {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(())
}

/// Writes `img` as an 8- or 16-bit grayscale PNG, whole or not at all.
pub fn write_png(path: &Path, img: &GrayImage) -> Result<()> {
    match img.bits {
        8 => {
            let raw: Vec<u8> = img.samples.iter().map(|&s| s as u8).collect();
            encode_png(path, &raw, img.width, img.height, ExtendedColorType::L8)
        }
        _ => {
            let mut raw = Vec::with_capacity(img.samples.len() * 2);
            for s in &img.samples {
                raw.extend_from_slice(&s.to_ne_bytes());
            }
            encode_png(path, &raw, img.width, img.height, ExtendedColorType::L16)
        }
    }
}

/// Writes 8-bit RGB pixels as a PNG (figures).
pub fn write_rgb_png(path: &Path, width: u32, height: u32, rgb: Vec<u8>) -> Result<()> {
    if rgb.len() != width as usize * height as usize * 3 {
        return Err(PaperError::Figure {
            path: path.to_path_buf(),
            reason: "figure buffer of the wrong size".into(),
        });
    }
    encode_png(path, &rgb, width, height, ExtendedColorType::Rgb8)
}

/// An 8-bit view for figures only: values scaled from 0..levels-1, or, for
/// images that use a small part of their range (16-bit medical images),
/// stretched from their own minimum to maximum. MONOCHROME1 is inverted and
/// signed samples are read as signed, so the picture looks as a viewer
/// shows it. Never used for sharing.
pub fn display_8bit(img: &GrayImage, levels: u32) -> Vec<u8> {
    let value = |s: u16| -> f64 {
        if img.signed && img.bits == 16 {
            f64::from(s as i16)
        } else {
            f64::from(s)
        }
    };
    let (lo, hi) = if img.bits == 16 && levels > 257 {
        let mut lo = f64::MAX;
        let mut hi = f64::MIN;
        for &s in &img.samples {
            let v = value(s);
            lo = lo.min(v);
            hi = hi.max(v);
        }
        (lo, hi)
    } else {
        (0.0, f64::from(levels.saturating_sub(1).max(1)))
    };
    let span = (hi - lo).max(1.0);
    img.samples
        .iter()
        .map(|&s| {
            let v = ((value(s) - lo) / span * 255.0).round().clamp(0.0, 255.0) as u8;
            if img.monochrome1 { 255 - v } else { v }
        })
        .collect()
}
