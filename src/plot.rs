//! Small PNG charts for the run report: line charts, grouped bar charts and heatmaps, drawn on an
//! RGB image with text rendered from a TrueType font (DejaVu Sans, from Debian's
//! fonts-dejavu-core, installed by scripts/setup.sh; or the file named by ZEROLABEL_FONT).
use crate::error::{Error, Result};
use ab_glyph::{point, Font as _, FontVec, PxScale, ScaleFont};
use image::{Rgb, RgbImage};
use std::path::{Path, PathBuf};

pub type Color = [u8; 3];
pub const BLACK: Color = [30, 30, 30];
pub const GREY: Color = [150, 150, 150];
pub const LIGHT: Color = [228, 228, 228];
pub const WHITE: Color = [255, 255, 255];
/// Tableau 10: distinct series colours.
pub const PALETTE: [Color; 10] = [
    [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
    [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];

pub struct Font(FontVec);

const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

impl Font {
    /// ZEROLABEL_FONT, else DejaVu Sans where Linux distributions put it.
    pub fn find() -> Result<Font> {
        let candidates: Vec<PathBuf> = std::env::var_os("ZEROLABEL_FONT").map(PathBuf::from).into_iter().chain(FONT_CANDIDATES.iter().map(PathBuf::from)).collect();
        let path = candidates.iter().find(|p| p.exists()).ok_or_else(|| {
            Error::format(FONT_CANDIDATES[0], "no TrueType font for the plots: install fonts-dejavu-core (scripts/setup.sh does) or set ZEROLABEL_FONT")
        })?;
        Font::load(path)
    }

    pub fn load(path: &Path) -> Result<Font> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        FontVec::try_from_vec(bytes).map(Font).map_err(|_| Error::format(path, "not a TrueType/OpenType font"))
    }

    /// Each glyph of `text` at `size` with its left edge (kerning applied), and the total width.
    fn layout(&self, size: f32, text: &str) -> (Vec<(ab_glyph::GlyphId, f32)>, f32) {
        let scaled = self.0.as_scaled(PxScale::from(size));
        let mut caret = 0.0;
        let mut last = None;
        let mut glyphs = Vec::new();
        for ch in text.chars() {
            let id = scaled.glyph_id(ch);
            if let Some(prev) = last {
                caret += scaled.kern(prev, id);
            }
            glyphs.push((id, caret));
            caret += scaled.h_advance(id);
            last = Some(id);
        }
        (glyphs, caret)
    }

    /// Width in pixels of `text` at `size`.
    pub fn width(&self, size: f32, text: &str) -> f32 {
        self.layout(size, text).1
    }

    /// Coverage mask of `text`: (width, height, row-major coverage in 0..1).
    fn render(&self, size: f32, text: &str) -> (usize, usize, Vec<f32>) {
        let scaled = self.0.as_scaled(PxScale::from(size));
        let (glyphs, width) = self.layout(size, text);
        let (w, h) = (width.ceil() as usize + 2, (scaled.ascent() - scaled.descent()).ceil() as usize + 2);
        let mut mask = vec![0f32; w * h];
        for (id, x) in glyphs {
            let glyph = id.with_scale_and_position(size, point(1.0 + x, 1.0 + scaled.ascent()));
            if let Some(outlined) = self.0.outline_glyph(glyph) {
                let b = outlined.px_bounds();
                outlined.draw(|gx, gy, c| {
                    let (x, y) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
                    if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                        let m = &mut mask[y as usize * w + x as usize];
                        *m = (*m + c).min(1.0);
                    }
                });
            }
        }
        (w, h, mask)
    }
}

#[derive(Clone, Copy, PartialEq)]
pub enum Align {
    Start,
    Center,
    End,
}

/// An RGB image with drawing primitives.
pub struct Canvas<'f> {
    pub img: RgbImage,
    font: &'f Font,
}

impl<'f> Canvas<'f> {
    pub fn new(width: u32, height: u32, font: &'f Font) -> Self {
        Canvas { img: RgbImage::from_pixel(width, height, Rgb(WHITE)), font }
    }

    fn blend(&mut self, x: i64, y: i64, color: Color, alpha: f32) {
        if x < 0 || y < 0 || x >= self.img.width() as i64 || y >= self.img.height() as i64 || alpha <= 0.0 {
            return;
        }
        let p = self.img.get_pixel_mut(x as u32, y as u32);
        for k in 0..3 {
            p.0[k] = (p.0[k] as f32 * (1.0 - alpha) + color[k] as f32 * alpha).round() as u8;
        }
    }

    pub fn fill_rect(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Color) {
        let (xa, xb) = (x0.min(x1).round() as i64, x0.max(x1).round() as i64);
        let (ya, yb) = (y0.min(y1).round() as i64, y0.max(y1).round() as i64);
        for y in ya..yb.max(ya + 1) {
            for x in xa..xb.max(xa + 1) {
                self.blend(x, y, color, 1.0);
            }
        }
    }

    /// A line `width` pixels wide, drawn as overlapping discs along its length.
    pub fn line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Color, width: f64) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()) * 2.0).ceil().max(1.0) as usize;
        let r = width / 2.0;
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (cx, cy) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            for dy in (-(r.ceil() as i64))..=(r.ceil() as i64) {
                for dx in (-(r.ceil() as i64))..=(r.ceil() as i64) {
                    let d = ((dx * dx + dy * dy) as f64).sqrt();
                    let alpha = (r + 0.5 - d).clamp(0.0, 1.0) as f32;
                    self.blend(cx.round() as i64 + dx, cy.round() as i64 + dy, color, alpha);
                }
            }
        }
    }

    pub fn text_width(&self, size: f32, text: &str) -> f64 {
        self.font.width(size, text) as f64
    }

    /// Draws `text` anchored at (x, y) by `h`/`v`; `vertical` turns it 90° counter-clockwise.
    pub fn text(&mut self, x: f64, y: f64, size: f32, text: &str, color: Color, h: Align, v: Align, vertical: bool) {
        let (w, ht, mask) = self.font.render(size, text);
        let (bw, bh) = if vertical { (ht, w) } else { (w, ht) };
        let ox = match h {
            Align::Start => x,
            Align::Center => x - bw as f64 / 2.0,
            Align::End => x - bw as f64,
        }
        .round() as i64;
        let oy = match v {
            Align::Start => y,
            Align::Center => y - bh as f64 / 2.0,
            Align::End => y - bh as f64,
        }
        .round() as i64;
        for my in 0..ht {
            for mx in 0..w {
                let c = mask[my * w + mx];
                if c > 0.0 {
                    let (px, py) = if vertical { (my as i64, (w - 1 - mx) as i64) } else { (mx as i64, my as i64) };
                    self.blend(ox + px, oy + py, color, c);
                }
            }
        }
    }

    /// Writes the PNG atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        save_png(&self.img, path)
    }
}

pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| Error::Write { path: path.into(), source: std::io::Error::other(e) })?;
    crate::io::write_atomic(path, &bytes)
}

/// Places images side by side on a white background.
pub fn hstack(images: &[RgbImage]) -> RgbImage {
    let width: u32 = images.iter().map(|i| i.width()).sum();
    let height = images.iter().map(|i| i.height()).max().unwrap_or(1);
    let mut out = RgbImage::from_pixel(width.max(1), height, Rgb(WHITE));
    let mut x = 0;
    for img in images {
        image::imageops::overlay(&mut out, img, x as i64, 0);
        x += img.width();
    }
    out
}

/// Stacks images vertically.
pub fn vstack(images: &[RgbImage]) -> RgbImage {
    let width = images.iter().map(|i| i.width()).max().unwrap_or(1);
    let height: u32 = images.iter().map(|i| i.height()).sum();
    let mut out = RgbImage::from_pixel(width, height.max(1), Rgb(WHITE));
    let mut y = 0;
    for img in images {
        image::imageops::overlay(&mut out, img, 0, y as i64);
        y += img.height();
    }
    out
}

/// About five round tick values covering [lo, hi].
pub fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(hi > lo) {
        return vec![lo];
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = vec![];
    while t <= hi + step * 1e-9 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// A tick value with as many decimals as the tick spacing `step` needs.
fn tick_label(v: f64, step: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() >= 1e5 || v.abs() < 1e-4 {
        return format!("{v:.0e}");
    }
    let decimals = (-step.abs().max(1e-12).log10().floor()).clamp(0.0, 6.0) as usize;
    format!("{v:.decimals$}")
}

/// Plot-area geometry and value-to-pixel mapping.
struct Frame {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        self.left + (x - self.x.0) / (self.x.1 - self.x.0).max(1e-12) * (self.right - self.left)
    }
    fn py(&self, y: f64) -> f64 {
        self.bottom - (y - self.y.0) / (self.y.1 - self.y.0).max(1e-12) * (self.bottom - self.top)
    }
}

/// Title, y grid with tick labels, axis labels; returns nothing, draws into `c`.
fn axes(c: &mut Canvas, f: &Frame, title: &str, x_label: &str, y_label: &str, x_ticks: bool) {
    c.text((f.left + f.right) / 2.0, 8.0, 17.0, title, BLACK, Align::Center, Align::Start, false);
    let step = |t: &[f64]| if t.len() > 1 { t[1] - t[0] } else { 1.0 };
    let y_ticks = ticks(f.y.0, f.y.1);
    for &t in &y_ticks {
        let y = f.py(t);
        c.line(f.left, y, f.right, y, LIGHT, 1.0);
        c.text(f.left - 6.0, y, 12.0, &tick_label(t, step(&y_ticks)), BLACK, Align::End, Align::Center, false);
    }
    if x_ticks {
        let xt = ticks(f.x.0, f.x.1);
        for &t in &xt {
            let x = f.px(t);
            c.line(x, f.bottom, x, f.bottom + 4.0, BLACK, 1.0);
            c.text(x, f.bottom + 6.0, 12.0, &tick_label(t, step(&xt)), BLACK, Align::Center, Align::Start, false);
        }
    }
    c.line(f.left, f.bottom, f.right, f.bottom, BLACK, 1.0);
    c.line(f.left, f.top, f.left, f.bottom, BLACK, 1.0);
    c.text((f.left + f.right) / 2.0, c.img.height() as f64 - 6.0, 13.0, x_label, BLACK, Align::Center, Align::End, false);
    c.text(6.0, (f.top + f.bottom) / 2.0, 13.0, y_label, BLACK, Align::Start, Align::Center, true);
}

/// A one-line legend between the title and the plot area, right-aligned.
fn legend(c: &mut Canvas, f: &Frame, names: &[(String, Color)]) {
    if names.len() < 2 {
        return; // one series: the title names it
    }
    let widths: Vec<f64> = names.iter().map(|(n, _)| c.text_width(12.0, n) + 34.0).collect();
    let mut x = f.right - widths.iter().sum::<f64>();
    let y = f.top - 12.0;
    for ((name, color), w) in names.iter().zip(widths) {
        c.fill_rect(x + 6.0, y - 5.0, x + 22.0, y + 5.0, *color);
        c.text(x + 28.0, y, 12.0, name, BLACK, Align::Start, Align::Center, false);
        x += w;
    }
}

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: Color,
}

/// Lines through (x, y) points, one per series, with a legend.
pub fn line_chart(font: &Font, title: &str, x_label: &str, y_label: &str, series: &[Series], width: u32, height: u32) -> RgbImage {
    let mut c = Canvas::new(width, height, font);
    let pts = series.iter().flat_map(|s| s.points.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in pts {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    // A flat or single-point series still gets a readable range around its value.
    let pad = ((y1 - y0) * 0.05).max(y0.abs().max(y1.abs()) * 0.02).max(1e-6);
    let f = Frame { left: 70.0, top: if series.len() > 1 { 56.0 } else { 36.0 }, right: width as f64 - 16.0, bottom: height as f64 - 46.0, x: (x0, x1), y: (y0 - pad, y1 + pad) };
    axes(&mut c, &f, title, x_label, y_label, true);
    for s in series {
        let p: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
        for w in p.windows(2) {
            c.line(f.px(w[0].0), f.py(w[0].1), f.px(w[1].0), f.py(w[1].1), s.color, 2.0);
        }
        if p.len() <= 30 {
            for &(x, y) in &p {
                c.fill_rect(f.px(x) - 3.0, f.py(y) - 3.0, f.px(x) + 3.0, f.py(y) + 3.0, s.color);
            }
        }
    }
    legend(&mut c, &f, &series.iter().map(|s| (s.name.clone(), s.color)).collect::<Vec<_>>());
    c.img
}

/// Grouped bars: one group per category, one bar per series; optional horizontal reference lines.
pub fn bar_chart(
    font: &Font,
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[(String, Vec<f64>)],
    y_range: Option<(f64, f64)>,
    references: &[(String, f64, Color)],
    width: u32,
    height: u32,
) -> RgbImage {
    let mut c = Canvas::new(width, height, font);
    let values = series.iter().flat_map(|s| s.1.iter().copied()).chain(references.iter().map(|r| r.1)).filter(|v| v.is_finite());
    let (lo, hi) = y_range.unwrap_or_else(|| {
        let (mut lo, mut hi) = (0f64, f64::NEG_INFINITY);
        for v in values {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        (lo, if hi.is_finite() && hi > lo { hi * 1.1 } else { lo + 1.0 })
    });
    let label_room = categories.iter().map(|s| c.text_width(12.0, s)).fold(0.0, f64::max);
    let rotate = label_room > (width as f64 - 90.0) / categories.len().max(1) as f64 - 4.0;
    let bottom = height as f64 - if rotate { label_room + 30.0 } else { 46.0 };
    let f = Frame { left: 70.0, top: if series.len() > 1 { 56.0 } else { 36.0 }, right: width as f64 - 16.0, bottom, x: (0.0, categories.len() as f64), y: (lo, hi) };
    axes(&mut c, &f, title, "", y_label, false);
    let group = (f.right - f.left) / categories.len().max(1) as f64;
    let bar = group * 0.8 / series.len().max(1) as f64;
    for (k, name) in categories.iter().enumerate() {
        let gx = f.left + group * k as f64 + group * 0.1;
        for (s, (_, vals)) in series.iter().enumerate() {
            if let Some(&v) = vals.get(k).filter(|v| v.is_finite()) {
                let color = PALETTE[s % PALETTE.len()];
                c.fill_rect(gx + bar * s as f64, f.py(v.clamp(lo, hi)), gx + bar * (s as f64 + 1.0) - 1.0, f.py(lo.max(0.0).min(hi)), color);
            }
        }
        let cx = f.left + group * (k as f64 + 0.5);
        if rotate {
            c.text(cx, f.bottom + 6.0, 12.0, name, BLACK, Align::Center, Align::Start, true);
        } else {
            c.text(cx, f.bottom + 6.0, 12.0, name, BLACK, Align::Center, Align::Start, false);
        }
    }
    for (name, v, color) in references {
        let y = f.py(*v);
        let mut x = f.left;
        while x < f.right {
            c.line(x, y, (x + 8.0).min(f.right), y, *color, 2.0);
            x += 14.0;
        }
        c.text(f.left + 4.0, y - 3.0, 11.0, name, *color, Align::Start, Align::End, false);
    }
    let names: Vec<(String, Color)> = series.iter().enumerate().map(|(s, (n, _))| (n.clone(), PALETTE[s % PALETTE.len()])).collect();
    legend(&mut c, &f, &names);
    c.img
}

/// Colour of `t` in [-1, 1] (diverging, blue-white-red) or [0, 1] (sequential, white-blue).
pub fn colormap(t: f64, diverging: bool) -> Color {
    let lerp = |a: Color, b: Color, u: f64| -> Color { [0, 1, 2].map(|k| (a[k] as f64 + (b[k] as f64 - a[k] as f64) * u.clamp(0.0, 1.0)).round() as u8) };
    if diverging {
        if t < 0.0 { lerp(WHITE, [33, 102, 172], -t) } else { lerp(WHITE, [178, 24, 43], t) }
    } else {
        lerp([247, 251, 255], [8, 48, 107], t)
    }
}

/// A matrix as coloured cells with row and column labels; `cells` gives the text of each cell.
pub fn heatmap(
    font: &Font,
    title: &str,
    row_title: &str,
    col_title: &str,
    rows: &[String],
    cols: &[String],
    values: &[Vec<f64>],
    diverging: bool,
    cells: Option<&[Vec<String>]>,
    cell_size: f64,
) -> RgbImage {
    let probe = Canvas::new(1, 1, font);
    let row_w = rows.iter().map(|s| probe.text_width(12.0, s)).fold(0.0, f64::max) + 12.0;
    let col_h = cols.iter().map(|s| probe.text_width(12.0, s)).fold(0.0, f64::max) + 12.0;
    let left = 28.0 + row_w;
    let top = 40.0;
    let width = (left + cell_size * cols.len() as f64 + 16.0).max(probe.text_width(17.0, title) + 20.0);
    let height = top + cell_size * rows.len() as f64 + col_h + 28.0;
    let mut c = Canvas::new(width as u32, height as u32, font);
    c.text(width / 2.0, 8.0, 17.0, title, BLACK, Align::Center, Align::Start, false);
    let scale = values.iter().flatten().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    for (i, row) in values.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let t = v / scale;
            let color = colormap(t, diverging);
            let (x0, y0) = (left + cell_size * j as f64, top + cell_size * i as f64);
            c.fill_rect(x0, y0, x0 + cell_size - 1.0, y0 + cell_size - 1.0, color);
            if let Some(text) = cells.and_then(|t| t.get(i)).and_then(|r| r.get(j)) {
                let ink = if t.abs() > 0.55 { WHITE } else { BLACK };
                c.text(x0 + cell_size / 2.0, y0 + cell_size / 2.0, (cell_size as f32 * 0.3).clamp(8.0, 12.0), text, ink, Align::Center, Align::Center, false);
            }
        }
    }
    for (i, name) in rows.iter().enumerate() {
        c.text(left - 6.0, top + cell_size * (i as f64 + 0.5), 12.0, name, BLACK, Align::End, Align::Center, false);
    }
    let below = top + cell_size * rows.len() as f64 + 4.0;
    for (j, name) in cols.iter().enumerate() {
        c.text(left + cell_size * (j as f64 + 0.5), below, 12.0, name, BLACK, Align::Center, Align::Start, true);
    }
    c.text(8.0, top + cell_size * rows.len() as f64 / 2.0, 13.0, row_title, BLACK, Align::Start, Align::Center, true);
    c.text(left + cell_size * cols.len() as f64 / 2.0, height - 6.0, 13.0, col_title, BLACK, Align::Center, Align::End, false);
    c.img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let t = ticks(0.0, 1.0);
        assert_eq!(t.len(), 6);
        assert!(t.iter().zip([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]).all(|(a, b)| (a - b).abs() < 1e-9), "{t:?}");
        let t = ticks(3.2, 97.0);
        assert!(t.first().unwrap() >= &3.2 && t.last().unwrap() <= &97.0 && t.len() >= 4, "{t:?}");
    }

    #[test]
    fn charts_draw_ink_where_the_data_is() {
        let Ok(font) = Font::find() else {
            eprintln!("skipped: no TrueType font (install fonts-dejavu-core)");
            return;
        };
        let img = line_chart(&font, "t", "x", "y", &[Series { name: "a".into(), points: vec![(0.0, 0.0), (1.0, 1.0)], color: PALETTE[0] }], 300, 200);
        let blue = img.pixels().filter(|p| p.0 == PALETTE[0]).count();
        assert!(blue > 100, "the line is drawn ({blue} pixels)");
        let img = heatmap(&font, "h", "r", "c", &["a".into(), "b".into()], &["a".into(), "b".into()], &[vec![1.0, 0.0], vec![0.0, 1.0]], false, None, 30.0);
        let dark = img.pixels().filter(|p| p.0 == colormap(1.0, false)).count();
        assert!(dark >= 2 * 29 * 29, "two full cells ({dark} pixels)");
    }
}
