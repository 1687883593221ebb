#!/usr/bin/env bash
# Builds the JavaScript and Python transform examples into OUT_DIR:
#   OUT_DIR/example_transform_javascript.wasm   (jco componentize, from javascript/transform.js)
#   OUT_DIR/example_transform_python.wasm       (componentize-py, from python/app.py)
# The Rust example is a member of the plugins workspace instead:
#   cargo build --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml
#   → plugins/target/wasm32-wasip2/release/example_transform_rust.wasm
#
# The toolchains are installed the first time (or when their pins change) into .tools/ beside
# this script, never globally:
#   .tools/node     jco + componentize-js, exactly as javascript/package-lock.json pins them (npm ci)
#   .tools/python   a virtualenv with componentize-py, as python/requirements.txt pins it (pip)
# Needs node ≥ 20 with npm, and python3 (≥ 3.10) with venv. A component newer than its sources
# is not built again (neither tool builds byte-for-byte reproducibly, so an unneeded rebuild
# would also cost the host a fresh compile). Each file is written, then renamed into OUT_DIR, so
# OUT_DIR may be Roster's plugins folder.
#
#   plugins/examples/build.sh OUT_DIR
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
wit="$(cd "$here/../../wit" && pwd)"
tools="$here/.tools"
mkdir -p "$1"
out="$(cd "$1" && pwd)"

# True when $1 is missing or older than any of the other files.
stale() {
  local target="$1"; shift
  [ -f "$target" ] || return 0
  local f
  for f in "$@"; do
    [ "$f" -nt "$target" ] && return 0
  done
  return 1
}

# Writes the build's output ($2, a temporary file) to $out/$1 by rename.
publish() {
  mv -f "$2" "$out/$1"
  echo "    $out/$1 ($(wc -c <"$out/$1") bytes)"
}

# --- JavaScript: jco componentize (ComponentizeJS / StarlingMonkey) ------------------------------
node_tools="$tools/node"
if ! cmp -s "$here/javascript/package-lock.json" "$node_tools/package-lock.json" \
  || [ ! -x "$node_tools/node_modules/.bin/jco" ]; then
  echo "==> installing the JavaScript toolchain into $node_tools (npm ci)"
  command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 or later" >&2; exit 1; }
  rm -rf "$node_tools"
  mkdir -p "$node_tools"
  cp "$here/javascript/package.json" "$here/javascript/package-lock.json" "$node_tools/"
  (cd "$node_tools" && npm ci --no-audit --no-fund --loglevel=error)
fi
js_out=example_transform_javascript.wasm
if stale "$out/$js_out" "$here/javascript/transform.js" "$wit"/*.wit "$node_tools/package-lock.json"; then
  echo "==> building the JavaScript example (jco componentize)"
  # http and fetch-event would import wasi:http, which Roster does not give plugins; stdio stays
  # on so an uncaught exception's message reaches the host's error report.
  (cd "$here/javascript" && "$node_tools/node_modules/.bin/jco" componentize transform.js \
    --wit ../../../wit --world-name transform-plugin --disable http fetch-event \
    -o "$out/.$js_out.tmp")
  publish "$js_out" "$out/.$js_out.tmp"
else
  echo "==> $out/$js_out is up to date"
fi

# --- Python: componentize-py --------------------------------------------------------------------
py_tools="$tools/python"
if ! cmp -s "$here/python/requirements.txt" "$py_tools/requirements.txt" \
  || [ ! -x "$py_tools/bin/componentize-py" ]; then
  echo "==> installing the Python toolchain into $py_tools (venv + pip)"
  command -v python3 >/dev/null || { echo "python3 is missing" >&2; exit 1; }
  rm -rf "$py_tools"
  python3 -m venv "$py_tools"
  "$py_tools/bin/pip" install --quiet --disable-pip-version-check -r "$here/python/requirements.txt"
  cp "$here/python/requirements.txt" "$py_tools/requirements.txt"
fi
py_out=example_transform_python.wasm
if stale "$out/$py_out" "$here/python/app.py" "$wit"/*.wit "$py_tools/requirements.txt"; then
  echo "==> building the Python example (componentize-py)"
  (cd "$here/python" && "$py_tools/bin/componentize-py" --quiet -d ../../../wit -w transform-plugin \
    componentize app -o "$out/.$py_out.tmp")
  publish "$py_out" "$out/.$py_out.tmp"
else
  echo "==> $out/$py_out is up to date"
fi
