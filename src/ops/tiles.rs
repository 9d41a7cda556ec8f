//! Overlapping tiles of images larger than a network's input (`wgsl/tiles.wgsl`): cut a batch of tiles out of
//! [N, C, H, W] images, and blend per-tile results back with a smooth window.

use super::{dims, groups256};
use crate::error::{Error, Result};
use crate::gpu::{Access, Gpu, Kernel, Params, Tensor};
use crate::shaders::TILES;

/// A grid of `size`×`size` tiles covering an `height`×`width` image, overlapping by at least `overlap`
/// pixels, origins evenly spread so the first tile starts at 0 and the last ends at the border.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileGrid {
    /// Tile side in pixels.
    pub size: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Top rows of the tile rows.
    pub rows: Vec<usize>,
    /// Left columns of the tile columns.
    pub cols: Vec<usize>,
}

fn origins(len: usize, size: usize, overlap: usize) -> Vec<usize> {
    if len <= size {
        return vec![0];
    }
    let stride = size - overlap;
    let n = (len - overlap).div_ceil(stride);
    (0..n).map(|i| (i * (len - size) + (n - 1) / 2) / (n - 1)).collect()
}

impl TileGrid {
    /// The grid for an image of `height`×`width` ≥ `size` in both sides; `overlap` < `size`.
    pub fn new(height: usize, width: usize, size: usize, overlap: usize) -> Result<TileGrid> {
        if size == 0 || overlap >= size || height < size || width < size {
            return Err(Error::Shape {
                op: "tile grid",
                msg: format!("{width}x{height} image, {size}-pixel tiles overlapping by {overlap}: the image must be at least one tile in each direction"),
            });
        }
        Ok(TileGrid { size, height, width, rows: origins(height, size, overlap), cols: origins(width, size, overlap) })
    }

    /// Tiles per image.
    pub fn tiles(&self) -> usize {
        self.rows.len() * self.cols.len()
    }

    /// The origins as one u32 tensor [rows..., cols...], as the kernels read them.
    pub fn upload(&self, gpu: &Gpu) -> Result<Tensor> {
        let v: Vec<u32> = self.rows.iter().chain(&self.cols).map(|&o| o as u32).collect();
        gpu.upload_u32(&[v.len()], &v)
    }

    fn params(&self, n: usize, c: usize, k0: usize, count: usize, weighted: bool) -> Params {
        Params::new().n(n).n(c).n(self.height).n(self.width).n(self.size).n(self.rows.len()).n(self.cols.len()).n(k0).n(count).u(weighted as u32)
    }

    fn check_pass(&self, op: &'static str, k0: usize, count: usize) -> Result<()> {
        if count == 0 || k0 + count > self.tiles() {
            return Err(Error::Invalid { op, msg: format!("tiles {k0}..{} of a {}-tile grid", k0 + count, self.tiles()) });
        }
        Ok(())
    }
}

/// Tiles `k0 .. k0+count` of every image of `x` [N, C, H, W] → [N·count, C, S, S] (image n's tiles first).
/// `origins` is [`TileGrid::upload`].
pub fn extract_tiles(gpu: &Gpu, grid: &TileGrid, origins: &Tensor, x: &Tensor, k0: usize, count: usize) -> Result<Tensor> {
    extract(gpu, grid, origins, x, k0, count, false)
}

/// [`extract_tiles`] times each pixel's weight in [`blend_tiles`]: the transpose of the blend (for
/// vector-Jacobian products through tiles).
pub fn extract_tiles_weighted(gpu: &Gpu, grid: &TileGrid, origins: &Tensor, x: &Tensor, k0: usize, count: usize) -> Result<Tensor> {
    extract(gpu, grid, origins, x, k0, count, true)
}

fn extract(gpu: &Gpu, grid: &TileGrid, origins: &Tensor, x: &Tensor, k0: usize, count: usize, weighted: bool) -> Result<Tensor> {
    let op = "extract_tiles";
    let [n, c, h, w] = dims::<4>(op, "image", x)?;
    if (h, w) != (grid.height, grid.width) {
        return Err(Error::Shape { op, msg: format!("image {w}x{h} but the grid is for {}x{}", grid.width, grid.height) });
    }
    grid.check_pass(op, k0, count)?;
    let out = gpu.empty(op, &[n * count, c, grid.size, grid.size])?;
    gpu.launch(
        op,
        &Kernel::new(&TILES, op),
        &grid.params(out.numel(), c, k0, count, weighted),
        &[(origins, Access::Read), (x, Access::Read), (&out, Access::ReadWrite)],
        groups256(out.numel()),
    )?;
    Ok(out)
}

/// `acc` [N, C, H, W] += tiles `k0 .. k0+count` [N·count, C, S, S], each weighted by the separable window
/// sin²(π(u+½)/S) and normalised by the sum of the weights of every grid tile covering the pixel, so that
/// blending all tiles of the grid into zeros gives a convex combination at every pixel.
pub fn blend_tiles(gpu: &Gpu, grid: &TileGrid, origins: &Tensor, tiles: &Tensor, k0: usize, count: usize, acc: &Tensor) -> Result<()> {
    blend(gpu, grid, origins, tiles, k0, count, acc, true)
}

/// `acc` [N, C, H, W] += tiles `k0 .. k0+count` added in place without weights: the transpose of
/// [`extract_tiles`].
pub fn add_tiles(gpu: &Gpu, grid: &TileGrid, origins: &Tensor, tiles: &Tensor, k0: usize, count: usize, acc: &Tensor) -> Result<()> {
    blend(gpu, grid, origins, tiles, k0, count, acc, false)
}

#[allow(clippy::too_many_arguments)]
fn blend(gpu: &Gpu, grid: &TileGrid, origins: &Tensor, tiles: &Tensor, k0: usize, count: usize, acc: &Tensor, weighted: bool) -> Result<()> {
    let op = "blend_tiles";
    let [n, c, h, w] = dims::<4>(op, "accumulator", acc)?;
    if (h, w) != (grid.height, grid.width) {
        return Err(Error::Shape { op, msg: format!("accumulator {w}x{h} but the grid is for {}x{}", grid.width, grid.height) });
    }
    grid.check_pass(op, k0, count)?;
    if tiles.shape() != [n * count, c, grid.size, grid.size] {
        return Err(Error::Shape { op, msg: format!("tiles {:?}, expected {:?}", tiles.shape(), [n * count, c, grid.size, grid.size]) });
    }
    gpu.launch(
        op,
        &Kernel::new(&TILES, op),
        &grid.params(acc.numel(), c, k0, count, weighted),
        &[(origins, Access::Read), (tiles, Access::Read), (acc, Access::ReadWrite)],
        groups256(acc.numel()),
    )
}
