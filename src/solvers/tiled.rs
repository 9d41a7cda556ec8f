//! A fixed-size denoiser on larger images: ε̂ of an [N, C, H, W] x_t is computed on overlapping model-size
//! tiles (batched through the network) and blended back with a smooth window, so that RED-diff optimises the
//! whole image while the operator acts on the whole image.

use super::Denoiser;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::ops::{self, TileGrid};

/// A square-input denoiser applied tile by tile. Images of exactly the tile size go straight to `inner`;
/// larger ones (both sides ≥ the tile size) are cut into a [`TileGrid`]; the per-step cost grows with the
/// number of tiles, the memory only with `batch`.
pub struct TiledDenoiser<'a> {
    /// The network (its [`Denoiser::image_size`] is the tile size).
    pub inner: &'a dyn Denoiser,
    /// Least overlap of neighbouring tiles, pixels (a quarter of the tile is a good default).
    pub overlap: usize,
    /// Most tiles per network call, over all images of the batch.
    pub batch: usize,
    /// The last (overlap, grid, uploaded origins): the image size is the same every step.
    grid: std::sync::Mutex<Option<(usize, TileGrid, Tensor)>>,
}

impl<'a> TiledDenoiser<'a> {
    /// Tiles of `inner`'s size overlapping by a quarter, at most `batch` per network call.
    pub fn new(inner: &'a dyn Denoiser, batch: usize) -> Result<TiledDenoiser<'a>> {
        let size = inner.image_size().ok_or(Error::Invalid { op: "tiled denoiser", msg: "the denoiser has no native size".into() })?;
        Ok(TiledDenoiser { inner, overlap: size / 4, batch: batch.max(1), grid: std::sync::Mutex::new(None) })
    }

    fn tile(&self) -> Result<usize> {
        self.inner.image_size().ok_or(Error::Invalid { op: "tiled denoiser", msg: "the denoiser has no native size".into() })
    }
}

impl Denoiser for TiledDenoiser<'_> {
    fn eps(&self, gpu: &Gpu, x_t: &Tensor, t: usize) -> Result<Tensor> {
        let size = self.tile()?;
        let [n, c, h, w] = ops_dims(x_t)?;
        if (h, w) == (size, size) {
            return self.inner.eps(gpu, x_t, t);
        }
        let (grid, origins) = {
            let mut cache = self.grid.lock().map_err(|_| Error::Gpu("tile grid cache poisoned".into()))?;
            match cache.as_ref() {
                Some((ov, g, o)) if (*ov, g.height, g.width, g.size) == (self.overlap, h, w, size) => (g.clone(), o.clone()),
                _ => {
                    let g = TileGrid::new(h, w, size, self.overlap)?;
                    let o = g.upload(gpu)?;
                    *cache = Some((self.overlap, g.clone(), o.clone()));
                    (g, o)
                }
            }
        };
        let acc = gpu.zeros(&[n, c, h, w])?;
        let tiles = grid.tiles();
        // Equal passes (at most two distinct batch shapes, so the network's captured graphs are reused).
        let per_pass = (self.batch / n).max(1).min(tiles);
        let count = tiles.div_ceil(tiles.div_ceil(per_pass));
        let mut k0 = 0;
        while k0 < tiles {
            let k = count.min(tiles - k0);
            let x = ops::extract_tiles(gpu, &grid, &origins, x_t, k0, k)?;
            let e = self.inner.eps(gpu, &x, t)?;
            ops::blend_tiles(gpu, &grid, &origins, &e, k0, k, &acc)?;
            k0 += k;
        }
        Ok(acc)
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
