//! A fixed-size denoiser on larger images: ε̂ of an [N, C, H, W] x_t is computed on overlapping model-size
//! tiles (batched through the network) and blended back with a smooth window, so that RED-diff optimises the
//! whole image while the operator acts on the whole image. Its vector-Jacobian product (DPS, ΠGDM) runs the
//! tiles' own products and adds them back: with ε = Σ_k B_k ε_θ(E_k x) (E_k cuts tile k, B_k blends it),
//! (∂ε/∂x)ᵀ v = Σ_k E_kᵀ J_kᵀ B_kᵀ v — keeping the passes' activations up to a memory budget, recomputing the rest.

use super::{Denoiser, EpsTape};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::ops::{self, TileGrid};

/// A square-input denoiser applied tile by tile. Images of exactly the tile size go straight to `inner`;
/// larger ones (both sides ≥ the tile size) are cut into a [`TileGrid`]; the per-step cost grows with the
/// number of tiles, the memory only with `batch` (and, for vector-Jacobian products, `tape_budget`).
pub struct TiledDenoiser<'a> {
    /// The network (its [`Denoiser::image_size`] is the tile size).
    pub inner: &'a dyn Denoiser,
    /// Least overlap of neighbouring tiles, pixels (a quarter of the tile is a good default).
    pub overlap: usize,
    /// Most tiles per network call, over all images of the batch.
    pub batch: usize,
    /// GPU memory, bytes, that the passes of a vector-Jacobian product may keep for it (their
    /// activations); passes beyond it are recomputed by the product. Default 1 GiB.
    pub tape_budget: u64,
    /// The last (overlap, grid, uploaded origins): the image size is the same every step.
    grid: std::sync::Mutex<Option<(usize, TileGrid, Tensor)>>,
}

impl<'a> TiledDenoiser<'a> {
    /// Tiles of `inner`'s size overlapping by a quarter, at most `batch` per network call.
    pub fn new(inner: &'a dyn Denoiser, batch: usize) -> Result<TiledDenoiser<'a>> {
        let size = inner.image_size().ok_or(Error::Invalid { op: "tiled denoiser", msg: "the denoiser has no native size".into() })?;
        Ok(TiledDenoiser { inner, overlap: TileGrid::model_overlap(size), batch: batch.max(1), tape_budget: 1 << 30, grid: std::sync::Mutex::new(None) })
    }

    fn tile(&self) -> Result<usize> {
        self.inner.image_size().ok_or(Error::Invalid { op: "tiled denoiser", msg: "the denoiser has no native size".into() })
    }

    /// The grid and its uploaded origins for an `h`×`w` image (cached: the size is the same every step).
    fn grid(&self, gpu: &Gpu, h: usize, w: usize, size: usize) -> Result<(TileGrid, Tensor)> {
        let mut cache = self.grid.lock().map_err(|_| Error::Gpu("tile grid cache poisoned".into()))?;
        match cache.as_ref() {
            Some((ov, g, o)) if (*ov, g.height, g.width, g.size) == (self.overlap, h, w, size) => Ok((g.clone(), o.clone())),
            _ => {
                let g = TileGrid::new(h, w, size, self.overlap)?;
                let o = g.upload(gpu)?;
                *cache = Some((self.overlap, g.clone(), o.clone()));
                Ok((g, o))
            }
        }
    }

    /// The passes (first tile, tile count) over `tiles` tiles per image for `n` images: equal passes, so at
    /// most two distinct batch shapes reach the network and its captured graphs are reused.
    fn passes(&self, n: usize, tiles: usize) -> Vec<(usize, usize)> {
        let per_pass = (self.batch / n.max(1)).max(1).min(tiles);
        let count = tiles.div_ceil(tiles.div_ceil(per_pass));
        (0..tiles).step_by(count).map(|k0| (k0, count.min(tiles - k0))).collect()
    }
}

impl Denoiser for TiledDenoiser<'_> {
    fn eps(&self, gpu: &Gpu, x_t: &Tensor, t: usize) -> Result<Tensor> {
        let size = self.tile()?;
        let [n, c, h, w] = ops_dims(x_t)?;
        if (h, w) == (size, size) {
            return self.inner.eps(gpu, x_t, t);
        }
        let (grid, origins) = self.grid(gpu, h, w, size)?;
        let acc = gpu.zeros(&[n, c, h, w])?;
        for (k0, k) in self.passes(n, grid.tiles()) {
            let x = ops::extract_tiles(gpu, &grid, &origins, x_t, k0, k)?;
            let e = self.inner.eps(gpu, &x, t)?;
            ops::blend_tiles(gpu, &grid, &origins, &e, k0, k, &acc)?;
        }
        Ok(acc)
    }
    /// ε̂ on tiles and its product. Passes keep their tapes for the product while the memory they add stays
    /// within [`TiledDenoiser::tape_budget`] (a single pass always keeps its own); the product recomputes the
    /// tapes of the others (one more saving forward per such pass and product), so memory stays bounded
    /// whatever the image size.
    fn eps_tape<'b>(&'b self, gpu: &Gpu, x_t: &Tensor, t: usize) -> Result<EpsTape<'b>> {
        let size = self.tile()?;
        let [n, c, h, w] = ops_dims(x_t)?;
        if (h, w) == (size, size) {
            return self.inner.eps_tape(gpu, x_t, t);
        }
        let (grid, origins) = self.grid(gpu, h, w, size)?;
        let passes = self.passes(n, grid.tiles());
        let eps = gpu.zeros(&[n, c, h, w])?;
        let mut var_values: Option<Tensor> = None;
        let mut kept = Vec::with_capacity(passes.len());
        let in_use_before = gpu.memory_in_use();
        for &(k0, k) in &passes {
            let x = ops::extract_tiles(gpu, &grid, &origins, x_t, k0, k)?;
            let tape = self.inner.eps_tape(gpu, &x, t)?;
            ops::blend_tiles(gpu, &grid, &origins, &tape.eps, k0, k, &eps)?;
            if let Some(v) = &tape.var_values {
                let acc = match &var_values {
                    Some(a) => a.clone(),
                    None => var_values.insert(gpu.zeros(&[n, c, h, w])?).clone(),
                };
                ops::blend_tiles(gpu, &grid, &origins, v, k0, k, &acc)?;
            }
            let within = gpu.memory_in_use().saturating_sub(in_use_before) <= self.tape_budget;
            kept.push((passes.len() == 1 || within).then_some(tape));
        }
        let x_t = x_t.clone();
        let backward = move |gpu: &Gpu, v: &Tensor| -> Result<Tensor> {
            let g = gpu.zeros(&[n, c, h, w])?;
            for (&(k0, k), tape) in passes.iter().zip(&kept) {
                let vk = ops::extract_tiles_weighted(gpu, &grid, &origins, v, k0, k)?;
                let product = match tape {
                    Some(tape) => tape.vjp(gpu, &vk)?,
                    None => self.inner.eps_tape(gpu, &ops::extract_tiles(gpu, &grid, &origins, &x_t, k0, k)?, t)?.vjp(gpu, &vk)?,
                };
                ops::add_tiles(gpu, &grid, &origins, &product, k0, k, &g)?;
            }
            Ok(g)
        };
        Ok(EpsTape::new(eps, var_values, Box::new(backward)))
    }
    fn channels(&self) -> usize {
        self.inner.channels()
    }
    fn image_size(&self) -> Option<usize> {
        None
    }
}

fn ops_dims(x: &Tensor) -> Result<[usize; 4]> {
    x.shape().try_into().map_err(|_| Error::Shape { op: "tiled denoiser", msg: format!("x_t must be [N, C, H, W], got {:?}", x.shape()) })
}
