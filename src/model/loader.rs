//! Takes weights out of a [`TensorFile`] by key with shape checks, in two passes: a dry pass that validates
//! every key and shape without touching the GPU, then the real pass that uploads. A bad file therefore never
//! leaves a half-uploaded model behind. Keys the architecture did not ask for are reported as errors.

use std::collections::BTreeSet;

use super::weights::TensorFile;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};

/// Weight source for building a model.
pub(crate) struct Loader<'a> {
    pub(crate) gpu: &'a Gpu,
    file: &'a TensorFile,
    used: BTreeSet<String>,
    dry: bool,
    /// Parameters taken so far.
    pub(crate) params: usize,
}

impl<'a> Loader<'a> {
    pub(crate) fn new(gpu: &'a Gpu, file: &'a TensorFile, dry: bool) -> Loader<'a> {
        Loader { gpu, file, used: BTreeSet::new(), dry, params: 0 }
    }

    /// The tensor `key`, which must have exactly `shape`; returned viewed as `view` (same element count).
    pub(crate) fn take_as(&mut self, key: &str, shape: &[usize], view: &[usize]) -> Result<Tensor> {
        let t = self.file.get(key)?;
        if t.shape != shape {
            return Err(Error::Format { path: self.file.path.clone(), msg: format!("tensor '{key}' has shape {:?}, the config expects {:?}", t.shape, shape) });
        }
        self.used.insert(key.to_string());
        self.params += t.data.len();
        if self.dry {
            self.check_finite(key, &t.data)?;
            return Ok(self.gpu.dummy().clone());
        }
        self.gpu.upload(view, &t.data)
    }

    /// True when the tensor `key` was stored as F16 in the file (an f16 copy is then exact).
    pub(crate) fn is_f16(&self, key: &str) -> bool {
        self.file.f16_keys.contains(key)
    }

    /// The tensor `key` (exactly `shape`) as host values, for weights the builder combines before upload
    /// (counted and marked used like [`Loader::take`]).
    pub(crate) fn take_host(&mut self, key: &str, shape: &[usize]) -> Result<&'a [f32]> {
        let file: &'a TensorFile = self.file;
        let t = file.get(key)?;
        if t.shape != shape {
            return Err(Error::Format { path: file.path.clone(), msg: format!("tensor '{key}' has shape {:?}, the config expects {:?}", t.shape, shape) });
        }
        self.used.insert(key.to_string());
        self.params += t.data.len();
        if self.dry {
            self.check_finite(key, &t.data)?;
        }
        Ok(&t.data)
    }

    fn check_finite(&self, key: &str, data: &[f32]) -> Result<()> {
        let bad = data.iter().filter(|v| !v.is_finite()).count();
        if bad > 0 {
            return Err(Error::Format {
                path: self.file.path.clone(),
                msg: format!("tensor '{key}' has {bad} NaN or infinite value(s) of {}: the checkpoint is damaged", data.len()),
            });
        }
        Ok(())
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
        let extra: Vec<&String> = self.file.tensors.keys().filter(|k| !self.used.contains(*k)).collect();
        if extra.is_empty() {
            return Ok(());
        }
        let shown: Vec<&str> = extra.iter().take(8).map(|s| s.as_str()).collect();
        Err(Error::Format {
            path: self.file.path.clone(),
            msg: format!(
                "{} tensor(s) not used by the configured architecture (config.json and weights disagree): {}{}",
                extra.len(),
                shown.join(", "),
                if extra.len() > 8 { ", ..." } else { "" }
            ),
        })
    }
}
