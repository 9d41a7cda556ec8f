//! Singular value decompositions H = U Σ Vᵀ of the linear operators that have a cheap one, for DDRM
//! (Kawar et al., NeurIPS 2022): identity (denoising), masking (inpainting), colorization (a 3×3 channel
//! rotation per pixel) and the separable operators R_y · X · R_xᵀ (super-resolution, Gaussian and uniform
//! blur), whose SVD is the Kronecker product of the two 1-D SVDs ([`matrix_svd`], computed once on the CPU).
//!
//! Spectral coordinates Vᵀx are laid out as an image of the same shape [N, C, H, W]; [`Svd::singulars`]
//! gives the singular value of each coordinate ([C·H·W], shared by the batch; 0 where the coordinate is not
//! observed), and [`Svd::ut`] places Uᵀy in the same layout (meaningful only where the singular value is
//! not 0).

use super::patterns::Matrix;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::ops::{self, Bias, Conv2d, ConvWeights, Epilogue, MatView, Matmul};

/// 1-D singular values below this are set to 0, as DDRM's authors do for blur and bicubic downsampling
/// (`ZERO = 3e-2` in `bahjat-kawar/ddrm`, `functions/svd_replacement.py`): dividing y by them would only
/// amplify noise.
pub const SVD_ZERO: f64 = 3e-2;

/// The SVD of a dense matrix A [m, n]: A = U · diag(s) · Vᵀ with U [m, m], V [n, n] orthogonal and `s` (n
/// values) sorted in decreasing order, zero past the rank (at most min(m, n) are non-zero).
#[derive(Clone, Debug)]
pub struct MatrixSvd {
    /// Left singular vectors as columns, [m, m]; a column whose singular value is 0 is 0.
    pub u: Matrix,
    /// Singular values, n of them, decreasing.
    pub s: Vec<f64>,
    /// Right singular vectors as columns, [n, n].
    pub v: Matrix,
}

/// One-sided Jacobi SVD (Hestenes) in f64: rotates pairs of columns of A·V until they are orthogonal; the
/// column norms are then the singular values. Accurate to ~1e-14 relative for the matrices used here
/// (sides up to a few thousand; cost O(n²·(m + n)) per sweep, ≤ 30 sweeps).
/// A symmetric matrix (the blur matrices) goes through [`symmetric_svd`] instead (~20× faster at n = 1024),
/// a well-conditioned wide one (SR, bicubic) through the eigendecomposition of A·Aᵀ and a QR completion.
pub fn matrix_svd(a: &Matrix) -> Result<MatrixSvd> {
    let (m, n) = (a.rows, a.cols);
    if m == 0 || n == 0 || a.data.len() != m * n || a.data.iter().any(|v| !v.is_finite()) {
        return Err(Error::Invalid { op: "svd", msg: format!("need a finite, non-empty {m}x{n} matrix") });
    }
    if m == n && (0..n).all(|i| (0..i).all(|j| a.data[i * n + j] == a.data[j * n + i])) {
        return symmetric_svd(a);
    }
    if m < n {
        if let Some(svd) = wide_svd(a)? {
            return Ok(svd);
        }
    }
    // Columns of W = A·V and of V, each stored contiguously.
    let mut w: Vec<Vec<f64>> = (0..n).map(|j| (0..m).map(|i| a.data[i * n + j]).collect()).collect();
    let mut v: Vec<Vec<f64>> = (0..n).map(|j| (0..n).map(|i| if i == j { 1.0 } else { 0.0 }).collect()).collect();
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
    let rotate = |cols: &mut Vec<Vec<f64>>, p: usize, q: usize, c: f64, s: f64| {
        let (lo, hi) = cols.split_at_mut(q);
        for (x, y) in lo[p].iter_mut().zip(hi[0].iter_mut()) {
            let (xp, yq) = (*x, *y);
            *x = c * xp - s * yq;
            *y = s * xp + c * yq;
        }
    };
    // Columns that have become negligible (null space of a wide matrix) are not rotated further, and a pair
    // counts as orthogonal at the dot products' round-off level.
    let frob2: f64 = a.data.iter().map(|v| v * v).sum();
    let negligible = frob2 * 1e-26;
    let tol = (m.max(8) as f64) * f64::EPSILON;
    let mut converged = false;
    for _sweep in 0..30 {
        let mut rotated = false;
        for p in 0..n {
            for q in p + 1..n {
                let (alpha, beta, gamma) = (dot(&w[p], &w[p]), dot(&w[q], &w[q]), dot(&w[p], &w[q]));
                if alpha <= negligible || beta <= negligible || gamma.abs() <= tol * (alpha * beta).sqrt() {
                    continue;
                }
                rotated = true;
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                rotate(&mut w, p, q, c, s);
                rotate(&mut v, p, q, c, s);
            }
        }
        if !rotated {
            converged = true;
            break;
        }
    }
    if !converged {
        return Err(Error::Invalid { op: "svd", msg: format!("Jacobi SVD of a {m}x{n} matrix did not converge in 30 sweeps") });
    }
    let norms: Vec<f64> = w.iter().map(|c| dot(c, c).sqrt()).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| norms[y].total_cmp(&norms[x]));
    let top = norms[order[0]];
    let rank = m.min(n);
    let mut out = MatrixSvd { u: Matrix { rows: m, cols: m, data: vec![0.0; m * m] }, s: vec![0.0; n], v: Matrix { rows: n, cols: n, data: vec![0.0; n * n] } };
    for (k, &j) in order.iter().enumerate() {
        for i in 0..n {
            out.v.data[i * n + k] = v[j][i];
        }
        // Past the rank, or at round-off level, the value is 0 and the column of U is left 0.
        if k < rank && norms[j] > 1e-12 * top {
            out.s[k] = norms[j];
            for i in 0..m {
                out.u.data[i * m + k] = w[j][i] / norms[j];
            }
        }
    }
    Ok(out)
}

/// The SVD of a well-conditioned wide matrix A [m, n], m < n (SR and bicubic downsampling), or None when
/// it is not well-conditioned enough for this route (then [`matrix_svd`] takes Jacobi sweeps): U and s² from
/// the eigendecomposition of the small A·Aᵀ [m, m], the row space V_r = Aᵀ·U·Σ⁻¹, and the rest of V from a
/// Householder QR of V_r (its last n − m columns span the null space). Squaring A loses accuracy on small
/// singular values, so the route is taken only when every value is at least 1e-3 of the largest, and its
/// result is checked: U Σ V_rᵀ must give back A to 1e-12 of A's largest entry. O(m²·n + n²·m) instead of
/// O(n²·(m + n)) per sweep: bicubic ×4 at n = 1024 0.49 s instead of 7.1 s, ×2 1.3 s instead of 19 s.
pub fn wide_svd(a: &Matrix) -> Result<Option<MatrixSvd>> {
    let (m, n) = (a.rows, a.cols);
    if m == 0 || m >= n || a.data.len() != m * n || a.data.iter().any(|v| !v.is_finite()) {
        return Err(Error::Invalid { op: "svd", msg: format!("need a finite {m}x{n} matrix with fewer rows than columns") });
    }
    let row = |i: usize| &a.data[i * n..(i + 1) * n];
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
    // A·Aᵀ, symmetric; the eigen solver takes it as its own transpose.
    let mut q = vec![0f64; m * m];
    for i in 0..m {
        for j in 0..=i {
            let v = dot(row(i), row(j));
            q[i * m + j] = v;
            q[j * m + i] = v;
        }
    }
    let (mut d, mut e) = (vec![0f64; m], vec![0f64; m]);
    tridiagonalise(m, &mut q, &mut d, &mut e);
    ql_iterations(m, &mut q, &mut d, &mut e)?;
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&x, &y| d[y].total_cmp(&d[x]));
    let s: Vec<f64> = order.iter().map(|&j| d[j].max(0.0).sqrt()).collect();
    if s[0] == 0.0 || s[m - 1] < 1e-3 * s[0] {
        return Ok(None);
    }
    // Row space: column k of V_r = Aᵀ u_k / s_k, each stored contiguously.
    let mut vr: Vec<Vec<f64>> = vec![vec![0f64; n]; m];
    for (k, &j) in order.iter().enumerate() {
        let u = &q[j * m..(j + 1) * m];
        for (i, &ui) in u.iter().enumerate() {
            for (v, &aij) in vr[k].iter_mut().zip(row(i)) {
                *v += ui * aij;
            }
        }
        vr[k].iter_mut().for_each(|v| *v /= s[k]);
    }
    // Householder QR of V_r [n, m]: reflectors h_k (zero above row k) with V_r = H_0 ⋯ H_{m−1} R. Q's first m
    // columns are V_r's up to sign (V_r is orthonormal), the others complete the basis.
    let mut work = vr.clone();
    let mut reflectors: Vec<Vec<f64>> = Vec::with_capacity(m);
    let mut signs = vec![1f64; m];
    for k in 0..m {
        let x = &work[k];
        let norm = x[k..].iter().map(|v| v * v).sum::<f64>().sqrt();
        let alpha = if x[k] > 0.0 { -norm } else { norm };
        let mut h = vec![0f64; n];
        h[k..].copy_from_slice(&x[k..]);
        h[k] -= alpha;
        let hn = dot(&h[k..], &h[k..]);
        // R_kk = alpha = ±1 (V_r is orthonormal): (V_r)_k = alpha · column k of Q.
        signs[k] = alpha.signum();
        if hn > 0.0 {
            let scale = (2.0 / hn).sqrt();
            h[k..].iter_mut().for_each(|v| *v *= scale);
            for col in work.iter_mut().skip(k) {
                let t = dot(&h[k..], &col[k..]);
                col[k..].iter_mut().zip(&h[k..]).for_each(|(c, hv)| *c -= t * hv);
            }
        }
        reflectors.push(h);
    }
    let mut out = MatrixSvd { u: Matrix { rows: m, cols: m, data: vec![0.0; m * m] }, s: vec![0.0; n], v: Matrix { rows: n, cols: n, data: vec![0.0; n * n] } };
    let mut col = vec![0f64; n];
    for c in 0..n {
        // Column c of Q = H_0 ⋯ H_{m−1} e_c.
        col.fill(0.0);
        col[c] = 1.0;
        for (k, h) in reflectors.iter().enumerate().rev() {
            let t = dot(&h[k..], &col[k..]);
            if t != 0.0 {
                col[k..].iter_mut().zip(&h[k..]).for_each(|(x, hv)| *x -= t * hv);
            }
        }
        let sign = if c < m { signs[c] } else { 1.0 };
        for (i, &x) in col.iter().enumerate() {
            out.v.data[i * n + c] = sign * x;
        }
    }
    for (k, &j) in order.iter().enumerate() {
        out.s[k] = s[k];
        for i in 0..m {
            out.u.data[i * m + k] = q[j * m + i];
        }
    }
    // The check: A = U Σ V_rᵀ with V_r as returned.
    let top = a.data.iter().fold(0f64, |t, v| t.max(v.abs()));
    for i in 0..m {
        for jcol in 0..n {
            let r: f64 = (0..m).map(|k| out.u.data[i * m + k] * out.s[k] * out.v.data[jcol * n + k]).sum();
            if (r - a.data[i * n + jcol]).abs() > 1e-12 * top.max(f64::MIN_POSITIVE) {
                return Ok(None);
            }
        }
    }
    Ok(Some(out))
}

/// The SVD of a symmetric matrix A [n, n] from its eigendecomposition A = Q Λ Qᵀ (Householder reduction to
/// tridiagonal form, then implicit QL iterations, as EISPACK's tred2/tql2): s = |λ| sorted, V = Q,
/// U = Q · sign(Λ); a value at round-off level (≤ 1e-12 of the largest) is 0 with a zero column of U, as in
/// [`matrix_svd`]. O(n³) once (1-D Gaussian blur at n = 1024: 0.96 s instead of 20 s of Jacobi sweeps).
pub fn symmetric_svd(a: &Matrix) -> Result<MatrixSvd> {
    let n = a.rows;
    if n == 0 || a.cols != n || a.data.len() != n * n || a.data.iter().any(|v| !v.is_finite()) {
        return Err(Error::Invalid { op: "svd", msg: format!("need a finite, non-empty square matrix, got {}x{}", a.rows, a.cols) });
    }
    // q[j * n + k] is Q[k][j]: each eigenvector (column of Q) is contiguous, so the O(n³) loops stream.
    let mut q = a.data.clone(); // symmetric: its transpose is itself
    let (mut d, mut e) = (vec![0f64; n], vec![0f64; n]);
    tridiagonalise(n, &mut q, &mut d, &mut e);
    ql_iterations(n, &mut q, &mut d, &mut e)?;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| d[y].abs().total_cmp(&d[x].abs()));
    let top = d[order[0]].abs();
    let mut out = MatrixSvd { u: Matrix { rows: n, cols: n, data: vec![0.0; n * n] }, s: vec![0.0; n], v: Matrix { rows: n, cols: n, data: vec![0.0; n * n] } };
    for (k, &j) in order.iter().enumerate() {
        let sign = if d[j] < 0.0 { -1.0 } else { 1.0 };
        let keep = d[j].abs() > 1e-12 * top;
        if keep {
            out.s[k] = d[j].abs();
        }
        for i in 0..n {
            let v = q[j * n + i];
            out.v.data[i * n + k] = v;
            if keep {
                out.u.data[i * n + k] = sign * v;
            }
        }
    }
    Ok(out)
}

/// Householder reduction of the symmetric matrix in `q` (q[j·n + k] = Q[k][j]) to tridiagonal form: on return
/// `d` holds the diagonal, `e[1..]` the sub-diagonal, and `q` the accumulated orthogonal transformation.
fn tridiagonalise(n: usize, q: &mut [f64], d: &mut [f64], e: &mut [f64]) {
    // Q[k][j] = q[j * n + k].
    let at = |j: usize, k: usize| j * n + k;
    for j in 0..n {
        d[j] = q[at(j, n - 1)];
    }
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|v| v.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = q[at(j, i - 1)];
                q[at(j, i)] = 0.0;
                q[at(i, j)] = 0.0;
            }
        } else {
            for v in &mut d[..i] {
                *v /= scale;
                h += *v * *v;
            }
            let f = d[i - 1];
            let g = if f > 0.0 { -h.sqrt() } else { h.sqrt() };
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].fill(0.0);
            for j in 0..i {
                let f = d[j];
                q[at(i, j)] = f;
                let mut g = e[j] + q[at(j, j)] * f;
                for k in j + 1..i {
                    let qkj = q[at(j, k)];
                    g += qkj * d[k];
                    e[k] += qkj * f;
                }
                e[j] = g;
            }
            let mut f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                let (f, g) = (d[j], e[j]);
                for k in j..i {
                    q[at(j, k)] -= f * e[k] + g * d[k];
                }
                d[j] = q[at(j, i - 1)];
                q[at(j, i)] = 0.0;
            }
        }
        d[i] = h;
    }
    for i in 0..n - 1 {
        q[at(i, n - 1)] = q[at(i, i)];
        q[at(i, i)] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = q[at(i + 1, k)] / h;
            }
            for j in 0..=i {
                let g: f64 = (0..=i).map(|k| q[at(i + 1, k)] * q[at(j, k)]).sum();
                for k in 0..=i {
                    q[at(j, k)] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            q[at(i + 1, k)] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = q[at(j, n - 1)];
        q[at(j, n - 1)] = 0.0;
    }
    q[at(n - 1, n - 1)] = 1.0;
    e[0] = 0.0;
}

/// Implicit QL iterations on the tridiagonal matrix (`d`, `e` from [`tridiagonalise`]), rotating the columns
/// of `q` along: on return `d` holds the eigenvalues and column j of Q (`q[j·n ..]`) the j-th eigenvector.
fn ql_iterations(n: usize, q: &mut [f64], d: &mut [f64], e: &mut [f64]) -> Result<()> {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let (mut f, mut tst1) = (0.0f64, 0.0f64);
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let m = (l..n).find(|&m| e[m].abs() <= f64::EPSILON * tst1).unwrap_or(n - 1);
        if m > l {
            let mut iterations = 0;
            loop {
                iterations += 1;
                if iterations > 60 {
                    return Err(Error::Invalid { op: "svd", msg: format!("QL iterations on a {n}x{n} symmetric matrix did not converge") });
                }
                let g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let h = g - d[l];
                for v in &mut d[l + 2..] {
                    *v -= h;
                }
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0f64, 1.0f64, 1.0f64);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0f64, 0.0f64);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    let h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (lo, hi) = q.split_at_mut((i + 1) * n);
                    for (qi, qi1) in lo[i * n..].iter_mut().zip(&mut hi[..n]) {
                        let h = *qi1;
                        *qi1 = s * *qi + c * h;
                        *qi = c * *qi - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= f64::EPSILON * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    Ok(())
}

/// Basis changes of one operator family (see [`Svd`]).
enum Basis {
    /// U = V = I (denoising, inpainting).
    Identity,
    /// A per-pixel channel rotation: Vᵀ, V and Uᵀ as 1×1 convolutions (colorization).
    Channels { vt: ConvWeights, v: ConvWeights, ut: ConvWeights },
    /// Kronecker products of 1-D bases: Vᵀx = V_yᵀ X V_x, Uᵀy = U_yᵀ Y U_x zero-padded to [H, W].
    Separable { vy: Tensor, vx: Tensor, uy: Tensor, ux: Tensor, ho: usize, wo: usize },
}

/// The SVD H = U Σ Vᵀ of a linear operator on images [N, C, H, W] (see the module documentation).
pub struct Svd {
    chw: [usize; 3],
    singulars: Tensor,
    basis: Basis,
}

impl Svd {
    /// U = V = I with singular values `s` [C·H·W] (1 for the identity, the keep-mask for inpainting).
    pub(crate) fn identity(gpu: &Gpu, chw: [usize; 3], s: &[f32]) -> Result<Svd> {
        Svd::with(gpu, chw, s, Basis::Identity)
    }

    /// Colorization: gray = mean of RGB = (1/√3)·(q₁·x) with q₁ = (1, 1, 1)/√3; V's other rows complete an
    /// orthonormal basis of the channels. Singular value 1/√3 on channel 0, 0 on channels 1 and 2.
    pub(crate) fn colorize(gpu: &Gpu, h: usize, w: usize) -> Result<Svd> {
        let (r3, r2, r6) = (1.0 / 3f32.sqrt(), 1.0 / 2f32.sqrt(), 1.0 / 6f32.sqrt());
        let q = [r3, r3, r3, r2, -r2, 0.0, r6, r6, -2.0 * r6]; // rows of Vᵀ
        let qt: Vec<f32> = (0..9).map(|i| q[(i % 3) * 3 + i / 3]).collect();
        let pack = |shape: &[usize], v: &[f32]| ops::pack_conv(gpu, &gpu.upload(shape, v)?, false);
        let mut s = vec![0.0; 3 * h * w];
        s[..h * w].fill(r3);
        let basis = Basis::Channels { vt: pack(&[3, 3, 1, 1], &q)?, v: pack(&[3, 3, 1, 1], &qt)?, ut: pack(&[3, 1, 1, 1], &[1.0, 0.0, 0.0])? };
        Svd::with(gpu, [3, h, w], &s, basis)
    }

    /// The separable operator X ↦ R_y · X · R_xᵀ on every channel plane of C channels; 1-D singular values
    /// below [`SVD_ZERO`] count as 0.
    pub(crate) fn separable(gpu: &Gpu, c: usize, ry: &Matrix, rx: &Matrix) -> Result<Svd> {
        let (sy, sx) = (matrix_svd(ry)?, matrix_svd(rx)?);
        let (h, w) = (ry.cols, rx.cols);
        let mut s = vec![0f32; c * h * w];
        for i in 0..h {
            for j in 0..w {
                let (a, b) = (sy.s[i], sx.s[j]);
                let v = if a < SVD_ZERO || b < SVD_ZERO { 0.0 } else { a * b };
                for ch in 0..c {
                    s[(ch * h + i) * w + j] = v as f32;
                }
            }
        }
        // Uᵀ padded to [n, m]: row k < m is column k of U, rows past m are 0.
        let padded_ut = |u: &Matrix, n: usize| -> Vec<f32> {
            let m = u.rows;
            let mut out = vec![0f32; n * m];
            for k in 0..m.min(n) {
                for i in 0..m {
                    out[k * m + i] = u.data[i * m + k] as f32;
                }
            }
            out
        };
        let basis = Basis::Separable {
            vy: gpu.upload(&[h, h], &sy.v.to_f32())?,
            vx: gpu.upload(&[w, w], &sx.v.to_f32())?,
            uy: gpu.upload(&[h, ry.rows], &padded_ut(&sy.u, h))?,
            ux: gpu.upload(&[w, rx.rows], &padded_ut(&sx.u, w))?,
            ho: ry.rows,
            wo: rx.rows,
        };
        Svd::with(gpu, [c, h, w], &s, basis)
    }

    fn with(gpu: &Gpu, chw: [usize; 3], s: &[f32], basis: Basis) -> Result<Svd> {
        Ok(Svd { chw, singulars: gpu.upload(&[s.len()], s)?, basis })
    }

    /// The singular value of every spectral coordinate, [C·H·W] (0 where unobserved).
    pub fn singulars(&self) -> &Tensor {
        &self.singulars
    }

    fn check(&self, op: &'static str, t: &Tensor, c: usize, h: usize, w: usize) -> Result<usize> {
        let s = t.shape();
        if s.len() != 4 || s[1..] != [c, h, w] {
            return Err(Error::Shape { op, msg: format!("expected [N, {c}, {h}, {w}], got {s:?}") });
        }
        Ok(s[0])
    }

    /// Spectral coordinates Vᵀx of images x [N, C, H, W], same shape.
    pub fn vt(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        let [c, h, w] = self.chw;
        self.check("svd vt", x, c, h, w)?;
        match &self.basis {
            Basis::Identity => ops::copy(gpu, x),
            Basis::Channels { vt, .. } => ops::conv2d_packed(gpu, x, vt, Conv2d::same(1), &Epilogue::bias(None)),
            Basis::Separable { vy, vx, .. } => sandwich(gpu, x, (vy, MatView::transposed(h, h).shared(), h, h), (vx, MatView::rows(w, w), w, w)),
        }
    }

    /// Images V·z from spectral coordinates z [N, C, H, W] (the inverse of [`Svd::vt`]).
    pub fn v(&self, gpu: &Gpu, z: &Tensor) -> Result<Tensor> {
        let [c, h, w] = self.chw;
        self.check("svd v", z, c, h, w)?;
        match &self.basis {
            Basis::Identity => ops::copy(gpu, z),
            Basis::Channels { v, .. } => ops::conv2d_packed(gpu, z, v, Conv2d::same(1), &Epilogue::bias(None)),
            Basis::Separable { vy, vx, .. } => sandwich(gpu, z, (vy, MatView::rows(h, h).shared(), h, h), (vx, MatView::transposed(w, w), w, w)),
        }
    }

    /// Uᵀy for measurements y (the operator's measurement shape), in the spectral layout [N, C, H, W]; only
    /// the coordinates with a non-zero singular value carry information.
    pub fn ut(&self, gpu: &Gpu, y: &Tensor) -> Result<Tensor> {
        let [c, h, w] = self.chw;
        match &self.basis {
            Basis::Identity => {
                self.check("svd ut", y, c, h, w)?;
                ops::copy(gpu, y)
            }
            Basis::Channels { ut, .. } => {
                self.check("svd ut", y, 1, h, w)?;
                ops::conv2d_packed(gpu, y, ut, Conv2d::same(1), &Epilogue::bias(None))
            }
            Basis::Separable { uy, ux, ho, wo, .. } => {
                self.check("svd ut", y, c, *ho, *wo)?;
                sandwich(gpu, y, (uy, MatView::rows(h, *ho).shared(), h, *ho), (ux, MatView::transposed(*wo, w), w, *wo))
            }
        }
    }
}

/// out[p] = A · X[p] · B for planes X [P, hi, wi], with the views A [ho, hi] and B [wi, wo] (each
/// `MatView::rows` of a row-major matrix or `MatView::transposed` of one stored the other way).
pub(super) fn sandwich(
    gpu: &Gpu,
    x: &Tensor,
    (a, av, ho, hi): (&Tensor, MatView, usize, usize),
    (b, bv, wo, wi): (&Tensor, MatView, usize, usize),
) -> Result<Tensor> {
    let s = x.shape();
    let planes = s[0] * s[1];
    // T = X · Bᵀ over all rows of all planes: [P·hi, wi] x [wi, wo].
    let t = ops::matmul(gpu, x, b, Bias::None, &Matmul { batch: 1, m: planes * hi, n: wo, k: wi, a: MatView::rows(planes * hi, wi), b: bv, alpha: 1.0 }, None)?;
    // Y[p] = A · T[p]: [ho, hi] x [hi, wo] per plane.
    let y = ops::matmul(gpu, a, &t, Bias::None, &Matmul { batch: planes, m: ho, n: wo, k: hi, a: av, b: MatView::rows(hi, wo), alpha: 1.0 }, None)?;
    y.reshape(&[s[0], s[1], ho, wo])
}
