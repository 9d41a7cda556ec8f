//! Recorded dispatch sequences. [`Gpu::capture`] runs a closure that issues ops, but instead of recording
//! them into the stream it keeps each dispatch (pipeline, parameters, buffers) and gives the closure's
//! tensors buffers from a pool private to the capture. The result is a [`Graph`]: every pipeline and bind
//! group resolved once, parameters in one uniform buffer of its own, and its intermediate buffers owned by
//! it (their reuse inside the sequence is exactly the capture's). [`Gpu::replay`] then records the whole
//! sequence into one compute pass — no pipeline lookup, bind-group creation, parameter write or host
//! allocation per dispatch. Inputs and outputs are tensors created inside the capture: write new data into
//! them before a replay and copy results out after it.

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use super::kernel::{profile_label, Dispatch, Pipeline};
use super::pool::BufferPool;
use super::stream::PARAM_SLOT;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// A dispatch kept by a capture, before its bind group exists.
struct Pending {
    pipe: Arc<Pipeline>,
    params: Vec<u32>,
    buffers: Vec<(wgpu::Buffer, u64)>,
    gx: u32,
    gy: u32,
    label: String,
}

/// A capture in progress (at most one per thread; threads capture independently).
pub(crate) struct Capture {
    thread: ThreadId,
    pub(crate) pool: Arc<Mutex<BufferPool>>,
    pending: Vec<Pending>,
    /// An op that cannot be captured (a copy or clear outside a kernel) ran during the capture.
    uncapturable: Option<&'static str>,
}

struct Node {
    pipe: Arc<Pipeline>,
    bind: wgpu::BindGroup,
    /// The node's parameter block in the graph's parameter buffer (the bind group's dynamic offset).
    offset: u32,
    gx: u32,
    gy: u32,
    label: String,
}

/// A captured dispatch sequence; see the module documentation. Holds its parameter buffer and the buffers
/// of every tensor the capture created (until the graph is dropped).
pub struct Graph {
    nodes: Vec<Node>,
    _params: wgpu::Buffer,
    pool: Arc<Mutex<BufferPool>>,
}

impl Graph {
    /// Number of dispatches one replay records.
    pub fn dispatches(&self) -> usize {
        self.nodes.len()
    }
    /// Bytes of GPU memory held by the graph's own buffers (intermediates, inputs, outputs, parameters).
    pub fn bytes(&self) -> u64 {
        let pool = self.pool.lock().map(|p| p.allocated).unwrap_or(0);
        pool + self.nodes.len() as u64 * PARAM_SLOT
    }
}

impl Gpu {
    /// Runs `f` while capturing: returns its result and the [`Graph`] of the dispatches it issued. Nothing
    /// runs on the GPU during the capture; tensors `f` creates get buffers owned by the graph. Only this
    /// thread's ops are captured (other threads keep using the stream). Copies and clears outside kernels
    /// cannot be captured and make the capture fail.
    pub fn capture<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<(T, Graph)> {
        let me = std::thread::current().id();
        {
            let mut c = self.capture.lock().map_err(|_| Error::Gpu("capture state poisoned".into()))?;
            if c.iter().any(|c| c.thread == me) {
                return Err(Error::Invalid { op: "capture", msg: "this thread is already capturing (captures do not nest)".into() });
            }
            let meter = self.pool.lock().map_err(|_| Error::Gpu("buffer pool poisoned".into()))?.meter.clone();
            c.push(Capture { thread: me, pool: Arc::new(Mutex::new(BufferPool::new(meter))), pending: Vec::new(), uncapturable: None });
        }
        let out = f();
        let cap = {
            let mut c = self.capture.lock().map_err(|_| Error::Gpu("capture state poisoned".into()))?;
            let i = c.iter().position(|c| c.thread == me).ok_or_else(|| Error::Gpu("capture state lost".into()))?;
            c.swap_remove(i)
        };
        let value = out?;
        if let Some(op) = cap.uncapturable {
            return Err(Error::Invalid { op: "capture", msg: format!("{op} cannot be captured into a graph") });
        }
        let params = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("graph params"),
            size: (cap.pending.len().max(1) as u64) * PARAM_SLOT,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut words = vec![0u32; cap.pending.len() * (PARAM_SLOT as usize / 4)];
        for (i, p) in cap.pending.iter().enumerate() {
            let at = i * (PARAM_SLOT as usize / 4);
            words[at..at + p.params.len()].copy_from_slice(&p.params);
        }
        if !words.is_empty() {
            self.queue.write_buffer(&params, 0, bytemuck::cast_slice(&words));
        }
        let nodes = cap
            .pending
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let list: Vec<(&wgpu::Buffer, u64)> = p.buffers.iter().map(|(b, n)| (b, *n)).collect();
                let bind = self.bind_group(&p.pipe, &params, &list);
                Node { pipe: p.pipe, bind, offset: (i as u64 * PARAM_SLOT) as u32, gx: p.gx, gy: p.gy, label: p.label }
            })
            .collect();
        self.take_errors()?;
        Ok((value, Graph { nodes, _params: params, pool: cap.pool }))
    }

    /// Records every dispatch of `graph` into the stream's open compute pass (while profiling, each
    /// dispatch is submitted and waited for on its own, so each can be timed).
    pub fn replay(&self, graph: &Graph) -> Result<()> {
        if self.capturing() {
            return Err(Error::Invalid { op: "replay", msg: "cannot replay a graph while capturing".into() });
        }
        let profiling = self.profile.lock().map(|p| p.is_some()).unwrap_or(false);
        if profiling {
            for n in &graph.nodes {
                self.with_pass(|pass| {
                    pass.set_pipeline(&n.pipe.pipeline);
                    pass.set_bind_group(0, &n.bind, &[n.offset]);
                    pass.dispatch_workgroups(n.gx, n.gy, 1);
                });
                self.profile_wait(|| n.label.clone())?;
            }
            return Ok(());
        }
        self.with_pass(|pass| {
            for n in &graph.nodes {
                pass.set_pipeline(&n.pipe.pipeline);
                pass.set_bind_group(0, &n.bind, &[n.offset]);
                pass.dispatch_workgroups(n.gx, n.gy, 1);
            }
        });
        Ok(())
    }

    /// True while this thread is capturing.
    pub(crate) fn capturing(&self) -> bool {
        let me = std::thread::current().id();
        self.capture.lock().map(|c| c.iter().any(|c| c.thread == me)).unwrap_or(false)
    }

    /// Runs `f` with this thread's capture (if any) set aside: its dispatches are recorded into the stream
    /// at once, ahead of any replay of the graph being captured, and its tensors come from the device's
    /// pool, so that what it makes outlives the graph (data derived from weights, made on first use).
    pub(crate) fn outside_capture<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let me = std::thread::current().id();
        let held = {
            let mut c = self.capture.lock().map_err(|_| Error::Gpu("capture state poisoned".into()))?;
            c.iter().position(|c| c.thread == me).map(|i| c.swap_remove(i))
        };
        let out = f();
        if let Some(cap) = held {
            self.capture.lock().map_err(|_| Error::Gpu("capture state poisoned".into()))?.push(cap);
        }
        out
    }

    /// The capture pool, when this thread is capturing (new tensors come from it).
    pub(crate) fn capture_pool(&self) -> Option<Arc<Mutex<BufferPool>>> {
        let me = std::thread::current().id();
        self.capture.lock().ok()?.iter().find(|c| c.thread == me).map(|c| c.pool.clone())
    }

    /// Keeps `d` in this thread's capture; false when not capturing (the caller records it normally).
    pub(crate) fn capture_dispatch(&self, d: &Dispatch, params: &super::Params) -> Result<bool> {
        let me = std::thread::current().id();
        let mut c = self.capture.lock().map_err(|_| Error::Gpu("capture state poisoned".into()))?;
        match c.iter_mut().find(|c| c.thread == me) {
            Some(cap) => {
                cap.pending.push(Pending {
                    pipe: d.pipe.clone(),
                    params: params.words().to_vec(),
                    buffers: d.args.iter().map(|(t, _)| (t.buffer().clone(), t.bytes())).collect(),
                    gx: d.gx,
                    gy: d.gy,
                    label: profile_label(d),
                });
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Notes that `op` (a copy or clear, not a kernel) ran; a capture on this thread then fails.
    pub(crate) fn note_uncapturable(&self, op: &'static str) {
        let me = std::thread::current().id();
        if let Ok(mut c) = self.capture.lock() {
            if let Some(cap) = c.iter_mut().find(|c| c.thread == me) {
                cap.uncapturable.get_or_insert(op);
            }
        }
    }

    /// Counts a bind-group creation (tests check that a replayed graph creates none).
    pub(crate) fn count_bind_group(&self) {
        self.bind_groups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bind groups created so far (constant across replays of a captured graph).
    pub fn bind_groups_created(&self) -> u64 {
        self.bind_groups.load(std::sync::atomic::Ordering::Relaxed)
    }
}
