#!/usr/bin/env bash
# Builds the browser demo: the wasm library + its JS glue into web/pkg/ (git-ignored), and web/samples.json.
#
#   bash web/build.sh                 # full build (any cwd)
#   bash web/build.sh --samples-only  # only regenerate web/samples.json from assets/samples
#
# Then serve the repository root:  python3 -m http.server 8000 --bind 127.0.0.1  →  http://127.0.0.1:8000/web/
#
# The wasm needs the wasm32-unknown-unknown target. Route 1 adds it with rustup; where rustup cannot download it
# (no network to static.rust-lang.org), route 2 uses Debian's rustc-web/cargo-web and builds std from
# rust-web-src (-Zbuild-std), linking with the rustup toolchain's rust-lld.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

# web/samples.json: the bundled sample file names, sorted bytewise, as a JSON array.
write_samples() {
  local out="$ROOT/web/samples.json" first=1 f
  {
    printf '[\n'
    while IFS= read -r f; do
      [ "$first" = 1 ] || printf ',\n'
      first=0
      printf ' "%s"' "$f"
    done < <(cd "$ROOT/assets/samples" && ls -1 -- *.png | LC_ALL=C sort)
    printf '\n]\n'
  } > "$out.tmp"
  mv "$out.tmp" "$out"
  echo "wrote web/samples.json ($(grep -c '\.png"' "$out") samples)"
}

if [ "${1:-}" = "--samples-only" ]; then
  write_samples
  exit 0
fi

export PATH="$HOME/.cargo/bin:$PATH"

# 1. wasm-bindgen CLI of exactly the version of the wasm-bindgen crate in Cargo.lock (they must match).
WB_VERSION=$(grep -A1 'name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p' | head -n1)
if [ -z "$WB_VERSION" ]; then
  echo "error: no wasm-bindgen crate in Cargo.lock (is the wasm API in the build?)" >&2
  exit 1
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WB_VERSION" ]; then
  echo "installing wasm-bindgen-cli $WB_VERSION (was: $(wasm-bindgen --version 2>/dev/null || echo none))"
  cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi
echo "wasm-bindgen: $(wasm-bindgen --version)"

# 2. The wasm library.
ROUTE=""
TARGET_DIR=""
if command -v rustup >/dev/null 2>&1 \
  && rustup target add wasm32-unknown-unknown \
  && cargo build --lib --release --no-default-features --target wasm32-unknown-unknown; then
  ROUTE="1 (rustup target wasm32-unknown-unknown)"
  TARGET_DIR="$ROOT/target"
else
  echo "route 1 (rustup target) failed; trying route 2 (Debian rustc-web + build-std)" >&2
  if ! apt-get install -y rustc-web cargo-web rust-web-src; then
    apt-get update
    apt-get install -y rustc-web cargo-web rust-web-src
  fi
  LLD="$(rustc +stable --print sysroot)/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld"
  RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$LLD" \
    /usr/bin/cargo build --lib --release --no-default-features --target wasm32-unknown-unknown \
    -Zbuild-std=std,panic_abort --target-dir target/web-debian
  ROUTE="2 (Debian rustc-web, -Zbuild-std)"
  TARGET_DIR="$ROOT/target/web-debian"
fi
echo "wasm build: route $ROUTE worked"

# 3. JS glue for <script type="module">.
WASM="$TARGET_DIR/wasm32-unknown-unknown/release/reddiff.wasm"
wasm-bindgen --target web --out-dir web/pkg "$WASM"
echo "wasm: $WASM $(stat -c %s "$WASM") bytes; web/pkg/reddiff_bg.wasm $(stat -c %s web/pkg/reddiff_bg.wasm) bytes"

# 4. Sample list for the page.
write_samples
echo "done: serve the repo root (python3 -m http.server 8000 --bind 127.0.0.1) and open http://127.0.0.1:8000/web/"
