#!/usr/bin/env bash
# Imports a checkpoint written by taming-transformers' own code and compares encode/decode with taming's.
# Needs a Python with torch, pytorch-lightning, omegaconf, numpy, pillow and taming-transformers
# (PYTHON=/path/to/python to choose it). Prints the agreement figures.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
work=${1:-$(mktemp -d)}
cargo build --release -q
sundae=target/release/sundae

# Eight emoji from the crate's PNGs, found through cargo's registry copy of twemoji-assets.
assets=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/twemoji-assets-*/assets/72x72 2>/dev/null | head -1 || true)
[ -n "$assets" ] || { echo "twemoji-assets sources not found under the cargo registry" >&2; exit 1; }
pngs=$(ls "$assets"/*.png | awk 'NR % 450 == 1' | head -8)

$python scripts/check_taming.py "$work" $pngs
$sundae vqgan import --config "$work/f16.yaml" --ckpt "$work/last.ckpt" --out "$work/bundle"
$sundae vqgan encode --vqgan "$work/bundle" --out "$work/sundae_indices.npy" "$work"/image*.png
$sundae vqgan decode --vqgan "$work/bundle" --tokens "$work/taming_indices.npy" --out "$work/sundae_decoded.npy"
$python scripts/compare_npy.py "$work/taming_indices.npy" "$work/sundae_indices.npy"
$python scripts/compare_npy.py "$work/taming_decoded.npy" "$work/sundae_decoded.npy"
