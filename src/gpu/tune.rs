//! Convolution kernels and the register tiles of the workgroup-tiled one (`wgsl/conv_gemm.wgsl`): the
//! candidates, and the choice per problem-size class made by [`Unet::autotune`](crate::Unet::autotune)
//! (default until then).

use std::collections::HashMap;

/// A thread's register tile in the tiled convolution: `tm` output channels × `tn` pixels; the workgroup
/// (256 threads) then covers (16·tm) × (16·tn) outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileConfig {
    /// Output channels per thread (1, 2, 4 or 8; 4 or 8 with `vec4`).
    pub tm: usize,
    /// Output pixels per thread (1, 2, 4 or 8; 4 or 8 with `vec4`).
    pub tn: usize,
    /// The vec4 variant (`conv_gemm4` in `wgsl/conv_gemm.wgsl`): sums in named 4 × 4 blocks, workgroup memory
    /// read as vec4s; otherwise `conv_gemm`, scalar reads and sums indexed by loop counters.
    pub vec4: bool,
    /// Slices of k (split-K, vec4 only; 1 = none): for layers with few output tiles (e.g. 512 channels at
    /// 8×8: 8 workgroups of 64 × 64), each slice's workgroups sum a part of k and a second pass
    /// (`wgsl/conv_splitk.wgsl`) adds them. Fewer are used where k or memory is short.
    pub splits: usize,
}

impl TileConfig {
    /// The tile used before (or without) autotuning — in the browser, which does not autotune: 64 × 64 per
    /// workgroup, 4 × 4 per thread, the vec4 kernel (in one autotuning run on lavapipe's forced GPU path
    /// faster than the scalar 4 × 4 in 17 of emoji32's 19 size classes; not yet timed on a GPU).
    pub const DEFAULT: TileConfig = TileConfig { tm: 4, tn: 4, vec4: true, splits: 1 };
    /// The tiles autotuning chooses from: the scalar kernel's five, the vec4 kernel's four, then two of
    /// those with k in 4 and in 16 slices.
    pub const CANDIDATES: [TileConfig; 13] = [
        TileConfig { tm: 4, tn: 4, vec4: false, splits: 1 },
        TileConfig { tm: 8, tn: 4, vec4: false, splits: 1 },
        TileConfig { tm: 4, tn: 8, vec4: false, splits: 1 },
        TileConfig { tm: 8, tn: 8, vec4: false, splits: 1 },
        TileConfig { tm: 2, tn: 4, vec4: false, splits: 1 },
        TileConfig { tm: 4, tn: 4, vec4: true, splits: 1 },
        TileConfig { tm: 8, tn: 4, vec4: true, splits: 1 },
        TileConfig { tm: 4, tn: 8, vec4: true, splits: 1 },
        TileConfig { tm: 8, tn: 8, vec4: true, splits: 1 },
        TileConfig { tm: 4, tn: 4, vec4: true, splits: 4 },
        TileConfig { tm: 4, tn: 4, vec4: true, splits: 16 },
        TileConfig { tm: 8, tn: 4, vec4: true, splits: 4 },
        TileConfig { tm: 8, tn: 4, vec4: true, splits: 16 },
    ];

    /// The tile for an M (output channels) × N (pixels) × K problem that autotuning has not timed (the
    /// browser never autotunes): [`TileConfig::DEFAULT`], with k split so that the problem forms at least 32
    /// workgroups where that leaves each slice at least 256 of k (e.g. FFHQ-256's 512-channel 8×8 layers at
    /// one image: 8 workgroups, 4 slices). A heuristic for GPUs of a few to a few dozen compute units; not
    /// yet timed on one.
    pub fn untuned(m: usize, n: usize, k: usize) -> TileConfig {
        let d = TileConfig::DEFAULT;
        let tiles = (m.div_ceil(8) * 8).div_ceil(16 * d.tm) * n.div_ceil(16 * d.tn);
        let want = 32usize.div_ceil(tiles.max(1)).next_power_of_two().min(16);
        let splits = (1..=want).rev().find(|s| s.is_power_of_two() && k >= 256 * s).unwrap_or(1);
        TileConfig { splits, ..d }
    }

    /// Reads a tile written `TMxTN`, then `v` for the vec4 kernel, then the slices of k: `4x4` (the scalar
    /// kernel), `8x4v`, `4x4v16`. `None` when it is not of that form; whether the kernels implement it is
    /// [`TileConfig::is_valid`].
    pub fn parse(text: &str) -> Option<TileConfig> {
        let (tm, rest) = text.trim().split_once(['x', 'X'])?;
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (tn, rest) = rest.split_at(digits);
        let (vec4, splits) = match rest.strip_prefix('v') {
            Some("") => (true, 1),
            Some(k) => (true, k.parse().ok()?),
            None if rest.is_empty() => (false, 1),
            None => return None,
        };
        Some(TileConfig { tm: tm.parse().ok()?, tn: tn.parse().ok()?, vec4, splits })
    }

    /// True for the tiles the kernels implement: `tm`, `tn` in {1, 2, 4, 8}, and in {4, 8} with `vec4`;
    /// `splits` at least 1, and 1 without `vec4`.
    pub fn is_valid(&self) -> bool {
        let ok = |v: usize| if self.vec4 { v == 4 || v == 8 } else { matches!(v, 1 | 2 | 4 | 8) };
        ok(self.tm) && ok(self.tn) && self.splits >= 1 && (self.vec4 || self.splits == 1)
    }
}

/// The cooperative-matrix workgroup tiles (output channels per workgroup).
pub const COOP_BM: [usize; 2] = [64, 128];

/// The split-K factors autotuning tries with cooperative matrices.
pub const COOP_SPLITS: [usize; 3] = [1, 4, 16];

/// Which convolution kernel runs (see `src/ops/conv.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvKernel {
    /// Register-blocked, no workgroup memory (CPU adapters).
    RegisterBlocked,
    /// As `RegisterBlocked`, with the 3×3 (stride 1, padding 1) and 1×1 (stride 1, no padding) kernels
    /// loading each weight once per subgroup and broadcasting it (CPU adapters with subgroups of at least 8
    /// lanes; other shapes run the register-blocked kernel).
    SharedWeights,
    /// Winograd F(4×4, 3×3) for 3×3 convolutions with stride 1 and padding 1 (CPU adapters with subgroup-shared
    /// weights: transforms in `wgsl/winograd.wgsl`, the 36 products through the subgroup-shared 1×1 kernel);
    /// other shapes, or temporaries past one storage binding, run [`ConvKernel::SharedWeights`]. Chosen by
    /// default for 3×3 layers with enough 4×4 output tiles ([`crate::ops::winograd_pays`]).
    Winograd,
    /// Workgroup-tiled implicit GEMM in f32 with this register tile.
    Tiled(TileConfig),
    /// Implicit GEMM on 16×16×16 cooperative matrices (tensor cores): f16 operands, f32 sums; a workgroup
    /// computes `bm` (64 or 128) output channels × 64 pixels over one of `splits` slices of k (split-K, for
    /// layers with few output tiles; the slices' sums are added by a second pass).
    CoopMatrix {
        /// Output channels per workgroup: 64 or 128.
        bm: usize,
        /// Slices of k (1 = no split); fewer are used where k or memory is short.
        splits: usize,
    },
}

impl ConvKernel {
    /// Short name for reports: "register-blocked", "tiled 4x8", "coop-matrix f16".
    pub fn label(&self) -> String {
        match self {
            ConvKernel::RegisterBlocked => "register-blocked".into(),
            ConvKernel::SharedWeights => "register-blocked, subgroup-shared weights".into(),
            ConvKernel::Winograd => "winograd F(4x4,3x3)".into(),
            ConvKernel::Tiled(t) => {
                let split = if t.splits > 1 { format!(" split-k {}", t.splits) } else { String::new() };
                format!("tiled {}x{}{}{split}", t.tm, t.tn, if t.vec4 { " vec4" } else { "" })
            }
            ConvKernel::CoopMatrix { bm, splits: 1 } => format!("coop-matrix f16 {bm}x64"),
            ConvKernel::CoopMatrix { bm, splits } => format!("coop-matrix f16 {bm}x64 split-k {splits}"),
        }
    }
}

/// A convolution problem's size class: log2 buckets of M (output channels), N (output pixels) and
/// K (Cin·K·K), so one timing covers the layers of similar shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SizeClass(u8, u8, u8);

impl SizeClass {
    /// The class of an M × N × K problem.
    pub fn of(m: usize, n: usize, k: usize) -> SizeClass {
        let b = |v: usize| (usize::BITS - v.max(1).leading_zeros()) as u8;
        SizeClass(b(m), b(n), b(k))
    }
}

/// Chosen kernels by size class, and (while models are being tuned) the convolutions each tuning thread issued.
#[derive(Default)]
pub(crate) struct TuneTable {
    pub(crate) conv: HashMap<SizeClass, ConvKernel>,
    pub(crate) logs: Vec<(std::thread::ThreadId, Vec<ConvProblem>)>,
}

/// A convolution as issued by a model: input shape, weights and stride/padding (what autotuning replays).
#[derive(Clone, Debug)]
pub struct ConvProblem {
    /// Input [N, Cin, H, W].
    pub x_shape: Vec<usize>,
    /// The packed weights.
    pub w: crate::ops::ConvWeights,
    /// Stride and padding.
    pub cfg: crate::ops::Conv2d,
}

impl ConvProblem {
    /// The problem's size class (M = Cout, N = output pixels, K = Cin·K·K).
    pub fn class(&self) -> SizeClass {
        let [cout, cin, k, _] = self.w.shape();
        let (h, w) = (self.x_shape[2], self.x_shape[3]);
        let ho = (h + 2 * self.cfg.padding - k) / self.cfg.stride + 1;
        let wo = (w + 2 * self.cfg.padding - k) / self.cfg.stride + 1;
        SizeClass::of(cout, self.x_shape[0] * ho * wo, cin * k * k)
    }
}

impl SizeClass {
    /// The three log2 buckets (M, N, K).
    pub fn buckets(&self) -> [u8; 3] {
        [self.0, self.1, self.2]
    }
    /// A class from its buckets (as stored in a tuning cache).
    pub fn from_buckets(b: [u8; 3]) -> SizeClass {
        SizeClass(b[0], b[1], b[2])
    }
}

#[cfg(test)]
mod tests {
    use super::TileConfig;

    #[test]
    fn untuned_tiles_split_k_only_for_few_workgroups_and_long_sums() {
        // FFHQ-256's 512-channel 3x3 layers at 8x8 and 16x16, one image: 8 and 32 workgroups of 64 x 64.
        assert_eq!(TileConfig::untuned(512, 64, 4608).splits, 4);
        assert_eq!(TileConfig::untuned(512, 256, 4608).splits, 1);
        // Two workgroups want 16 slices; k = 2304 allows 8 of at least 256.
        assert_eq!(TileConfig::untuned(64, 100, 2304).splits, 8);
        // A short sum is not split, whatever the tile count.
        assert_eq!(TileConfig::untuned(3, 64, 27).splits, 1);
        assert!(TileConfig::untuned(512, 64, 4608).is_valid());
    }

    #[test]
    fn tiles_parse_from_their_short_form() {
        let t = |tm, tn, vec4, splits| Some(TileConfig { tm, tn, vec4, splits });
        assert_eq!(TileConfig::parse("4x4"), t(4, 4, false, 1));
        assert_eq!(TileConfig::parse(" 8X4v "), t(8, 4, true, 1));
        assert_eq!(TileConfig::parse("4x4v16"), t(4, 4, true, 16));
        for bad in ["", "4", "4x", "x4", "4x4w", "4x4v1.5", "ax4", "4x4vv"] {
            assert_eq!(TileConfig::parse(bad), None, "{bad:?}");
        }
    }
}
