//! SimCLR augmentations (method.md, stage I; torchvision semantics): RandomResizedCrop to the
//! input size, horizontal flip, ColorJitter(0.4, 0.4, 0.4, 0.1) with p = 0.8 (its four parts in
//! random order), grayscale with p = 0.2; grey images get brightness and contrast only.
//!
//! Computed on the CPU, in parallel threads, and deterministic: each view of each image draws
//! from its own stream derived from (seed, epoch, image index, view), so neither the number of
//! threads nor the batch layout changes a pixel.
use super::images::ImageSet;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AugmentParams {
    pub crop_scale: (f64, f64),
    pub crop_ratio: (f64, f64),
    pub flip_p: f64,
    pub jitter_p: f64,
    pub brightness: f64,
    pub contrast: f64,
    pub saturation: f64,
    pub hue: f64,
    pub grayscale_p: f64,
}

impl Default for AugmentParams {
    fn default() -> Self {
        AugmentParams {
            crop_scale: (0.08, 1.0),
            crop_ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip_p: 0.5,
            jitter_p: 0.8,
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            hue: 0.1,
            grayscale_p: 0.2,
        }
    }
}

/// The random stream of one view of one image.
pub fn view_rng(seed: u64, epoch: usize, index: usize, view: usize) -> Rng {
    Rng::new(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F) ^ (view as u64 + 1).wrapping_mul(0x1656_67B1_9E37_79F9))
}

fn uniform_in(rng: &mut Rng, (lo, hi): (f64, f64)) -> f64 {
    lo + (hi - lo) * rng.uniform()
}

/// torchvision's RandomResizedCrop parameters: (top, left, height, width).
fn crop_box(rng: &mut Rng, h: usize, w: usize, p: &AugmentParams) -> (usize, usize, usize, usize) {
    let area = (h * w) as f64;
    let log_ratio = (p.crop_ratio.0.ln(), p.crop_ratio.1.ln());
    for _ in 0..10 {
        let target = area * uniform_in(rng, p.crop_scale);
        let aspect = uniform_in(rng, log_ratio).exp();
        let cw = (target * aspect).sqrt().round() as usize;
        let ch = (target / aspect).sqrt().round() as usize;
        if cw > 0 && ch > 0 && cw <= w && ch <= h {
            let top = rng.below(h - ch + 1);
            let left = rng.below(w - cw + 1);
            return (top, left, ch, cw);
        }
    }
    // Fallback: central crop with the ratio clamped.
    let ratio = w as f64 / h as f64;
    let (ch, cw) = if ratio < p.crop_ratio.0 {
        ((w as f64 / p.crop_ratio.0).round() as usize, w)
    } else if ratio > p.crop_ratio.1 {
        (h, (h as f64 * p.crop_ratio.1).round() as usize)
    } else {
        (h, w)
    };
    ((h - ch) / 2, (w - cw) / 2, ch, cw)
}

/// Bilinear resize (half-pixel centres, like align_corners = False) of a crop to size x size.
fn resize_crop(img: &[u8], w: usize, c: usize, (top, left, ch, cw): (usize, usize, usize, usize), size: usize, out: &mut [f32]) {
    let (sy, sx) = (ch as f64 / size as f64, cw as f64 / size as f64);
    for y in 0..size {
        let fy = ((y as f64 + 0.5) * sy - 0.5).clamp(0.0, (ch - 1) as f64);
        let (y0, wy) = (fy.floor() as usize, (fy - fy.floor()) as f32);
        let y1 = (y0 + 1).min(ch - 1);
        for x in 0..size {
            let fx = ((x as f64 + 0.5) * sx - 0.5).clamp(0.0, (cw - 1) as f64);
            let (x0, wx) = (fx.floor() as usize, (fx - fx.floor()) as f32);
            let x1 = (x0 + 1).min(cw - 1);
            for k in 0..c {
                let at = |yy: usize, xx: usize| img[((top + yy) * w + left + xx) * c + k] as f32 / 255.0;
                let top_row = at(y0, x0) * (1.0 - wx) + at(y0, x1) * wx;
                let bottom_row = at(y1, x0) * (1.0 - wx) + at(y1, x1) * wx;
                out[(y * size + x) * c + k] = top_row * (1.0 - wy) + bottom_row * wy;
            }
        }
    }
}

fn luminance(px: &[f32]) -> f32 {
    0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]
}

fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let h = if delta <= 0.0 {
        0.0
    } else if max == r {
        ((g - b) / delta).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((b - r) / delta + 2.0) / 6.0
    } else {
        ((r - g) / delta + 4.0) / 6.0
    };
    let s = if max <= 0.0 { 0.0 } else { delta / max };
    (h, s, max)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = h.rem_euclid(1.0) * 6.0;
    let i = h6.floor();
    let f = h6 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match i as i32 % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

/// ColorJitter on an HWC image in [0, 1], in place; the four adjustments in random order.
fn color_jitter(px: &mut [f32], c: usize, p: &AugmentParams, rng: &mut Rng) {
    let factor = |rng: &mut Rng, amount: f64| uniform_in(rng, ((1.0 - amount).max(0.0), 1.0 + amount)) as f32;
    let mut order = [0usize, 1, 2, 3];
    rng.shuffle(&mut order);
    // Draw every factor up front so the stream does not depend on which ones apply.
    let (b, ct, s) = (factor(rng, p.brightness), factor(rng, p.contrast), factor(rng, p.saturation));
    let hue = uniform_in(rng, (-p.hue, p.hue)) as f32;
    for op in order {
        match op {
            0 => px.iter_mut().for_each(|v| *v = (*v * b).clamp(0.0, 1.0)),
            1 => {
                let n = px.len() / c;
                let mean = if c == 3 { px.chunks_exact(3).map(luminance).sum::<f32>() / n as f32 } else { px.iter().sum::<f32>() / n as f32 };
                px.iter_mut().for_each(|v| *v = ((*v - mean) * ct + mean).clamp(0.0, 1.0));
            }
            2 if c == 3 => {
                for q in px.chunks_exact_mut(3) {
                    let grey = luminance(q);
                    q.iter_mut().for_each(|v| *v = ((*v - grey) * s + grey).clamp(0.0, 1.0));
                }
            }
            3 if c == 3 && hue != 0.0 => {
                for q in px.chunks_exact_mut(3) {
                    let (h, sat, val) = rgb_to_hsv(q[0], q[1], q[2]);
                    let (r, g, bb) = hsv_to_rgb(h + hue, sat, val);
                    q[0] = r;
                    q[1] = g;
                    q[2] = bb;
                }
            }
            _ => {}
        }
    }
}

/// One augmented view of image `index`: (C, size, size) f32 in [0, 1], channel-first.
pub fn augment(set: &ImageSet, index: usize, size: usize, p: &AugmentParams, rng: &mut Rng) -> Vec<f32> {
    let (h, w, c) = (set.height, set.width, set.channels);
    let img = set.image(index);
    let mut hwc = vec![0f32; size * size * c];
    resize_crop(img, w, c, crop_box(rng, h, w, p), size, &mut hwc);
    if rng.uniform() < p.flip_p {
        for y in 0..size {
            for x in 0..size / 2 {
                for k in 0..c {
                    hwc.swap((y * size + x) * c + k, (y * size + size - 1 - x) * c + k);
                }
            }
        }
    }
    if rng.uniform() < p.jitter_p {
        color_jitter(&mut hwc, c, p, rng);
    }
    if c == 3 && rng.uniform() < p.grayscale_p {
        for q in hwc.chunks_exact_mut(3) {
            let grey = luminance(q);
            q.fill(grey);
        }
    }
    to_chw(&hwc, size, c)
}

/// An un-augmented image resized to size x size: (C, size, size) f32 in [0, 1].
pub fn plain(set: &ImageSet, index: usize, size: usize) -> Vec<f32> {
    let (h, w, c) = (set.height, set.width, set.channels);
    let mut hwc = vec![0f32; size * size * c];
    resize_crop(set.image(index), w, c, (0, 0, h, w), size, &mut hwc);
    to_chw(&hwc, size, c)
}

/// The image's centred square (side = its shorter side) resized bilinearly to size x size:
/// torchvision's `Resize(size)` then `CenterCrop(size)` for pretrained models (without
/// antialiasing, like `F.interpolate(..., mode="bilinear", align_corners=False)`).
/// (C, size, size) f32 in [0, 1].
pub fn centre_crop(set: &ImageSet, index: usize, size: usize) -> Vec<f32> {
    let (h, w, c) = (set.height, set.width, set.channels);
    let side = h.min(w);
    let mut hwc = vec![0f32; size * size * c];
    resize_crop(set.image(index), w, c, ((h - side) / 2, (w - side) / 2, side, side), size, &mut hwc);
    to_chw(&hwc, size, c)
}

fn to_chw(hwc: &[f32], size: usize, c: usize) -> Vec<f32> {
    let mut chw = vec![0f32; hwc.len()];
    for p in 0..size * size {
        for k in 0..c {
            chw[k * size * size + p] = hwc[p * c + k];
        }
    }
    chw
}

/// Two augmented views of each image in `indices`, computed by `threads` threads:
/// two flat (B, C, size, size) buffers.
pub fn two_view_batch(set: &ImageSet, indices: &[usize], size: usize, p: &AugmentParams, seed: u64, epoch: usize, threads: usize) -> (Vec<f32>, Vec<f32>) {
    let per = set.channels * size * size;
    let mut v1 = vec![0f32; indices.len() * per];
    let mut v2 = vec![0f32; indices.len() * per];
    let chunk = indices.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        for ((idx, out1), out2) in indices.chunks(chunk).zip(v1.chunks_mut(chunk * per)).zip(v2.chunks_mut(chunk * per)) {
            scope.spawn(move || {
                for (k, &i) in idx.iter().enumerate() {
                    let a = augment(set, i, size, p, &mut view_rng(seed, epoch, i, 0));
                    let b = augment(set, i, size, p, &mut view_rng(seed, epoch, i, 1));
                    out1[k * per..(k + 1) * per].copy_from_slice(&a);
                    out2[k * per..(k + 1) * per].copy_from_slice(&b);
                }
            });
        }
    });
    (v1, v2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ImageSet {
        let pixels: Vec<u8> = (0..4 * 32 * 32 * 3).map(|k| (k * 37 % 251) as u8).collect();
        ImageSet { pixels, count: 4, height: 32, width: 32, channels: 3, labels: None, class_names: vec![] }
    }

    #[test]
    fn deterministic_for_a_seed_and_independent_of_threads() {
        let s = set();
        let p = AugmentParams::default();
        let (a1, a2) = two_view_batch(&s, &[0, 1, 2, 3], 32, &p, 5, 0, 1);
        let (b1, b2) = two_view_batch(&s, &[0, 1, 2, 3], 32, &p, 5, 0, 3);
        assert_eq!(a1, b1);
        assert_eq!(a2, b2);
        assert_ne!(a1, a2, "the two views must differ");
        let (c1, _) = two_view_batch(&s, &[0, 1, 2, 3], 32, &p, 6, 0, 1);
        assert_ne!(a1, c1, "another seed must give other views");
        let (d1, _) = two_view_batch(&s, &[0, 1, 2, 3], 32, &p, 5, 1, 1);
        assert_ne!(a1, d1, "another epoch must give other views");
        assert!(a1.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn centre_crop_takes_the_middle_square() {
        // 2 x 4 grey image: columns 1 and 2 form the centred square.
        let s = ImageSet { pixels: vec![0, 10, 20, 30, 40, 50, 60, 70], count: 1, height: 2, width: 4, channels: 1, labels: None, class_names: vec![] };
        let v = centre_crop(&s, 0, 2);
        let expected = [10.0, 20.0, 50.0, 60.0].map(|p: f32| p / 255.0);
        assert!(v.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6), "{v:?}");
        assert_eq!(centre_crop(&set(), 2, 32), plain(&set(), 2, 32));
    }

    #[test]
    fn plain_view_keeps_pixels_and_hsv_roundtrips() {
        let s = set();
        let v = plain(&s, 1, 32);
        assert!((v[0] - s.image(1)[0] as f32 / 255.0).abs() < 1e-6);
        assert!((v[32 * 32] - s.image(1)[1] as f32 / 255.0).abs() < 1e-6); // channel 1 of pixel 0
        for &(r, g, b) in &[(0.2f32, 0.5f32, 0.9f32), (0.9, 0.1, 0.1), (0.3, 0.3, 0.3)] {
            let (h, s_, v_) = rgb_to_hsv(r, g, b);
            let (r2, g2, b2) = hsv_to_rgb(h, s_, v_);
            assert!((r - r2).abs() < 1e-5 && (g - g2).abs() < 1e-5 && (b - b2).abs() < 1e-5);
        }
    }
}
