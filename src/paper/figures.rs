//! Figures: histogram grids (the paper's Fig. 15-16) and image montages
//! (its Fig. 8-14), drawn with plotters into memory and saved as PNG.
//!
//! Text is drawn with plotters' `ab_glyph` backend from a font compiled into
//! the binary (Liberation Sans, SIL Open Font License 1.1, see
//! `assets/fonts/`), so no fontconfig or freetype is needed at build or run
//! time and figures look the same on every machine.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use super::error::{PaperError, Result};
use super::image_io::{self, GrayImage};
use super::stats::SetStats;

static FONT: &[u8] = include_bytes!("../../assets/fonts/LiberationSans-Regular.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the bundled font is a valid TrueType font"));
    });
}

fn figure_error<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> PaperError + '_ {
    move |e| PaperError::Figure {
        path: path.to_path_buf(),
        reason: format!("drawing failed: {e}"),
    }
}

/// Counts merged into at most 257 bars: one per value up to 257 levels,
/// else `levels / 256` values per bar. Returns (bar width in values, bars).
pub fn bars(hist: &[u64]) -> (usize, Vec<u64>) {
    let per = if hist.len() <= 257 {
        1
    } else {
        hist.len().div_ceil(256)
    };
    (per, hist.chunks(per).map(|c| c.iter().sum()).collect())
}

/// One histogram panel per plane of `set` (original first, then each
/// shadow), three to a row.
pub fn histogram_figure(path: &Path, set: &SetStats) -> Result<()> {
    register_font();
    const PANEL: (u32, u32) = (400, 260);
    let cols = set.planes.len().min(3) as u32;
    let rows = (set.planes.len() as u32).div_ceil(cols.max(1));
    let (w, h) = (PANEL.0 * cols.max(1), PANEL.1 * rows.max(1));
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    let err = figure_error(path);
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let areas = root.split_evenly((rows as usize, cols.max(1) as usize));
        for (i, (area, plane)) in areas.iter().zip(&set.planes).enumerate() {
            // A 16-bit plane that uses only the low values (a 12-bit MR):
            // plot up to the next power of two above its largest value.
            let used = plane.histogram.iter().rposition(|&c| c > 0).unwrap_or(0) + 1;
            let shown = if plane.histogram.len() > 257 {
                used.next_power_of_two().clamp(256, plane.histogram.len())
            } else {
                plane.histogram.len()
            };
            let (per, counts) = bars(&plane.histogram[..shown]);
            let ymax = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.08;
            let color = if i == 0 {
                RGBColor(70, 70, 70)
            } else {
                RGBColor(31, 90, 170)
            };
            let title = match (per, shown < plane.histogram.len()) {
                (1, false) => format!("{} ({} levels)", plane.name, plane.levels),
                (_, false) => format!("{} ({} levels, {per} per bar)", plane.name, plane.levels),
                (_, true) => format!(
                    "{} (0..{} of {} levels, {per} per bar)",
                    plane.name,
                    shown - 1,
                    plane.levels
                ),
            };
            let mut chart = ChartBuilder::on(area)
                .caption(title, (FAMILY, 17))
                .margin(8)
                .x_label_area_size(34)
                .y_label_area_size(58)
                .build_cartesian_2d(0f64..shown as f64, 0f64..ymax)
                .map_err(&err)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc("sample value")
                .y_desc("count")
                .x_labels(5)
                .y_labels(5)
                .label_style((FAMILY, 12))
                .axis_desc_style((FAMILY, 13))
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .draw()
                .map_err(&err)?;
            chart
                .draw_series(
                    counts
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| **c > 0)
                        .map(|(k, &c)| {
                            let x0 = (k * per) as f64;
                            Rectangle::new([(x0, 0.0), (x0 + per as f64, c as f64)], color.filled())
                        }),
                )
                .map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    image_io::write_rgb_png(path, w, h, buf)
}

/// A tile for [`montage`]: a caption, the image, and the number of levels
/// its samples span (for display scaling).
pub struct Tile<'a> {
    pub caption: String,
    pub image: &'a GrayImage,
    pub levels: u32,
}

/// Images side by side, each scaled (nearest neighbour) to fit `cell`
/// pixels, with its caption above: original, shadows, recovered.
pub fn montage(path: &Path, tiles: &[Tile], columns: usize, cell: u32) -> Result<()> {
    register_font();
    const CAPTION: u32 = 24;
    const GAP: u32 = 8;
    let cols = columns.clamp(1, tiles.len().max(1)) as u32;
    let rows = (tiles.len() as u32).div_ceil(cols);
    let (cw, ch) = (cell + GAP, cell + CAPTION + GAP);
    let (w, h) = (cw * cols + GAP, ch * rows + GAP);
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    for (i, tile) in tiles.iter().enumerate() {
        let img = tile.image;
        let gray = image_io::display_8bit(img, tile.levels);
        let scale = (f64::from(cell) / f64::from(img.width.max(1)))
            .min(f64::from(cell) / f64::from(img.height.max(1)));
        let tw = ((f64::from(img.width) * scale).floor() as u32).clamp(1, cell);
        let th = ((f64::from(img.height) * scale).floor() as u32).clamp(1, cell);
        let ox = GAP + (i as u32 % cols) * cw + (cell - tw) / 2;
        let oy = GAP + (i as u32 / cols) * ch + CAPTION + (cell - th) / 2;
        for y in 0..th {
            let sy = ((f64::from(y) / scale) as u32).min(img.height - 1);
            for x in 0..tw {
                let sx = ((f64::from(x) / scale) as u32).min(img.width - 1);
                let v = gray[sy as usize * img.width as usize + sx as usize];
                let at = ((oy + y) as usize * w as usize + (ox + x) as usize) * 3;
                buf[at..at + 3].copy_from_slice(&[v, v, v]);
            }
        }
    }
    let err = figure_error(path);
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let style = TextStyle::from((FAMILY, 16).into_font()).color(&BLACK);
        for (i, tile) in tiles.iter().enumerate() {
            let x = GAP + (i as u32 % cols) * cw;
            let y = GAP + (i as u32 / cols) * ch + 3;
            root.draw_text(&tile.caption, &style, (x as i32, y as i32))
                .map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    image_io::write_rgb_png(path, w, h, buf)
}
