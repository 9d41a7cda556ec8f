//! Host-side generators for operator data: inpainting masks (box, random pixels, free-form brush strokes,
//! from an image), blur kernels (Gaussian, uniform, random motion, from an image) and the 1-D matrices of
//! separable operators (block average, bicubic, blur with zero padding), plus a small pseudo-inverse.
//! Everything is deterministic given its seed.

use crate::error::{Error, Result};
use crate::image::Image;

/// SplitMix64: a tiny seeded generator for masks and kernels (not for the diffusion noise, which is Philox on
/// the GPU).
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// A keep-mask [h, w]: 1 = observed, 0 = missing.
pub type Mask = Vec<f32>;

/// Missing box of `bh`×`bw` pixels at (`top`, `left`).
pub fn box_mask(h: usize, w: usize, top: usize, left: usize, bh: usize, bw: usize) -> Result<Mask> {
    if bh == 0 || bw == 0 || top + bh > h || left + bw > w {
        return Err(Error::Invalid { op: "inpaint-box", msg: format!("box {bh}x{bw} at ({top}, {left}) does not fit a {h}x{w} image") });
    }
    let mut m = vec![1f32; h * w];
    for y in top..top + bh {
        for x in left..left + bw {
            m[y * w + x] = 0.0;
        }
    }
    Ok(m)
}

/// The centre box covering half the height and width.
pub fn centre_box_mask(h: usize, w: usize) -> Result<Mask> {
    box_mask(h, w, h / 4, w / 4, (h / 2).max(1), (w / 2).max(1))
}

/// Each pixel missing independently with probability `fraction` (same for all channels).
pub fn random_mask(h: usize, w: usize, fraction: f64, seed: u64) -> Result<Mask> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(Error::Invalid { op: "inpaint-random", msg: format!("fraction must be in [0, 1), got {fraction}") });
    }
    let mut r = SplitMix::new(seed);
    Ok((0..h * w).map(|_| if r.uniform() < fraction { 0.0 } else { 1.0 }).collect())
}

/// Free-form brush strokes: 2–5 strokes of 4–9 segments each, brush radius ~h/16, drawn until at least
/// 15 % of the image is missing (and at most 60 %).
pub fn freeform_mask(h: usize, w: usize, seed: u64) -> Result<Mask> {
    let mut r = SplitMix::new(seed);
    let mut m = vec![1f32; h * w];
    let size = h.min(w) as f64;
    let radius = (size / 16.0).max(1.0);
    let missing = |m: &Vec<f32>| m.iter().filter(|v| **v == 0.0).count() as f64 / (h * w) as f64;
    let strokes = 2 + (r.next_u64() % 4) as usize;
    let mut s = 0;
    while (s < strokes || missing(&m) < 0.15) && missing(&m) < 0.6 && s < 50 {
        let (mut y, mut x) = (r.uniform() * h as f64, r.uniform() * w as f64);
        let segs = 4 + (r.next_u64() % 6) as usize;
        let mut angle = r.uniform() * std::f64::consts::TAU;
        for _ in 0..segs {
            angle += (r.uniform() - 0.5) * 2.0;
            let len = size * (0.1 + 0.2 * r.uniform());
            let (ny, nx) = ((y + len * angle.sin()).clamp(0.0, h as f64 - 1.0), (x + len * angle.cos()).clamp(0.0, w as f64 - 1.0));
            let steps = (len * 2.0).ceil() as usize + 1;
            for k in 0..=steps {
                let f = k as f64 / steps as f64;
                let (cy, cx) = (y + (ny - y) * f, x + (nx - x) * f);
                let (y0, y1) = ((cy - radius).floor().max(0.0) as usize, ((cy + radius).ceil() as usize).min(h - 1));
                let (x0, x1) = ((cx - radius).floor().max(0.0) as usize, ((cx + radius).ceil() as usize).min(w - 1));
                for py in y0..=y1 {
                    for px in x0..=x1 {
                        if (py as f64 - cy).powi(2) + (px as f64 - cx).powi(2) <= radius * radius {
                            m[py * w + px] = 0.0;
                        }
                    }
                }
            }
            (y, x) = (ny, nx);
        }
        s += 1;
    }
    Ok(m)
}

/// A mask from an image (white = keep): mean over channels > 0 (i.e. above mid-grey) keeps the pixel.
pub fn mask_from_image(img: &Image, h: usize, w: usize) -> Result<Mask> {
    if img.height != h || img.width != w {
        return Err(Error::Shape { op: "inpaint-mask", msg: format!("mask is {}x{} but the image is {w}x{h}", img.width, img.height) });
    }
    let hw = h * w;
    let m: Mask = (0..hw)
        .map(|p| {
            let mean = (0..img.channels).map(|c| img.data[c * hw + p]).sum::<f32>() / img.channels as f32;
            if mean > 0.0 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    if m.iter().all(|v| *v == 1.0) {
        return Err(Error::Invalid { op: "inpaint-mask", msg: "the mask is all white: nothing to inpaint".into() });
    }
    if m.iter().all(|v| *v == 0.0) {
        return Err(Error::Invalid { op: "inpaint-mask", msg: "the mask is all black: nothing is observed".into() });
    }
    Ok(m)
}

/// Normalised 1-D Gaussian taps exp(−d²/(2σ²)), d = −size/2 .. size/2 (size odd).
pub fn gaussian_taps(size: usize, sigma: f64) -> Result<Vec<f64>> {
    if size % 2 == 0 || sigma <= 0.0 {
        return Err(Error::Invalid { op: "deblur-gauss", msg: format!("kernel size must be odd and sigma positive (size {size}, sigma {sigma})") });
    }
    let r = (size / 2) as f64;
    let t: Vec<f64> = (0..size).map(|i| (-(i as f64 - r).powi(2) / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = t.iter().sum();
    Ok(t.into_iter().map(|v| v / s).collect())
}

/// A random motion-blur kernel size×size (size odd): a smooth random walk with momentum, splatted
/// bilinearly and normalised to sum 1.
pub fn motion_kernel(size: usize, seed: u64) -> Result<Vec<f32>> {
    if size % 2 == 0 || size < 3 {
        return Err(Error::Invalid { op: "deblur-motion", msg: format!("kernel size must be odd and >= 3, got {size}") });
    }
    let mut r = SplitMix::new(seed);
    let n = 64;
    let mut pts = Vec::with_capacity(n);
    let (mut px, mut py) = (0f64, 0f64);
    let mut a = r.uniform() * std::f64::consts::TAU;
    for _ in 0..n {
        a += 0.35 * r.normal();
        px += a.cos();
        py += a.sin();
        pts.push((px, py));
    }
    let (minx, maxx) = pts.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (miny, maxy) = pts.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let span = (maxx - minx).max(maxy - miny).max(1e-9);
    let scale = (size - 1) as f64 / span;
    let (cx, cy) = ((minx + maxx) / 2.0, (miny + maxy) / 2.0);
    let c = (size - 1) as f64 / 2.0;
    let mut k = vec![0f64; size * size];
    for (x, y) in pts {
        let (fx, fy) = ((x - cx) * scale + c, (y - cy) * scale + c);
        let (x0, y0) = (fx.floor().clamp(0.0, (size - 1) as f64) as usize, fy.floor().clamp(0.0, (size - 1) as f64) as usize);
        let (dx, dy) = ((fx - x0 as f64).clamp(0.0, 1.0), (fy - y0 as f64).clamp(0.0, 1.0));
        let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
        k[y0 * size + x0] += (1.0 - dx) * (1.0 - dy);
        k[y0 * size + x1] += dx * (1.0 - dy);
        k[y1 * size + x0] += (1.0 - dx) * dy;
        k[y1 * size + x1] += dx * dy;
    }
    let s: f64 = k.iter().sum();
    Ok(k.into_iter().map(|v| (v / s) as f32).collect())
}

/// A blur kernel from a grayscale image (brightness = weight), normalised to sum 1. Sides must be odd.
pub fn kernel_from_image(img: &Image) -> Result<Vec<f32>> {
    if img.height != img.width || img.height % 2 == 0 {
        return Err(Error::Invalid { op: "deblur-kernel", msg: format!("kernel image must be square with an odd side, got {}x{}", img.width, img.height) });
    }
    let hw = img.height * img.width;
    let k: Vec<f64> = (0..hw).map(|p| (0..img.channels).map(|c| (img.data[c * hw + p] as f64 + 1.0) / 2.0).sum::<f64>() / img.channels as f64).collect();
    let s: f64 = k.iter().sum();
    if !(s > 1e-6) {
        return Err(Error::Invalid { op: "deblur-kernel", msg: "kernel image is black: it cannot be normalised".into() });
    }
    Ok(k.into_iter().map(|v| (v / s) as f32).collect())
}

/// Row-major [rows, cols] matrix of f64.
#[derive(Clone, Debug)]
pub struct Matrix {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Values, row-major.
    pub data: Vec<f64>,
}

impl Matrix {
    fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix { rows, cols, data: vec![0.0; rows * cols] }
    }
    fn at(&self, r: usize, c: usize) -> f64 {
        self.data[r * self.cols + c]
    }
    /// f32 copy of the values.
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|v| *v as f32).collect()
    }

    /// Block averaging by `f`: n → n / f.
    pub fn block_average(n: usize, f: usize) -> Result<Matrix> {
        if f == 0 || n % f != 0 {
            return Err(Error::Invalid { op: "super-resolution", msg: format!("image side {n} is not a multiple of the factor {f}") });
        }
        let mut m = Matrix::zeros(n / f, n);
        for i in 0..n / f {
            for j in 0..f {
                m.data[i * n + i * f + j] = 1.0 / f as f64;
            }
        }
        Ok(m)
    }

    /// Bicubic (a = −0.5) antialiased downsampling by `f` (kernel stretched by f, edge samples replicated,
    /// rows normalised to sum 1), as Matlab's imresize.
    pub fn bicubic(n: usize, f: usize) -> Result<Matrix> {
        if f == 0 || n % f != 0 {
            return Err(Error::Invalid { op: "super-resolution", msg: format!("image side {n} is not a multiple of the factor {f}") });
        }
        let cubic = |x: f64| {
            let (a, x) = (-0.5, x.abs());
            if x <= 1.0 {
                (a + 2.0) * x.powi(3) - (a + 3.0) * x * x + 1.0
            } else if x < 2.0 {
                a * x.powi(3) - 5.0 * a * x * x + 8.0 * a * x - 4.0 * a
            } else {
                0.0
            }
        };
        let fl = f as f64;
        let mut m = Matrix::zeros(n / f, n);
        for i in 0..n / f {
            let centre = (i as f64 + 0.5) * fl - 0.5;
            let (lo, hi) = ((centre - 2.0 * fl).floor() as i64, (centre + 2.0 * fl).ceil() as i64);
            let mut row = vec![0f64; n];
            for j in lo..=hi {
                let wgt = cubic((j as f64 - centre) / fl);
                row[j.clamp(0, n as i64 - 1) as usize] += wgt;
            }
            let s: f64 = row.iter().sum();
            for j in 0..n {
                m.data[i * n + j] = row[j] / s;
            }
        }
        Ok(m)
    }

    /// "Same" 1-D convolution with symmetric `taps` and zero padding: n → n.
    pub fn convolution(n: usize, taps: &[f64]) -> Matrix {
        let r = (taps.len() / 2) as i64;
        let mut m = Matrix::zeros(n, n);
        for i in 0..n as i64 {
            for (k, t) in taps.iter().enumerate() {
                let j = i + k as i64 - r;
                if j >= 0 && j < n as i64 {
                    m.data[(i * n as i64 + j) as usize] += t;
                }
            }
        }
        m
    }

    /// Pseudo-inverse. Full row rank (downsampling): Aᵀ(AAᵀ + δI)⁻¹; otherwise (AᵀA + δI)⁻¹Aᵀ, with
    /// δ = `rel_reg` · mean diagonal of the Gram matrix (0 gives the exact pseudo-inverse of a well-posed
    /// matrix; blur needs a little regularisation). Uses the rows' nonzero spans: for the banded matrices
    /// of this module (bandwidth b) the cost is O(n²·b) instead of O(n³) (1-D blur at n = 1024: ~0.1 s).
    pub fn pinv(&self, rel_reg: f64) -> Result<Matrix> {
        if self.data.len() != self.rows * self.cols || self.data.iter().any(|v| !v.is_finite()) || !(rel_reg >= 0.0) {
            return Err(Error::Invalid {
                op: "pseudo-inverse",
                msg: format!("need a finite {}x{} matrix ({} values given) and a regularisation ≥ 0", self.rows, self.cols, self.data.len()),
            });
        }
        if self.rows > self.cols {
            // (AᵀA + δI)⁻¹Aᵀ is the transpose of Bᵀ(BBᵀ + δI)⁻¹ for B = Aᵀ (the wide case, same δ).
            return Ok(self.transposed().pinv(rel_reg)?.transposed());
        }
        let (k, n) = (self.rows, self.cols);
        if k == 0 {
            return Ok(Matrix::zeros(n, 0));
        }
        let spans = self.row_spans();
        // G = AAᵀ + δI, banded: row a meets row b only where their spans overlap.
        let half = (0..k).map(|a| (0..a).find(|&b| overlaps(spans[a], spans[b])).map_or(0, |b| a - b)).max().unwrap_or(0);
        let mut g = Band::zeros(k, half);
        for a in 0..k {
            for b in a.saturating_sub(half)..=a {
                let (lo, hi) = (spans[a].0.max(spans[b].0), spans[a].1.min(spans[b].1));
                let s: f64 = (lo..hi.max(lo)).map(|j| self.at(a, j) * self.at(b, j)).sum();
                g.set(a, b, s);
            }
        }
        let mean_diag = (0..k).map(|i| g.get(i, i)).sum::<f64>() / k as f64;
        for i in 0..k {
            g.set(i, i, g.get(i, i) + rel_reg * mean_diag);
        }
        let l = g.cholesky()?;
        // Row j of the result is (G⁻¹ a_j)ᵀ for column a_j of A (G is symmetric): two banded solves per
        // row, the rows shared out over the CPU's threads.
        let mut out = Matrix::zeros(n, k);
        let solve_rows = |first: usize, rows: &mut [f64]| {
            for (r, z) in rows.chunks_mut(k).enumerate() {
                let j = first + r;
                z.iter_mut().enumerate().for_each(|(i, v)| *v = if spans[i].0 <= j && j < spans[i].1 { self.at(i, j) } else { 0.0 });
                l.solve(z);
            }
        };
        // One thread where there is no other (wasm32 has no threads to spawn).
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get()).clamp(1, n.max(1));
        if threads == 1 {
            solve_rows(0, &mut out.data);
        } else {
            let per = n.div_ceil(threads);
            std::thread::scope(|scope| {
                for (part, rows) in out.data.chunks_mut(per * k).enumerate() {
                    scope.spawn(move || solve_rows(part * per, rows));
                }
            });
        }
        Ok(out)
    }

    fn transposed(&self) -> Matrix {
        let mut t = Matrix::zeros(self.cols, self.rows);
        for r in 0..self.rows {
            for c in 0..self.cols {
                t.data[c * self.rows + r] = self.at(r, c);
            }
        }
        t
    }

    /// Per row, the half-open column range outside which it is zero (an all-zero row gets (0, 0)).
    fn row_spans(&self) -> Vec<(usize, usize)> {
        self.data
            .chunks(self.cols)
            .map(|r| match (r.iter().position(|v| *v != 0.0), r.iter().rposition(|v| *v != 0.0)) {
                (Some(lo), Some(hi)) => (lo, hi + 1),
                _ => (0, 0),
            })
            .collect()
    }
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0.max(b.0) < a.1.min(b.1)
}

/// A symmetric (or lower-triangular) k×k band matrix with `half` sub-diagonals, lower part stored by row.
struct Band {
    k: usize,
    half: usize,
    /// Row i holds entries (i, i - half ..= i) at offsets 0 ..= half.
    data: Vec<f64>,
}

impl Band {
    fn zeros(k: usize, half: usize) -> Band {
        Band { k, half, data: vec![0.0; k * (half + 1)] }
    }
    /// Entry (i, j) for j ≤ i ≤ j + half.
    fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * (self.half + 1) + self.half + j - i]
    }
    fn set(&mut self, i: usize, j: usize, v: f64) {
        self.data[i * (self.half + 1) + self.half + j - i] = v;
    }

    /// The lower Cholesky factor L (G = LLᵀ) of this symmetric positive definite band matrix.
    fn cholesky(&self) -> Result<Band> {
        let scale = (0..self.k).map(|i| self.get(i, i).abs()).fold(0.0, f64::max);
        let mut l = Band::zeros(self.k, self.half);
        for i in 0..self.k {
            for j in i.saturating_sub(self.half)..=i {
                let from = i.saturating_sub(self.half).max(j.saturating_sub(self.half));
                let s = self.get(i, j) - (from..j).map(|t| l.get(i, t) * l.get(j, t)).sum::<f64>();
                if i == j {
                    if s <= scale * 1e-12 {
                        return Err(Error::Invalid { op: "pseudo-inverse", msg: "matrix is singular (add regularisation)".into() });
                    }
                    l.set(i, i, s.sqrt());
                } else {
                    l.set(i, j, s / l.get(j, j));
                }
            }
        }
        Ok(l)
    }

    /// Solves LLᵀ z = b in place, for this lower factor L.
    fn solve(&self, z: &mut [f64]) {
        for i in 0..self.k {
            let from = i.saturating_sub(self.half);
            let s = z[i] - (from..i).map(|t| self.get(i, t) * z[t]).sum::<f64>();
            z[i] = s / self.get(i, i);
        }
        for i in (0..self.k).rev() {
            let to = (i + self.half + 1).min(self.k);
            let s = z[i] - (i + 1..to).map(|t| self.get(t, i) * z[t]).sum::<f64>();
            z[i] = s / self.get(i, i);
        }
    }
}
