//! JPEG compression as a measurement (`wgsl/jpeg.wgsl`): y = decode(encode(x)) at quality QF with the IJG
//! tables, 4:2:0 or 4:4:4 chroma and 8-bit output; the gradient passes the rounding straight through.

use super::Operator;
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::JPEG;

/// The IJG (JPEG standard, Annex K) luminance table, row-major.
const LUMA: [u32; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109,
    103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// The IJG chrominance table, row-major.
const CHROMA: [u32; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

/// The quantisation tables at quality `qf` (1–100) as libjpeg scales them: luma then chroma, 64 each.
pub fn quantisation_tables(qf: u32) -> Result<[f32; 128]> {
    if !(1..=100).contains(&qf) {
        return Err(Error::Invalid { op: "jpeg", msg: format!("quality {qf} is outside 1 to 100") });
    }
    let s = if qf < 50 { 5000 / qf } else { 200 - 2 * qf };
    let mut t = [0f32; 128];
    for (i, base) in LUMA.iter().chain(CHROMA.iter()).enumerate() {
        t[i] = ((base * s + 50) / 100).clamp(1, 255) as f32;
    }
    Ok(t)
}

/// JPEG at quality `qf` on RGB images whose sides are multiples of 8·F (F = 2 for 4:2:0, 1 for 4:4:4).
/// H⁺y = y (the decoded image).
pub struct Jpeg {
    qf: u32,
    subsample: bool,
    tables: Tensor,
}

impl Jpeg {
    /// The operator for quality `qf` (1–100); `subsample`: 4:2:0 chroma (libjpeg's and most cameras'
    /// default), else 4:4:4.
    pub fn new(gpu: &Gpu, qf: u32, subsample: bool) -> Result<Jpeg> {
        let t = quantisation_tables(qf)?;
        Ok(Jpeg { qf, subsample, tables: gpu.upload(&[128], &t)? })
    }

    fn factor(&self) -> usize {
        if self.subsample {
            2
        } else {
            1
        }
    }

    fn dims(&self, x: &Tensor) -> Result<[usize; 4]> {
        let s: [usize; 4] = x.shape().try_into().map_err(|_| Error::Shape { op: "jpeg", msg: format!("expected [N, 3, H, W], got {:?}", x.shape()) })?;
        let m = 8 * self.factor();
        if s[1] != 3 || !s[2].is_multiple_of(m) || !s[3].is_multiple_of(m) || s[2] == 0 || s[3] == 0 {
            return Err(Error::Shape {
                op: "jpeg",
                msg: format!("JPEG needs RGB images with sides that are multiples of {m}, got {}x{} with {} channel(s)", s[3], s[2], s[1]),
            });
        }
        Ok(s)
    }

    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        gpu: &Gpu,
        entry: &'static str,
        n: usize,
        [_, _, h, w]: [usize; 4],
        round: bool,
        scale: f32,
        a: &Tensor,
        b: &Tensor,
        out: &Tensor,
        group: u64,
    ) -> Result<()> {
        gpu.launch(
            "jpeg",
            &Kernel::new(&JPEG, entry),
            &Params::new().n(n).n(h).n(w).u(round as u32).f(scale).n(self.factor()),
            &[(a, Access::Read), (b, Access::Read), (out, Access::ReadWrite)],
            (n as u64).div_ceil(group),
        )
    }

    /// decode(encode(x)); with `round = false` the quantisation is skipped (the codec's linear part).
    pub fn codec(&self, gpu: &Gpu, x: &Tensor, round: bool) -> Result<Tensor> {
        let s = self.dims(x)?;
        let cb = 8 * self.factor();
        let blocks = s[0] * (s[2] / 8 * (s[3] / 8) + 2 * (s[2] / cb) * (s[3] / cb));
        let ycc = gpu.empty("jpeg", x.shape())?;
        self.launch(gpu, "jpeg_blocks", blocks, s, round, 0.0, x, &self.tables, &ycc, 64)?;
        let out = gpu.empty("jpeg", x.shape())?;
        self.launch(gpu, "ycc_to_rgb", s[0] * s[2] * s[3], s, round, 0.0, &ycc, &ycc, &out, 256)?;
        Ok(out)
    }
}

impl Operator for Jpeg {
    fn name(&self) -> String {
        format!("jpeg (quality {}, {})", self.qf, if self.subsample { "4:2:0" } else { "4:4:4" })
    }
    fn measurement_shape(&self, x: &[usize]) -> Vec<usize> {
        x.to_vec()
    }
    fn forward(&self, gpu: &Gpu, x: &Tensor) -> Result<Tensor> {
        self.codec(gpu, x, true)
    }
    /// Straight-through: Aᵀ(H(x) − y)/M with A the codec without rounding (color transforms and chroma
    /// subsampling; the DCT pair cancels).
    fn grad(&self, gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        let s = self.dims(x)?;
        if y.shape() != x.shape() {
            return Err(Error::Shape { op: "jpeg", msg: format!("measurement {:?} vs image {:?}", y.shape(), x.shape()) });
        }
        let hx = self.forward(gpu, x)?;
        let g = gpu.empty("jpeg", x.shape())?;
        self.launch(gpu, "jpeg_grad", s[0] * s[2] * s[3], s, true, 1.0 / y.numel() as f32, &hx, y, &g, 256)?;
        Ok(g)
    }
    fn pinv(&self, gpu: &Gpu, y: &Tensor) -> Result<Option<Tensor>> {
        crate::ops::copy(gpu, y).map(Some)
    }
    fn adjoint(&self, _gpu: &Gpu, _y: &Tensor) -> Result<Option<Tensor>> {
        Ok(None)
    }
}
