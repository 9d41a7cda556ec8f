//! Seeded mutation fuzzing of every parser that sees user files: safetensors weights, config.json, images
//! (PNG, JPEG), masks and blur kernels. Each mutated input must give Ok or a typed error — never a panic.
//! The case counts are printed; the seeds are fixed, so a failure reproduces.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use common::gpu;
use reddiff::image::Image;
use reddiff::model::{TensorFile, Unet};
use reddiff::operators::patterns::{kernel_from_image, mask_from_image};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four random byte-level mutations: bit flips, interesting bytes, 64-bit extremes, truncation,
/// insertion, duplication of a slice, deletion of a slice. `hot` bytes at the front (headers) are favoured.
fn mutate(r: &mut Rng, data: &[u8], hot: usize) -> Vec<u8> {
    let mut v = data.to_vec();
    for _ in 0..1 + r.below(4) {
        if v.is_empty() {
            v.push(r.next() as u8);
            continue;
        }
        let at = if r.below(2) == 0 { r.below(hot.min(v.len())) } else { r.below(v.len()) };
        match r.below(7) {
            0 => v[at] ^= 1 << r.below(8),
            1 => v[at] = [0x00, 0xff, 0x7f, 0x80, b'0', b'"', b'-'][r.below(7)],
            2 => {
                let x = [0u64, u64::MAX, i64::MAX as u64, 1 << 40, 1 << 31, 7][r.below(6)].to_le_bytes();
                for (k, b) in x.iter().enumerate() {
                    if at + k < v.len() {
                        v[at + k] = *b;
                    }
                }
            }
            3 => v.truncate(at),
            4 => {
                let n = 1 + r.below(16);
                for _ in 0..n {
                    v.insert(at, r.next() as u8);
                }
            }
            5 => {
                let end = (at + 1 + r.below(64)).min(v.len());
                let chunk = v[at..end].to_vec();
                v.splice(at..at, chunk);
            }
            _ => {
                let end = (at + 1 + r.below(32)).min(v.len());
                v.drain(at..end);
            }
        }
    }
    v
}

/// Text mutations for config.json: numbers replaced by extremes, keys misspelt, characters dropped.
fn mutate_json(r: &mut Rng, text: &str) -> String {
    let mut s = text.to_string();
    for _ in 0..1 + r.below(3) {
        match r.below(5) {
            0 => {
                // Replace a digit run with an extreme value.
                let digits: Vec<usize> = s.char_indices().filter(|(_, c)| c.is_ascii_digit()).map(|(i, _)| i).collect();
                if let Some(&i) = digits.get(r.below(digits.len())) {
                    let end = s[i..].find(|c: char| !c.is_ascii_digit()).map(|e| i + e).unwrap_or(s.len());
                    let val = ["0", "-1", "1048576", "1e300", "2.5", "\"x\"", "null", "[]", "4294967296"][r.below(9)];
                    s.replace_range(i..end, val);
                }
            }
            1 => {
                // Misspell a key: drop its last letter.
                let quotes: Vec<usize> = s.match_indices("\":").map(|(i, _)| i).collect();
                if let Some(&i) = quotes.get(r.below(quotes.len())) {
                    if i > 1 {
                        s.remove(i - 1);
                    }
                }
            }
            2 => {
                if !s.is_empty() {
                    let i = r.below(s.len());
                    if s.is_char_boundary(i) {
                        s.remove(i);
                    }
                }
            }
            3 => s = s.replace("true", "false"),
            _ => s = s.replace("false", "true"),
        }
    }
    s
}

/// Runs `f` on every case; returns (cases, panics).
fn fuzz<T>(cases: Vec<T>, mut f: impl FnMut(&T)) -> (usize, usize) {
    let mut panics = 0;
    for c in &cases {
        if catch_unwind(AssertUnwindSafe(|| f(c))).is_err() {
            panics += 1;
        }
    }
    (cases.len(), panics)
}

#[test]
fn mutated_user_files_never_panic() {
    let fixture = root().join("tests/fixtures/adm_plain_newattn");
    let cfg = std::fs::read_to_string(fixture.join("config.json")).unwrap();
    let weights = std::fs::read(fixture.join("model.safetensors")).unwrap();
    let io = std::fs::read(fixture.join("io.safetensors")).unwrap();
    let png = std::fs::read(root().join("assets/samples/google-1f466.png")).unwrap();
    let jpeg = Image::read(&root().join("assets/samples/google-1f466.png")).unwrap().encode(reddiff::image::OutputFormat::Jpeg).unwrap();
    let name = Path::new("fuzz");
    let mut r = Rng(0x5eed_0001);
    let mut report = Vec::new();

    let cases: Vec<Vec<u8>> = (0..3000).map(|_| mutate(&mut r, &io, 256)).collect();
    report.push(("safetensors parse", fuzz(cases, |b| drop(TensorFile::parse(name, b)))));

    let g = gpu();
    let cases: Vec<Vec<u8>> = (0..300).map(|_| mutate(&mut r, &weights, 2048)).collect();
    report.push(("model weights load", fuzz(cases, |b| drop(Unet::from_bytes(g, name, &cfg, name, b)))));

    let cases: Vec<String> = (0..1000).map(|_| mutate_json(&mut r, &cfg)).collect();
    report.push(("config.json load", fuzz(cases, |c| drop(Unet::from_bytes(g, name, c, name, &weights)))));

    let cases: Vec<Vec<u8>> = (0..2000).map(|_| mutate(&mut r, &png, 64)).collect();
    report.push(("PNG decode", fuzz(cases, |b| drop(Image::decode(name, b)))));

    let cases: Vec<Vec<u8>> = (0..1000).map(|_| mutate(&mut r, &jpeg, 256)).collect();
    report.push(("JPEG decode", fuzz(cases, |b| drop(Image::decode(name, b)))));

    let cases: Vec<Vec<u8>> = (0..500).map(|_| mutate(&mut r, &png, 64)).collect();
    report.push((
        "mask and kernel images",
        fuzz(cases, |b| {
            if let Ok(im) = Image::decode(name, b) {
                drop(mask_from_image(&im, 32, 32));
                drop(kernel_from_image(&im));
            }
        }),
    ));

    let total: usize = report.iter().map(|(_, (n, _))| n).sum();
    let panics: usize = report.iter().map(|(_, (_, p))| p).sum();
    for (what, (n, p)) in &report {
        eprintln!("{what}: {n} cases, {p} panics");
    }
    eprintln!("total: {total} cases, {panics} panics");
    assert!(total >= 2000);
    assert_eq!(panics, 0, "mutated inputs panicked: {report:?}");
}
