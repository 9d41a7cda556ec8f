//! The open command stream: one encoder collects every dispatch until [`Gpu::flush`] submits it.
//! Consecutive dispatches share one open compute pass (a pass per dispatch cost lavapipe 20-160 µs more per
//! dispatch than a shared one: `wgpu` still orders every dispatch after the writes it reads); a copy, a
//! clear or a submit ends the pass.
//! Kernel parameters go into a CPU-side arena that is written to one uniform buffer right before the submit,
//! so recording a dispatch costs no queue operation.

use crate::error::Result;
use crate::gpu::Gpu;

/// Bytes per dispatch's parameter block (the uniform-offset alignment every adapter accepts).
pub(crate) const PARAM_SLOT: u64 = 256;
/// Dispatches per submit; the stream flushes itself when the arena is full.
pub(crate) const SLOTS: u64 = 1024;

pub(crate) struct Stream {
    /// The open pass, recording into `encoder` (which is locked while it lives).
    pass: Option<wgpu::ComputePass<'static>>,
    pub(crate) encoder: Option<wgpu::CommandEncoder>,
    pub(crate) params: Vec<u8>,
    pub(crate) params_buf: wgpu::Buffer,
    /// Submits made so far (for tests and statistics).
    pub(crate) submits: u64,
}

impl Stream {
    pub(crate) fn new(device: &wgpu::Device) -> Stream {
        let params_buf = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel params"),
            size: PARAM_SLOT * SLOTS,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Stream { pass: None, encoder: None, params: Vec::new(), params_buf, submits: 0 }
    }

    pub(crate) fn slots_used(&self) -> u64 {
        self.params.len() as u64 / PARAM_SLOT
    }

    /// The open compute pass, begun on the encoder (created if needed) when there is none.
    pub(crate) fn pass(&mut self, device: &wgpu::Device) -> &mut wgpu::ComputePass<'static> {
        let Stream { pass, encoder, .. } = self;
        pass.get_or_insert_with(|| {
            let enc = encoder.get_or_insert_with(|| device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()));
            enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("stream"), timestamp_writes: None }).forget_lifetime()
        })
    }

    /// The encoder (created if needed), after ending the open pass.
    pub(crate) fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder.get_or_insert_with(|| device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default()))
    }

    /// Submits the recorded work (if any).
    pub(crate) fn submit(&mut self, queue: &wgpu::Queue) {
        self.pass = None;
        if let Some(enc) = self.encoder.take() {
            if !self.params.is_empty() {
                queue.write_buffer(&self.params_buf, 0, &self.params);
            }
            queue.submit(Some(enc.finish()));
            self.params.clear();
            self.submits += 1;
        }
    }
}

impl Gpu {
    /// Submits all recorded GPU work. Ops only record; call this (or read a tensor) to make it run.
    pub fn flush(&self) -> Result<()> {
        if let Ok(mut s) = self.stream.lock() {
            s.submit(&self.queue);
        }
        self.take_errors()
    }

    /// Flushes and blocks until the GPU is idle (native). On the web this only flushes.
    pub fn sync(&self) -> Result<()> {
        self.flush()?;
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None }).map_err(|e| crate::error::Error::Gpu(e.to_string()))?;
        self.take_errors()
    }

    /// Lets the event loop run (browser) while keeping up to two batches of submitted work in flight:
    /// marks the work submitted so far and resolves when the work marked at the previous call is done (at
    /// once on the first call). A loop that calls this once per step therefore records step k+1 while the
    /// GPU still runs step k, and never runs more than one step ahead. A no-op natively, where submits run
    /// on their own.
    pub async fn yield_now(&self) {
        #[cfg(target_arch = "wasm32")]
        {
            let done = std::sync::Arc::new(std::sync::Mutex::new((false, None::<std::task::Waker>)));
            let d = done.clone();
            self.queue.on_submitted_work_done(move || {
                if let Ok(mut s) = d.lock() {
                    s.0 = true;
                    if let Some(w) = s.1.take() {
                        w.wake();
                    }
                }
            });
            let previous = match self.in_flight.lock() {
                Ok(mut p) => p.replace(done),
                Err(_) => None,
            };
            if let Some(prev) = previous {
                std::future::poll_fn(|cx| match prev.lock() {
                    Ok(mut s) if !s.0 => {
                        s.1 = Some(cx.waker().clone());
                        std::task::Poll::Pending
                    }
                    _ => std::task::Poll::Ready(()),
                })
                .await
            }
        }
    }

    /// Number of queue submits so far (a loop that records without flushing leaves it unchanged).
    pub fn submits(&self) -> u64 {
        self.stream.lock().map(|s| s.submits).unwrap_or(0)
    }

    /// Runs `f` with the stream's encoder (ending the open pass), creating one if needed.
    pub(crate) fn with_encoder<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        let mut s = match self.stream.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        f(s.encoder(&self.device))
    }

    /// Runs `f` with the stream's open compute pass, beginning one if needed.
    pub(crate) fn with_pass<R>(&self, f: impl FnOnce(&mut wgpu::ComputePass<'static>) -> R) -> R {
        let mut s = match self.stream.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        f(s.pass(&self.device))
    }
}
