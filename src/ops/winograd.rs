//! Winograd F(4×4, 3×3) convolution for CPU adapters (`wgsl/winograd.wgsl`): 3×3, stride 1, padding 1.
//! The kernel, the input and the products' outputs are transformed so that each 4×4 block of output pixels
//! takes 36 multiplications per channel pair instead of 144; the 36 products over input channels run as
//! 36 "images" of the subgroup-shared 1×1 kernel (`wgsl/conv_sg.wgsl`, per-image weights). The transformed
//! kernels are kept with the layer's weights after its first call where they take at most
//! [`KEEP_KERNELS_BYTES`]; larger ones are made on every call (2.4 % of FFHQ-256's Winograd time; 6–16 % of a
//! 128- to 256-channel layer at 64² to 32²), so those weights keep their packed size.

use super::conv::{ConvWeights, Epilogue};
use crate::error::Result;
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::{CONV_SG, WINOGRAD};

/// Positions of the transformed 6×6 tile.
const POS: usize = 36;

/// Fewest output tiles per image (4×4 pixels) for which the Winograd path is chosen on its own: with fewer,
/// the 1×1 products leave most of their subgroup lanes idle (lavapipe, interleaved, per dispatch: 128 → 128
/// channels at 16×16, 16 tiles, 0.62–0.70× the direct kernel's speed; running the products with U and V
/// swapped, lanes over output channels, brought 16×16 layers to 0.93–0.98× and 8×8 ones to 0.23–0.42×, and was
/// not kept). Counted per image, not over the batch, so that a batch runs the same kernels as each of its
/// images alone and every image's result is independent of the batch it is in (`eval --batch`).
pub const WINOGRAD_MIN_TILES: usize = 32;

/// Fewest input and output channels for which the Winograd path is chosen on its own: its transforms cost
/// per channel, the products per channel pair (lavapipe, per dispatch, kept kernels: 64 → 64 at 32×32
/// 1.02× at one image and 1.20× at 8, 128 → 64 1.16× and 1.33×, 128 → 128 1.26–1.55×, 128 → 128 at 64×64
/// 1.7–1.8×, 256 → 256 at 64×64 2.2×; with the kernels transformed on every call 64 → 64 was 0.73–0.92× at
/// one image). emoji32's 64-channel layers at 32×32 take it: batch-8 forward 283.5 → 257.5 ms, tape +
/// product 633.5 → 573.7 ms, batch 1 42.4 → 41.4 ms (`tools/bench_side_by_side.py`, 4 interleaved rounds).
pub const WINOGRAD_MIN_CHANNELS: usize = 64;

/// True when the Winograd path is chosen for a 3×3 convolution of `n` images of `h`×`w` pixels, `cin` →
/// `cout` channels by default: at least [`WINOGRAD_MIN_TILES`] tiles per image and
/// [`WINOGRAD_MIN_CHANNELS`] channels in and out, and the temporaries within one storage binding (in chunks;
/// neither depends on `n`). Which chunk or batch a tile is in does not change its result.
pub fn winograd_pays(gpu: &Gpu, n: usize, cin: usize, cout: usize, h: usize, w: usize) -> bool {
    h.div_ceil(4) * w.div_ceil(4) >= WINOGRAD_MIN_TILES && cin.min(cout) >= WINOGRAD_MIN_CHANNELS && winograd_fits(gpu, n, cin, cout, h, w)
}

/// Largest transformed kernels (36 · Cin · Cout rounded up to 8, f32) kept with a layer's weights after its
/// first call: up to 128 × 128 channels (2.4 MB) and 256 × 64; larger layers transform theirs on every call
/// (2.4 % of ADM FFHQ-256's Winograd time), which keeps their memory at the packed f16 size.
pub const KEEP_KERNELS_BYTES: u64 = 4 << 20;

/// Most bytes of the transformed input or of the products at once: larger layers run in chunks of tiles
/// (lavapipe's storage bindings hold 128 MiB; ADM-256's 256-channel layers at 256×256 need 151 MB), which
/// also bounds the memory a captured forward keeps for them.
const CHUNK_BYTES: u64 = 32 << 20;

/// The largest power of two of bytes within one storage binding: the temporaries take power-of-two sizes.
fn binding_pow2(gpu: &Gpu) -> u64 {
    let cap = gpu.max_binding_bytes().max(1);
    if cap.is_power_of_two() {
        cap
    } else {
        cap.next_power_of_two() / 2
    }
}

/// Tiles per chunk: as many as [`CHUNK_BYTES`] and one storage binding allow, a multiple of 4 (whole vec4s
/// for the products' loads), spread evenly over the chunks; 0 when not even 4 tiles fit.
fn chunk_tiles(gpu: &Gpu, cin: usize, cout: usize, nt: usize) -> usize {
    let per_tile = POS as u64 * 4 * cin.max(cout) as u64;
    let most = (binding_pow2(gpu).min(CHUNK_BYTES) / per_tile) as usize / 4 * 4;
    if most == 0 {
        return 0;
    }
    let chunks = nt.div_ceil(most);
    nt.div_ceil(chunks).next_multiple_of(4).min(most).min(nt)
}

/// True when the transformed kernels fit one storage binding and chunks of at least 4 tiles do (at their
/// power-of-two sizes).
pub(crate) fn winograd_fits(gpu: &Gpu, n: usize, cin: usize, cout: usize, h: usize, w: usize) -> bool {
    let mp = cout.div_ceil(8) as u64 * 8;
    (POS as u64 * 4 * cin as u64 * mp).next_power_of_two() <= binding_pow2(gpu) && chunk_tiles(gpu, cin, cout, n * h.div_ceil(4) * w.div_ceil(4)) > 0
}

/// `x` [N, Cin, H, W] convolved (3×3, stride 1, padding 1) with `w`, then `epi` → [N, Cout, H, W]: one
/// dispatch for the kernels, then three per chunk of tiles. The caller checks shapes and [`winograd_fits`].
pub(crate) fn conv3x3_winograd(gpu: &Gpu, x: &Tensor, w: &ConvWeights, epi: &Epilogue) -> Result<Tensor> {
    const OP: &str = "conv2d winograd";
    let [cout, cin, _, _] = w.shape();
    let (n, h, wd) = (x.shape()[0], x.shape()[2], x.shape()[3]);
    let tiles_x = wd.div_ceil(4);
    let tiles = h.div_ceil(4) * tiles_x;
    let nt = n * tiles;
    let chunk = chunk_tiles(gpu, cin, cout, nt).max(1);
    let mp = w.mp();
    let flags = epi.bias.is_some() as u32 | (epi.term.is_some() as u32) << 1 | (epi.residual.is_some() as u32) << 2;
    let (add_t, add_off, add_stride) = match &epi.term {
        Some(t) => (t.t, t.offset, t.stride),
        None => (gpu.dummy(), 0, 0),
    };
    let dummy = gpu.dummy();
    // One pass of winograd.wgsl over `count` invocations, for the chunk of `ntc` tiles from `t0`.
    let pass = |entry: &'static str, count: usize, (ntc, t0): (usize, usize), src: &Tensor, dst: &Tensor| {
        let params = Params::new()
            .n(n)
            .n(cin)
            .n(h)
            .n(wd)
            .n(cout)
            .n(mp)
            .n(tiles_x)
            .n(tiles)
            .n(ntc)
            .n(t0)
            .n(count)
            .u(flags)
            .n(add_off)
            .n(add_stride)
            .f(epi.alpha)
            .f(epi.beta);
        // wino_input also reads the input as vec4s (binding 7) where rows are whole vec4s.
        let args = [
            (src, Access::Read),
            (w.packed(), Access::Read),
            (epi.bias.unwrap_or(dummy), Access::Read),
            (add_t, Access::Read),
            (epi.residual.unwrap_or(dummy), Access::Read),
            (dst, Access::ReadWrite),
            (gpu.vec4_view(src), Access::Read),
        ];
        let input = entry == "wino_input";
        let kernel = Kernel::new(&WINOGRAD, entry).with("WF16", w.is_f16() as u32 as f64);
        let kernel = if input { kernel.with("VEC4_X", if wd % 4 == 0 { 1.0 } else { 0.0 }) } else { kernel };
        gpu.launch(OP, &kernel, &params, if input { &args[..] } else { &args[..6] }, (count as u64).div_ceil(64))
    };
    // The temporaries take power-of-two sizes, so that layers of different shapes reuse the same buffers
    // (a captured forward keeps one buffer per size it allocated: FFHQ-256 forward's graphs 863 → 678 MiB).
    let scratch = |elems: usize| gpu.empty(OP, &[elems.next_power_of_two()]);
    // The transformed kernels: kept with the weights where they are small (made once, outside any graph
    // capture, so that a captured forward has one dispatch fewer per layer), else made on every call.
    let u = match w.winograd_kernels() {
        Some(u) => u,
        None if (POS * cin * mp * 4) as u64 <= KEEP_KERNELS_BYTES => gpu.outside_capture(|| {
            let u = gpu.empty(OP, &[POS * cin * mp])?;
            pass("wino_weights", cin * mp, (chunk, 0), dummy, &u)?;
            w.keep_winograd_kernels(&u);
            Ok(u)
        })?,
        None => {
            let u = scratch(POS * cin * mp)?;
            pass("wino_weights", cin * mp, (chunk, 0), dummy, &u)?;
            u
        }
    };
    // The chunk's transformed input and products; a smaller last chunk uses the front of each.
    let v = scratch(POS * cin * chunk)?;
    let m = scratch(POS * cout * chunk)?;
    let out = gpu.empty(OP, &[n, cout, h, wd])?;
    let mut t0 = 0;
    while t0 < nt {
        let ntc = chunk.min(nt - t0);
        pass("wino_input", cin * ntc, (ntc, t0), x, &v)?;
        // The 36 products U[pos]ᵀ · V[pos] as a 1×1 convolution of 36 one-row images of NTC pixels.
        let prod = Params::new().n(POS).n(cin).n(1).n(ntc).n(cout).n(mp).u(0).n(0).n(0).f(1.0).f(1.0);
        let groups = POS * mp.div_ceil(16) * ntc.div_ceil(4).div_ceil(64);
        let kernel = Kernel::new(&CONV_SG, "conv1x1").with("WF16", 0.0).with("VEC4_X", if ntc % 4 == 0 { 1.0 } else { 0.0 }).with("W_PER_IMAGE", 1.0);
        let args = [
            (&v, Access::Read),
            (&u, Access::Read),
            (dummy, Access::Read),
            (dummy, Access::Read),
            (dummy, Access::Read),
            (&m, Access::ReadWrite),
            (gpu.vec4_view(&v), Access::Read),
        ];
        gpu.launch(OP, &kernel, &prod, &args, groups as u64)?;
        pass("wino_output", cout * ntc, (ntc, t0), &m, &out)?;
        t0 += ntc;
    }
    Ok(out)
}
