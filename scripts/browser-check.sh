#!/usr/bin/env bash
# Checks `sundae serve` in headless Chromium: generate (images change over the steps), paint a mask,
# inpaint, and screenshots into OUT_DIR. Needs Debian's chromium (apt-get install chromium) and Node;
# playwright-core is installed from npm into a scratch folder, nothing into the project.
# Usage: scripts/browser-check.sh [OUT_DIR] [MODEL]   (default: a temporary folder, the built-in model)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$(mktemp -d)}
model=${2:-models/emoji-styles}
mkdir -p "$out"
command -v chromium >/dev/null || { echo "browser check: chromium is not installed"; exit 1; }
scratch=$(mktemp -d)
log=$(mktemp)
trap 'kill $server 2>/dev/null || true; rm -rf "$scratch" "$log"' EXIT
(cd "$scratch" && npm install --silent --no-save playwright-core@1 >/dev/null)
cargo build --release -q
target/release/sundae serve --model "$model" --port 0 > "$log" 2>&1 &
server=$!
for _ in $(seq 1 100); do grep -q "http://" "$log" && break; sleep 0.2; done
url=$(grep -o "http://[0-9.:]*/" "$log" | head -1)
[ -n "$url" ] || { cat "$log"; exit 1; }
here=$(pwd)
(cd "$scratch" && node "$here/scripts/browser-check.mjs" "$url" "$out")
