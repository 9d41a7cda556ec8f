//! Takes weights out of a [`WeightFile`] by key with shape checks. A load runs three passes: a dry pass
//! that validates every key and shape without touching the GPU, a value pass that converts and checks every
//! tensor once (the one that yields to the event loop and reports progress in a browser), then the real pass
//! that uploads. A bad file therefore never leaves a half-uploaded model behind. Keys the architecture did
//! not ask for are reported as errors.

use std::collections::BTreeSet;

use super::weights::WeightFile;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};

/// Weight source for building a model: a file, or nothing (a dry pass that records what the architecture
/// asks for, see [`Loader::recorder`]).
pub(crate) struct Loader<'a> {
    pub(crate) gpu: &'a Gpu,
    file: Option<&'a WeightFile<'a>>,
    used: BTreeSet<String>,
    dry: bool,
    /// Parameters taken so far.
    pub(crate) params: usize,
    /// (key, shape) of every tensor taken, in the order the builder asked for them.
    pub(crate) taken: Vec<(String, Vec<usize>)>,
}

impl<'a> Loader<'a> {
    pub(crate) fn new(gpu: &'a Gpu, file: &'a WeightFile<'a>, dry: bool) -> Loader<'a> {
        Loader { gpu, file: Some(file), used: BTreeSet::new(), dry, params: 0, taken: Vec::new() }
    }

    /// A dry loader without a file: every tensor asked for is recorded in `taken` (host values are zeros).
    pub(crate) fn recorder(gpu: &'a Gpu) -> Loader<'a> {
        Loader { gpu, file: None, used: BTreeSet::new(), dry: true, params: 0, taken: Vec::new() }
    }

    /// Checks that `key` is stored with exactly `shape` and marks it used.
    fn check(&mut self, key: &str, shape: &[usize]) -> Result<()> {
        if let Some(file) = self.file {
            let stored = file.shape(key)?;
            if stored != shape {
                return Err(Error::Format { path: file.path.clone(), msg: format!("tensor '{key}' has shape {stored:?}, the config expects {shape:?}") });
            }
        }
        self.used.insert(key.to_string());
        self.params += shape.iter().product::<usize>();
        self.taken.push((key.to_string(), shape.to_vec()));
        Ok(())
    }

    /// The values of `key` (zeros of `shape` when recording).
    fn values(&self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        match self.file {
            Some(file) => file.values(key),
            None => Ok(vec![0.0; shape.iter().product()]),
        }
    }

    /// The tensor `key`, which must have exactly `shape`; returned viewed as `view` (same element count).
    pub(crate) fn take_as(&mut self, key: &str, shape: &[usize], view: &[usize]) -> Result<Tensor> {
        self.check(key, shape)?;
        if self.dry {
            return Ok(self.gpu.dummy().clone());
        }
        self.gpu.upload(view, &self.values(key, shape)?)
    }

    /// True when the tensor `key` was stored as F16 in the file (an f16 copy is then exact).
    pub(crate) fn is_f16(&self, key: &str) -> bool {
        self.file.is_some_and(|f| f.f16_keys.contains(key))
    }

    /// The tensor `key` (exactly `shape`) as host values, for weights the builder combines before upload
    /// (counted and marked used like [`Loader::take`]).
    pub(crate) fn take_host(&mut self, key: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.check(key, shape)?;
        self.values(key, shape)
    }

    /// True in the validating pass (tensors are dummies).
    pub(crate) fn is_dry(&self) -> bool {
        self.dry
    }

    /// Uploads derived data (e.g. a frequency table); a dummy in the dry pass.
    pub(crate) fn upload(&mut self, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        if self.dry {
            return Ok(self.gpu.dummy().clone());
        }
        self.gpu.upload(shape, data)
    }

    /// The tensor `key` with exactly `shape`.
    pub(crate) fn take(&mut self, key: &str, shape: &[usize]) -> Result<Tensor> {
        self.take_as(key, shape, shape)
    }

    /// Errors if the file holds keys the architecture did not use.
    pub(crate) fn finish(&self) -> Result<()> {
        let Some(file) = self.file else { return Ok(()) };
        let extra: Vec<String> = file.keys().into_iter().filter(|k| !self.used.contains(k)).collect();
        if extra.is_empty() {
            return Ok(());
        }
        let shown: Vec<&str> = extra.iter().take(8).map(|s| s.as_str()).collect();
        Err(Error::Format {
            path: file.path.clone(),
            msg: format!(
                "{} tensor(s) not used by the configured architecture (config.json and weights disagree): {}{}",
                extra.len(),
                shown.join(", "),
                if extra.len() > 8 { ", ..." } else { "" }
            ),
        })
    }
}
