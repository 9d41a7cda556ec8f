//! Image quality metrics on the CPU, defined as scikit-image defines them, on images mapped from [-1, 1] to
//! [0, 1] (data range 1): PSNR, and SSIM with an 11×11 Gaussian window (σ = 1.5, truncate 3.5, reflect
//! boundary, population covariances, K1 = 0.01, K2 = 0.03), averaged over channels after cropping the
//! 5-pixel border of the SSIM map (`structural_similarity(..., gaussian_weights=True, sigma=1.5,
//! use_sample_covariance=False, data_range=1, channel_axis=-1)`).

use crate::error::{Error, Result};
use crate::image::Image;

fn check(a: &Image, b: &Image) -> Result<()> {
    if a.channels != b.channels || a.height != b.height || a.width != b.width {
        return Err(Error::Shape {
            op: "metrics",
            msg: format!("images differ: {}x{}x{} vs {}x{}x{}", a.channels, a.height, a.width, b.channels, b.height, b.width),
        });
    }
    Ok(())
}

fn unit(v: f32) -> f64 {
    ((v as f64 + 1.0) / 2.0).clamp(0.0, 1.0)
}

/// Peak signal-to-noise ratio in dB (infinite for identical images).
pub fn psnr(a: &Image, b: &Image) -> Result<f64> {
    check(a, b)?;
    let mse = a.data.iter().zip(&b.data).map(|(x, y)| (unit(*x) - unit(*y)).powi(2)).sum::<f64>() / a.data.len() as f64;
    Ok(10.0 * (1.0 / mse).log10())
}

/// scipy.ndimage 'reflect' index (d c b a | a b c d | d c b a).
fn reflect(i: i64, n: usize) -> usize {
    let n = n as i64;
    let period = 2 * n;
    let mut m = i.rem_euclid(period);
    if m >= n {
        m = period - 1 - m;
    }
    m as usize
}

fn gaussian_filter(x: &[f64], h: usize, w: usize, taps: &[f64]) -> Vec<f64> {
    let r = (taps.len() / 2) as i64;
    let mut tmp = vec![0f64; h * w];
    for y in 0..h {
        for xx in 0..w {
            tmp[y * w + xx] = taps.iter().enumerate().map(|(k, t)| t * x[y * w + reflect(xx as i64 + k as i64 - r, w)]).sum();
        }
    }
    let mut out = vec![0f64; h * w];
    for y in 0..h {
        for xx in 0..w {
            out[y * w + xx] = taps.iter().enumerate().map(|(k, t)| t * tmp[reflect(y as i64 + k as i64 - r, h) * w + xx]).sum();
        }
    }
    out
}

/// Structural similarity (mean over channels), as scikit-image with Gaussian weights.
pub fn ssim(a: &Image, b: &Image) -> Result<f64> {
    check(a, b)?;
    let (h, w) = (a.height, a.width);
    let (sigma, r) = (1.5f64, 5usize);
    if h < 2 * r + 1 || w < 2 * r + 1 {
        return Err(Error::Shape { op: "ssim", msg: format!("images must be at least 11x11, got {w}x{h}") });
    }
    let mut taps: Vec<f64> = (0..=2 * r).map(|i| (-0.5 * ((i as f64 - r as f64) / sigma).powi(2)).exp()).collect();
    let s: f64 = taps.iter().sum();
    taps.iter_mut().for_each(|t| *t /= s);
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let hw = h * w;
    let mut total = 0.0;
    for c in 0..a.channels {
        let x: Vec<f64> = a.data[c * hw..(c + 1) * hw].iter().map(|v| unit(*v)).collect();
        let y: Vec<f64> = b.data[c * hw..(c + 1) * hw].iter().map(|v| unit(*v)).collect();
        let prod = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(u, v)| u * v).collect::<Vec<f64>>();
        let (ux, uy) = (gaussian_filter(&x, h, w, &taps), gaussian_filter(&y, h, w, &taps));
        let uxx = gaussian_filter(&prod(&x, &x), h, w, &taps);
        let uyy = gaussian_filter(&prod(&y, &y), h, w, &taps);
        let uxy = gaussian_filter(&prod(&x, &y), h, w, &taps);
        let mut sum = 0.0;
        let mut count = 0usize;
        for yy in r..h - r {
            for xx in r..w - r {
                let i = yy * w + xx;
                let (vx, vy, vxy) = (uxx[i] - ux[i] * ux[i], uyy[i] - uy[i] * uy[i], uxy[i] - ux[i] * uy[i]);
                let s = ((2.0 * ux[i] * uy[i] + c1) * (2.0 * vxy + c2)) / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2));
                sum += s;
                count += 1;
            }
        }
        total += sum / count as f64;
    }
    Ok(total / a.channels as f64)
}
