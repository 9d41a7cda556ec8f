//! config.json parsing with errors that name the file, the key and the expected type.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A parsed config.json object with typed, error-reporting getters. It remembers every key a builder looked
/// at, so keys nobody reads (misspellings that would silently load a different network) can be refused.
pub(crate) struct Config {
    pub(crate) path: PathBuf,
    pub(crate) obj: Map<String, Value>,
    looked_at: RefCell<BTreeSet<String>>,
}

impl Config {
    pub(crate) fn parse(path: &Path, text: &str) -> Result<Config> {
        let v: Value = serde_json::from_str(text).map_err(|e| Error::Format { path: path.to_path_buf(), msg: format!("invalid JSON: {e}") })?;
        match v {
            Value::Object(obj) => Ok(Config { path: path.to_path_buf(), obj, looked_at: RefCell::new(BTreeSet::new()) }),
            _ => Err(Error::Format { path: path.to_path_buf(), msg: "config must be a JSON object".into() }),
        }
    }

    pub(crate) fn err(&self, key: &str, msg: impl std::fmt::Display) -> Error {
        Error::Format { path: self.path.clone(), msg: format!("'{key}': {msg}") }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.looked_at.borrow_mut().insert(key.to_string());
        self.obj.get(key).filter(|v| !v.is_null())
    }

    /// Errors on a key that no builder read and that is not in `ignored` (settings of training or sampling
    /// that do not change the network) and does not start with `_` (metadata), naming the closest known key.
    pub(crate) fn check_unknown_keys(&self, ignored: &[&str]) -> Result<()> {
        let looked = self.looked_at.borrow();
        let known: Vec<&str> = looked.iter().map(String::as_str).chain(ignored.iter().copied()).collect();
        for key in self.obj.keys() {
            if key.starts_with('_') || known.contains(&key.as_str()) {
                continue;
            }
            let closest = known.iter().min_by_key(|k| edit_distance(key, k)).filter(|k| edit_distance(key, k) <= 3);
            let hint = match closest {
                Some(k) => format!("did you mean '{k}'?"),
                None => format!("known keys: {}", known.join(", ")),
            };
            return Err(self.err(key, format!("unknown key; it would be ignored and the network built without it ({hint})")));
        }
        Ok(())
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(crate) fn int(&self, key: &str, default: Option<i64>) -> Result<i64> {
        match self.get(key) {
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(|| self.err(key, format!("expected an integer, found {v}"))),
            None => default.ok_or_else(|| self.err(key, "missing")),
        }
    }

    pub(crate) fn usize(&self, key: &str, default: Option<usize>) -> Result<usize> {
        let v = self.int(key, default.map(|d| d as i64))?;
        usize::try_from(v).map_err(|_| self.err(key, format!("expected a non-negative integer, found {v}")))
    }

    /// A non-negative integer within `range` (caps keep absurd configs from allocating terabytes).
    pub(crate) fn usize_in(&self, key: &str, default: Option<usize>, range: std::ops::RangeInclusive<usize>) -> Result<usize> {
        let v = self.usize(key, default)?;
        if !range.contains(&v) {
            return Err(self.err(key, format!("{v} is outside the supported range {} to {}", range.start(), range.end())));
        }
        Ok(v)
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
            Some(Value::String(s)) => s.split(',').map(|p| p.trim().parse::<f64>().map_err(|_| self.err(key, format!("'{p}' is not a number")))).collect(),
            Some(Value::Array(a)) => a.iter().map(|v| v.as_f64().ok_or_else(|| self.err(key, format!("expected numbers, found {v}")))).collect(),
            Some(Value::Number(n)) => Ok(vec![n.as_f64().unwrap_or(0.0)]),
            Some(v) => Err(self.err(key, format!("expected a list or a comma-separated string, found {v}"))),
        }
    }

    /// A list of strings (diffusers block types).
    pub(crate) fn str_list(&self, key: &str) -> Result<Vec<String>> {
        match self.get(key) {
            Some(Value::Array(a)) => {
                a.iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| self.err(key, format!("expected strings, found {v}")))).collect()
            }
            Some(v) => Err(self.err(key, format!("expected a list of strings, found {v}"))),
            None => Err(self.err(key, "missing")),
        }
    }
}

/// Levenshtein distance (characters).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j])).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
