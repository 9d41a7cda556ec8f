//! A buffer pool: tensors return their storage buffer here on drop, so an iterative loop that allocates the
//! same shapes every iteration reuses buffers instead of creating new ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Storage buffers are rounded up to this many bytes so that near-equal sizes share buckets.
pub(crate) const ALIGN: u64 = 256;

/// Bytes of a device's pooled buffers, counted over its main pool and every captured graph's pool.
#[derive(Default)]
pub(crate) struct Meter {
    allocated: AtomicU64,
    peak: AtomicU64,
    /// Bytes of the buffers some tensor holds now (allocated minus the free lists).
    in_use: AtomicU64,
}

impl Meter {
    fn add(&self, bytes: u64) {
        let now = self.allocated.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
    fn sub(&self, bytes: u64) {
        self.allocated.fetch_sub(bytes, Ordering::Relaxed);
    }
    /// Bytes held now and the most held at once so far.
    pub(crate) fn read(&self) -> (u64, u64) {
        (self.allocated.load(Ordering::Relaxed), self.peak.load(Ordering::Relaxed))
    }
    /// Bytes of the buffers tensors hold now.
    pub(crate) fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Relaxed)
    }
}

/// Free buffers keyed by their byte size.
pub(crate) struct BufferPool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    /// Bytes in all live pooled buffers (in use or free).
    pub(crate) allocated: u64,
    /// Buffers created since the pool was made (a loop that allocates nothing leaves this unchanged).
    pub(crate) created: u64,
    /// The device-wide count this pool's buffers are part of.
    pub(crate) meter: Arc<Meter>,
}

impl Drop for BufferPool {
    /// A pool goes with everything it created (a graph's pool with its graph).
    fn drop(&mut self) {
        self.meter.sub(self.allocated);
    }
}

/// A storage buffer that goes back to its pool when the last tensor using it is dropped.
pub(crate) struct PooledBuffer {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) bytes: u64,
    pub(crate) pool: Weak<Mutex<BufferPool>>,
    meter: Arc<Meter>,
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        self.meter.in_use.fetch_sub(self.bytes, Ordering::Relaxed);
        if let Some(pool) = self.pool.upgrade() {
            if let Ok(mut p) = pool.lock() {
                p.free.entry(self.bytes).or_default().push(self.buffer.clone());
            }
        }
    }
}

/// Rounds a byte count up to the pool's granularity.
pub(crate) fn bucket(bytes: u64) -> u64 {
    bytes.div_ceil(ALIGN) * ALIGN
}

/// Takes a free buffer of `bytes` (already bucketed) or creates one.
pub(crate) fn take(pool: &Arc<Mutex<BufferPool>>, device: &wgpu::Device, bytes: u64) -> PooledBuffer {
    let (reused, meter) = match pool.lock() {
        Ok(mut p) => (p.free.get_mut(&bytes).and_then(|v| v.pop()), p.meter.clone()),
        Err(_) => (None, Arc::default()),
    };
    meter.in_use.fetch_add(bytes, Ordering::Relaxed);
    let buffer = match reused {
        Some(b) => b,
        None => {
            if let Ok(mut p) = pool.lock() {
                p.allocated += bytes;
                p.meter.add(bytes);
                p.created += 1;
            }
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tensor"),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        }
    };
    PooledBuffer { buffer, bytes, pool: Arc::downgrade(pool), meter }
}

impl BufferPool {
    /// An empty pool whose buffers also count in `meter`.
    pub(crate) fn new(meter: Arc<Meter>) -> BufferPool {
        BufferPool { free: HashMap::new(), allocated: 0, created: 0, meter }
    }

    /// Lets go of all free buffers; returns the bytes released. The handles are dropped, not destroyed: work
    /// recorded (and not yet submitted) by another thread may still use a buffer whose tensor was dropped,
    /// and wgpu frees the memory only once no pending command uses it.
    pub(crate) fn trim(&mut self) -> u64 {
        let mut released = 0;
        for (bytes, v) in self.free.drain() {
            released += bytes * v.len() as u64;
        }
        self.allocated -= released;
        self.meter.sub(released);
        released
    }
}
