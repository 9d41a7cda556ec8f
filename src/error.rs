//! The crate's typed error. Every public fallible function returns [`Result<T>`].

use std::path::PathBuf;

/// Everything that can go wrong in reddiff, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable GPU adapter was found.
    #[error("no GPU adapter found{detail}. {hint}")]
    NoAdapter {
        /// What was asked for (backend / adapter filter), if anything.
        detail: String,
        /// What to install or change.
        hint: &'static str,
    },
    /// The adapter refused the device request.
    #[error("could not open the GPU device on '{adapter}': {reason}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's message.
        reason: String,
    },
    /// Tensor shapes do not fit the operation.
    #[error("{op}: {msg}")]
    Shape {
        /// Operation name, e.g. `conv2d`.
        op: &'static str,
        /// What was expected and what was found.
        msg: String,
    },
    /// A tensor with no elements was given or requested.
    #[error("{op}: tensor of shape {shape:?} has no elements")]
    Empty {
        /// Operation name.
        op: &'static str,
        /// The offending shape.
        shape: Vec<usize>,
    },
    /// A buffer exceeds what the adapter allows.
    #[error("{op}: {what} needs {bytes} bytes but the adapter allows at most {limit} ({shape:?})")]
    TooLarge {
        /// Operation name.
        op: &'static str,
        /// Which limit (buffer size, storage binding size, ...).
        what: &'static str,
        /// Requested bytes.
        bytes: u64,
        /// The adapter's limit in bytes.
        limit: u64,
        /// The tensor shape involved.
        shape: Vec<usize>,
    },
    /// An argument is outside its valid range.
    #[error("{op}: invalid argument: {msg}")]
    Invalid {
        /// Operation or option name.
        op: &'static str,
        /// Explanation.
        msg: String,
    },
    /// The optimisation produced NaN or Inf.
    #[error("RED-diff diverged at step {step}: {count} non-finite values in the estimate. {hint}")]
    Diverged {
        /// 1-based step at which it was detected.
        step: usize,
        /// Number of NaN / Inf values.
        count: usize,
        /// What to try.
        hint: &'static str,
    },
    /// The caller asked to stop.
    #[error("cancelled at step {step}")]
    Cancelled {
        /// 1-based step after which the run stopped.
        step: usize,
    },
    /// wgpu reported a validation or device error (a bug in reddiff if it happens).
    #[error("GPU error: {0}")]
    Gpu(String),
    /// Mapping a buffer for readback failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file was read but its contents are wrong (format, keys, shapes).
    #[error("{path}: {msg}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
}

/// Shorthand for `std::result::Result<T, reddiff::Error>`.
pub type Result<T> = std::result::Result<T, Error>;
