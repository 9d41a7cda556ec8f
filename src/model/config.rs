//! config.json parsing with errors that name the file, the key and the expected type.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A parsed config.json object with typed, error-reporting getters.
pub(crate) struct Config {
    pub(crate) path: PathBuf,
    pub(crate) obj: Map<String, Value>,
}

impl Config {
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Config> {
        let v: Value = serde_json::from_str(text).map_err(|e| Error::Format { path: path.to_path_buf(), msg: format!("invalid JSON: {e}") })?;
        match v {
            Value::Object(obj) => Ok(Config { path: path.to_path_buf(), obj }),
            _ => Err(Error::Format { path: path.to_path_buf(), msg: "config must be a JSON object".into() }),
        }
    }

    pub(crate) fn err(&self, key: &str, msg: impl std::fmt::Display) -> Error {
        Error::Format { path: self.path.clone(), msg: format!("'{key}': {msg}") }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(crate) fn int(&self, key: &str, default: Option<i64>) -> Result<i64> {
        match self.get(key) {
            Some(v) => v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)).ok_or_else(|| self.err(key, format!("expected an integer, found {v}"))),
            None => default.ok_or_else(|| self.err(key, "missing")),
        }
    }

    pub(crate) fn usize(&self, key: &str, default: Option<usize>) -> Result<usize> {
        let v = self.int(key, default.map(|d| d as i64))?;
        usize::try_from(v).map_err(|_| self.err(key, format!("expected a non-negative integer, found {v}")))
    }

    pub(crate) fn float(&self, key: &str, default: Option<f64>) -> Result<f64> {
        match self.get(key) {
            Some(v) => v.as_f64().ok_or_else(|| self.err(key, format!("expected a number, found {v}"))),
            None => default.ok_or_else(|| self.err(key, "missing")),
        }
    }

    pub(crate) fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => Ok(n.as_i64() == Some(1)),
            Some(v) => Err(self.err(key, format!("expected true or false, found {v}"))),
            None => Ok(default),
        }
    }

    pub(crate) fn string(&self, key: &str, default: Option<&str>) -> Result<String> {
        match self.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(key, format!("expected a string, found {v}"))),
            None => default.map(str::to_string).ok_or_else(|| self.err(key, "missing")),
        }
    }

    /// A list of numbers given as a JSON list or a comma-separated string ("1,2,2"); "" or missing → empty.
    pub(crate) fn num_list(&self, key: &str) -> Result<Vec<f64>> {
        match self.get(key) {
            None => Ok(vec![]),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(vec![]),
            Some(Value::String(s)) => s
                .split(',')
                .map(|p| p.trim().parse::<f64>().map_err(|_| self.err(key, format!("'{p}' is not a number"))))
                .collect(),
            Some(Value::Array(a)) => a.iter().map(|v| v.as_f64().ok_or_else(|| self.err(key, format!("expected numbers, found {v}")))).collect(),
            Some(Value::Number(n)) => Ok(vec![n.as_f64().unwrap_or(0.0)]),
            Some(v) => Err(self.err(key, format!("expected a list or a comma-separated string, found {v}"))),
        }
    }

    /// A list of strings (diffusers block types).
    pub(crate) fn str_list(&self, key: &str) -> Result<Vec<String>> {
        match self.get(key) {
            Some(Value::Array(a)) => a.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| self.err(key, format!("expected strings, found {v}")))).collect(),
            Some(v) => Err(self.err(key, format!("expected a list of strings, found {v}"))),
            None => Err(self.err(key, "missing")),
        }
    }
}
