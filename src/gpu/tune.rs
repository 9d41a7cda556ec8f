//! Register tiles of the workgroup-tiled convolution (`wgsl/conv_gemm.wgsl`): the candidates, and the choice
//! per problem-size class made by [`Gpu::autotune_conv`](crate::Gpu) (default until then).

use std::collections::HashMap;

/// A thread's register tile in the tiled convolution: `tm` output channels × `tn` pixels; the workgroup
/// (256 threads) then covers (16·tm) × (16·tn) outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TileConfig {
    /// Output channels per thread (1, 2, 4 or 8).
    pub tm: usize,
    /// Output pixels per thread (1, 2, 4 or 8).
    pub tn: usize,
}

impl TileConfig {
    /// The tile used before (or without) autotuning: 64 × 64 per workgroup, 4 × 4 per thread.
    pub const DEFAULT: TileConfig = TileConfig { tm: 4, tn: 4 };
    /// The tiles autotuning chooses from.
    pub const CANDIDATES: [TileConfig; 5] = [
        TileConfig { tm: 4, tn: 4 },
        TileConfig { tm: 8, tn: 4 },
        TileConfig { tm: 4, tn: 8 },
        TileConfig { tm: 8, tn: 8 },
        TileConfig { tm: 2, tn: 4 },
    ];
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

/// Chosen tiles by size class.
#[derive(Default)]
pub(crate) struct TuneTable {
    pub(crate) conv: HashMap<SizeClass, TileConfig>,
}
