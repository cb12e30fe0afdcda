#!/usr/bin/env bash
# Checks the converted nsfwjs Inception-v3 (scripts/fetch-feature-net.sh) against TensorFlow.js running
# the package's own model: the 2048 pooled features of three emoji rendered at 299x299 must agree.
# Installs @tensorflow/tfjs and pngjs from npm into a scratch folder (nothing into the project).
# Usage: scripts/check-nsfwjs-conversion.sh [WEIGHTS]   (default ~/.cache/sundae/nsfwjs-inception-v3.safetensors)
set -euo pipefail
cd "$(dirname "$0")/.."
weights=${1:-$HOME/.cache/sundae/nsfwjs-inception-v3.safetensors}
[ -f "$weights" ] || scripts/fetch-feature-net.sh "$weights"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "$scratch" && npm pack --silent nsfwjs@4.4.0 >/dev/null && tar xzf nsfwjs-4.4.0.tgz \
  && npm install --silent --no-save @tensorflow/tfjs@4 pngjs@7 >/dev/null)
cargo run --release -q --example inception_features -- "$weights" 2048 \
  "emoji:1f600:$scratch/a.png" "emoji:1f355:$scratch/b.png" "emoji:1f1eb-1f1f7:$scratch/c.png" > "$scratch/features.jsonl"
(cd "$scratch" && node "$OLDPWD/scripts/check-nsfwjs-conversion.mjs" package features.jsonl)
