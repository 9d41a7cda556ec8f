//! `Tensor`: an f32 storage buffer with an NCHW (or any-rank) shape, plus upload and readback.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::pool::{bucket, take, BufferPool, PooledBuffer};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// A dense, row-major f32 tensor living in a GPU storage buffer. Cloning shares the storage (cheap); the
/// buffer returns to the pool when the last clone is dropped. Shapes are NCHW for images.
#[derive(Clone)]
pub struct Tensor {
    buf: Arc<PooledBuffer>,
    shape: Vec<usize>,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{:?}", self.shape)
    }
}

/// Number of elements of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// Size of the data in bytes (4 per element).
    pub fn bytes(&self) -> u64 {
        self.numel() as u64 * 4
    }

    pub(crate) fn from_pooled(buf: PooledBuffer, shape: Vec<usize>) -> Tensor {
        Tensor { buf: Arc::new(buf), shape }
    }

    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        &self.buf.buffer
    }

    /// Whether the storage belongs to `pool` (and goes back to it).
    pub(crate) fn in_pool(&self, pool: &Arc<Mutex<BufferPool>>) -> bool {
        std::ptr::eq(self.buf.pool.as_ptr(), Arc::as_ptr(pool))
    }

    /// The same storage viewed with another shape of equal element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::Shape { op: "reshape", msg: format!("cannot view {:?} ({} elements) as {:?}", self.shape, self.numel(), shape) });
        }
        Ok(Tensor { buf: self.buf.clone(), shape: shape.to_vec() })
    }

    /// True if both tensors share one buffer.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }

    /// Flushes pending work and reads the tensor back (blocks; native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        super::block_on(self.read_async(gpu))
    }

    /// Flushes pending work and reads the tensor back.
    pub async fn read_async(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: self.bytes(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.note_uncapturable("read");
        gpu.with_encoder(|enc| enc.copy_buffer_to_buffer(self.buffer(), 0, &staging, 0, self.bytes()));
        gpu.flush()?;
        let slot = Arc::new(Mutex::new(MapState::default()));
        let cb_slot = slot.clone();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            if let Ok(mut s) = cb_slot.lock() {
                s.result = Some(r.map_err(|e| e.to_string()));
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        });
        #[cfg(not(target_arch = "wasm32"))]
        gpu.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None }).map_err(|e| Error::Readback(e.to_string()))?;
        MapFuture(slot).await.map_err(Error::Readback)?;
        let data = {
            let view = staging.get_mapped_range(..).map_err(|e| Error::Readback(e.to_string()))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        staging.destroy();
        gpu.take_errors()?;
        Ok(data)
    }
}

#[derive(Default)]
struct MapState {
    result: Option<std::result::Result<(), String>>,
    waker: Option<Waker>,
}

struct MapFuture(Arc<Mutex<MapState>>);

impl Future for MapFuture {
    type Output = std::result::Result<(), String>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = match self.0.lock() {
            Ok(s) => s,
            Err(_) => return Poll::Ready(Err("map state poisoned".into())),
        };
        match s.result.take() {
            Some(r) => Poll::Ready(r),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Gpu {
    /// An uninitialised tensor from the pool. `op` names the caller in errors.
    pub fn empty(&self, op: &'static str, shape: &[usize]) -> Result<Tensor> {
        let n = numel(shape);
        if n == 0 {
            return Err(Error::Empty { op, shape: shape.to_vec() });
        }
        let bytes = (n as u64).checked_mul(4).map(bucket).unwrap_or(u64::MAX);
        if bytes > self.limits.max_buffer_size {
            return Err(Error::TooLarge { op, what: "a buffer", bytes, limit: self.limits.max_buffer_size, shape: shape.to_vec() });
        }
        let buf = match self.capture_pool() {
            Some(pool) => take(&pool, &self.device, bytes),
            None => take(&self.pool, &self.device, bytes),
        };
        Ok(Tensor { buf: Arc::new(buf), shape: shape.to_vec() })
    }

    /// A tensor of zeros.
    pub fn zeros(&self, shape: &[usize]) -> Result<Tensor> {
        let t = self.empty("zeros", shape)?;
        self.note_uncapturable("zeros");
        self.with_encoder(|enc| enc.clear_buffer(t.buffer(), 0, None));
        Ok(t)
    }

    /// Uploads `data` (row-major, `numel(shape)` values) into a new tensor.
    pub fn upload(&self, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        self.upload_bytes(shape, data.len(), bytemuck::cast_slice(data))
    }

    /// Uploads u32 values (bit patterns kept exactly) into a new tensor, for kernels that read them as u32.
    pub fn upload_u32(&self, shape: &[usize], data: &[u32]) -> Result<Tensor> {
        self.upload_bytes(shape, data.len(), bytemuck::cast_slice(data))
    }

    fn upload_bytes(&self, shape: &[usize], len: usize, bytes: &[u8]) -> Result<Tensor> {
        if numel(shape) != len {
            return Err(Error::Shape { op: "upload", msg: format!("shape {:?} needs {} values, got {len}", shape, numel(shape)) });
        }
        let t = self.empty("upload", shape)?;
        self.write_bytes(&t, bytes)?;
        Ok(t)
    }

    /// Writes raw bytes at the start of `t`, ordered after all previously recorded work.
    fn write_bytes(&self, t: &Tensor, bytes: &[u8]) -> Result<()> {
        // Earlier recorded work may still use this buffer: submit it first so the write is ordered after it.
        self.note_uncapturable("write");
        self.flush()?;
        self.queue.write_buffer(t.buffer(), 0, bytes);
        Ok(())
    }

    /// Overwrites a tensor's contents, ordered after all previously recorded work.
    pub fn write(&self, t: &Tensor, data: &[f32]) -> Result<()> {
        if t.numel() != data.len() {
            return Err(Error::Shape { op: "write", msg: format!("tensor {:?} holds {} values, got {}", t.shape(), t.numel(), data.len()) });
        }
        self.write_bytes(t, bytemuck::cast_slice(data))
    }

    /// Records a copy of all of `src` into the start of `dst` (a buffer copy, no kernel; not capturable).
    pub fn copy_tensor(&self, src: &Tensor, dst: &Tensor) -> Result<()> {
        if src.numel() > dst.numel() {
            return Err(Error::Shape { op: "copy_tensor", msg: format!("{:?} does not fit into {:?}", src.shape(), dst.shape()) });
        }
        self.note_uncapturable("copy_tensor");
        self.with_encoder(|enc| enc.copy_buffer_to_buffer(src.buffer(), 0, dst.buffer(), 0, src.bytes()));
        Ok(())
    }

    /// Bytes currently held by pooled buffers (in use or free), captured graphs' buffers included, and the
    /// most held at once so far.
    pub fn memory(&self) -> (u64, u64) {
        self.pool.lock().map(|p| p.meter.read()).unwrap_or((0, 0))
    }

    /// Bytes of the pooled buffers that tensors (a captured graph's included) hold now: [`Gpu::memory`]'s
    /// first figure less the buffers free for reuse.
    pub fn memory_in_use(&self) -> u64 {
        self.pool.lock().map(|p| p.meter.in_use()).unwrap_or(0)
    }

    /// Storage buffers created so far (constant across iterations of a loop that allocates nothing new).
    pub fn buffers_created(&self) -> u64 {
        self.pool.lock().map(|p| p.created).unwrap_or(0)
    }

    /// Releases pooled buffers that no tensor uses (and the bind groups kept for reuse, which hold buffers);
    /// returns the bytes freed.
    pub fn trim_pool(&self) -> u64 {
        if let Ok(mut b) = self.binds.lock() {
            b.clear();
        }
        self.pool.lock().map(|mut p| p.trim()).unwrap_or(0)
    }
}
