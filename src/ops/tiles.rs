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

/// The blending window over a tile, positive everywhere, largest in the middle: sin²(π (u + ½) / size).
fn window(u: usize, size: usize) -> f32 {
    (std::f32::consts::PI * (u as f32 + 0.5) / size as f32).sin().powi(2)
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

    /// The grid [`TiledDenoiser`](crate::solvers::TiledDenoiser) restores an image of `height`×`width` on
    /// with a model of `size`×`size`: tiles overlapping by a quarter tile.
    pub fn for_model(height: usize, width: usize, size: usize) -> Result<TileGrid> {
        TileGrid::new(height, width, size, Self::model_overlap(size))
    }

    /// The overlap of [`TileGrid::for_model`] for `size`-pixel tiles: a quarter tile.
    pub const fn model_overlap(size: usize) -> usize {
        size / 4
    }

    /// Tiles per image.
    pub fn tiles(&self) -> usize {
        self.rows.len() * self.cols.len()
    }

    /// The grid as the kernels read it, one u32 tensor: the origins `[rows..., cols...]`, then as f32 bit
    /// patterns the blending window over a tile (`size` values) and the sums of the windows of every tile
    /// covering each image row (`height`) and column (`width`): the blend's normaliser is their product.
    pub fn upload(&self, gpu: &Gpu) -> Result<Tensor> {
        let window: Vec<f32> = (0..self.size).map(|u| window(u, self.size)).collect();
        let coverage = |origins: &[usize], len: usize| -> Vec<f32> {
            let mut sum = vec![0f32; len];
            for &o in origins {
                sum.iter_mut().skip(o).zip(&window).for_each(|(s, w)| *s += w);
            }
            sum
        };
        let tables = [window.clone(), coverage(&self.rows, self.height), coverage(&self.cols, self.width)];
        let v: Vec<u32> = self.rows.iter().chain(&self.cols).map(|&o| o as u32).chain(tables.iter().flatten().map(|f| f.to_bits())).collect();
        gpu.upload_u32(&[v.len()], &v)
    }

    /// The image rows [first, end) that tiles `k0 .. k0+count` cover.
    fn band(&self, k0: usize, count: usize) -> (usize, usize) {
        let nx = self.cols.len();
        let end = (self.rows[(k0 + count - 1) / nx] + self.size).min(self.height);
        (self.rows[k0 / nx].min(end), end)
    }

    fn params(&self, n: usize, c: usize, k0: usize, count: usize, weighted: bool, band: (usize, usize)) -> Params {
        Params::new()
            .n(n)
            .n(c)
            .n(self.height)
            .n(self.width)
            .n(self.size)
            .n(self.rows.len())
            .n(self.cols.len())
            .n(k0)
            .n(count)
            .u(weighted as u32)
            .n(band.0)
            .n(band.1 - band.0)
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
        &grid.params(out.numel(), c, k0, count, weighted, (0, 0)),
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
    // Only the rows this pass's tiles cover (a band one or two tile rows high), not the whole image.
    let band = grid.band(k0, count);
    let elements = n * c * (band.1 - band.0) * w;
    gpu.launch(
        op,
        &Kernel::new(&TILES, op),
        &grid.params(elements, c, k0, count, weighted, band),
        &[(origins, Access::Read), (tiles, Access::Read), (acc, Access::ReadWrite)],
        groups256(elements),
    )
}
