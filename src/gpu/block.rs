//! A minimal executor for the blocking entry points (native only): polls a future on the calling thread and
//! parks between wake-ups. wgpu's futures are driven by `Device::poll`, which the awaited code calls itself.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread and returns its output.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}
