#!/usr/bin/env bash
# Fetches the feature network of the project's own `sundae score` figures: the Inception-v3 that the
# nsfwjs npm package ships (MIT; weights from the npm registry, so any machine here can have them),
# converted once into safetensors with pytorch-fid's tensor names. Its figures are FID-like, not FID:
# the standard FID needs pytorch-fid's pt_inception-2015-12-05 weights, which a user supplies.
# Usage: scripts/fetch-feature-net.sh [OUT]   (default ~/.cache/sundae/nsfwjs-inception-v3.safetensors)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-$HOME/.cache/sundae/nsfwjs-inception-v3.safetensors}
if [ -f "$out" ]; then
  echo "$out already exists"
  exit 0
fi
mkdir -p "$(dirname "$out")"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
(cd "$scratch" && npm pack --silent nsfwjs@4.4.0 >/dev/null && tar xzf nsfwjs-4.4.0.tgz)
node scripts/convert-nsfwjs-inception.mjs "$scratch/package" "$out"
echo "use: sundae score ... --features $out"
