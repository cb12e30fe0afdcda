#!/usr/bin/env bash
# Rust (sundae) against PyTorch on the same weights and inputs, interleaved, on this machine:
# the prior's forward pass of a bundle (default the built-in emoji model) at batch 1 and 16, both
# sides checked to give the same logits (max |diff| printed; the twin is scripts/torch_prior.py),
# and one SUNDAE training step of the emoji configuration (batch 32, T = 2, AdamW, gradient norm
# clipped; Rust: `sundae bench train`, random weights of the bundle's shape; PyTorch: the twin on
# the bundle's weights; the same work, not the same numbers: the draws differ); the bundle's VQ-GAN
# decode of 16 grids (twin: scripts/torch_vqgan.py, images compared); one VQ-GAN training step of the
# emoji configuration (`sundae bench vqgan-train`, batch 8); and, unless FFHQ=0, the
# ffhq1024 configuration with random weights (written once by `sundae bench prior --save-bundle`,
# loaded by both sides): the prior's forward at batch 1 and one 1024x1024 decode (minutes a round).
# Prints one table of Rust/PyTorch time ratios (median of the rounds, and their spread).
#
# Threads: both sides use every core (PyTorch: torch.set_num_threads(nproc)) with OpenMP's wait
# policy passive, so PyTorch's idle threads do not spin against the other side. A busy machine
# makes the comparison meaningless: the script refuses to run while the 1-minute load average is
# above LOAD_MAX (default 0.5); FORCE=1 runs anyway and says so.
#
# Usage: scripts/bench-vs-torch.sh [BUNDLE]
# Environment: PYTHON (with torch, numpy, safetensors)  [~/venv/bin/python]
#              SUNDAE  [target/release/sundae]   ROUNDS [5]   REPEATS (timed passes per round) [5]
#              FFHQ [1]   FFHQ_ROUNDS [3] (one timed pass each)
# Not part of `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=${1:-models/emoji}
python=${PYTHON:-$HOME/venv/bin/python}
sundae=${SUNDAE:-target/release/sundae}
rounds=${ROUNDS:-5}
repeats=${REPEATS:-5}
threads=$(nproc)
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v m="${LOAD_MAX:-0.5}" 'BEGIN { exit !(l > m) }'; then
  if [ "${FORCE:-0}" != 1 ]; then
    echo "bench-vs-torch: the load average is $load (over ${LOAD_MAX:-0.5}): the machine is busy, figures would mislead; stop other work or set FORCE=1" >&2
    exit 2
  fi
  echo "WARNING: load average $load: the machine is busy, these figures are not a fair comparison" >&2
fi
[ -x "$sundae" ] || cargo build --release -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=PASSIVE
echo "threads: Rust $threads (rayon), PyTorch $threads (torch.set_num_threads, OMP_WAIT_POLICY=PASSIVE); $("$python" -c 'import torch; print("torch", torch.__version__)')"

# One round's JSON lines (Rust, then PyTorch) -> their medians and ratio, kept for the next row.
rust_all=(); torch_all=(); ratios=()
record() {
  local r t
  r=$("$python" -c "import json, statistics; print(statistics.median(json.loads('''$1''')['seconds']))")
  t=$("$python" -c "import json, statistics; print(statistics.median(json.loads('''$2''')['seconds']))")
  rust_all+=("$r"); torch_all+=("$t")
  ratios+=("$("$python" -c "print($r / $t)")")
}
# One table row from the rounds recorded since the last: LABEL MAX_DIFF.
row() {
  "$python" - "$1" "$2" "${rust_all[*]}" "${torch_all[*]}" "${ratios[*]}" <<'PY'
import statistics, sys
label, diff, rust, torch, ratios = sys.argv[1:]
rust, torch, ratios = ([float(v) for v in s.split()] for s in (rust, torch, ratios))
print("%-22s %10.4f %10.4f %8.2f %16s %12s" % (
    label, statistics.median(rust), statistics.median(torch),
    statistics.median(ratios), "%.2f-%.2f" % (min(ratios), max(ratios)), diff))
PY
  rust_all=(); torch_all=(); ratios=()
}

# Random token grids: FILE BATCH HEIGHT WIDTH VOCAB (seeded by the batch).
random_tokens() {
  "$python" -c "import numpy as np; np.save('$1', np.random.default_rng($2).integers(0, $5, ($2, $3, $4)).astype(np.int64))"
}
max_diff() {
  "$python" -c "import numpy as np; print('%.1e' % np.abs(np.load('$1') - np.load('$2')).max())"
}
# A bundle's prior grid: HEIGHT WIDTH VOCAB.
prior_grid() {
  "$python" -c "import tomllib; c = tomllib.load(open('$1/prior.toml', 'rb')); print(c['grid_height'], c['grid_width'], c['vocab_size'])"
}
# A bundle's VQ-GAN token grid: SIDE SIDE CODES.
vqgan_grid() {
  "$python" -c "import tomllib; c = tomllib.load(open('$1/vqgan.toml', 'rb')); s = c['resolution'] // 2 ** (len(c['ch_mult']) - 1); print(s, s, c['n_embed'])"
}
# Prior forward rows: BUNDLE BATCH ROUNDS REPEATS LABEL.
prior_rows() {
  local tokens=$work/tokens-prior-$2.npy diff="" round
  random_tokens "$tokens" "$2" $(prior_grid "$1")
  for round in $(seq "$3"); do
    record "$("$sundae" bench prior --config "$1" --tokens "$tokens" --logits "$work/rust.npy" --repeats "$4" 2>/dev/null | tail -1)" \
      "$("$python" scripts/torch_prior.py "$1" --tokens "$tokens" --logits "$work/torch.npy" --repeats "$4" --threads "$threads")"
    [ -n "$diff" ] || diff=$(max_diff "$work/rust.npy" "$work/torch.npy")
  done
  row "$5" "$diff"
}
# VQ-GAN decode rows: BUNDLE BATCH ROUNDS REPEATS LABEL. Timed by `sundae bench vqgan` (random grids),
# checked on the same grids through `sundae vqgan decode` against the twin.
decode_rows() {
  local tokens=$work/tokens-decode-$2.npy round
  random_tokens "$tokens" "$2" $(vqgan_grid "$1")
  rm -f "$work/rust.npy"
  "$sundae" vqgan decode --vqgan "$1" --tokens "$tokens" --out "$work/rust.npy" --batch-size "$2" >/dev/null 2>&1
  for round in $(seq "$3"); do
    record "$("$sundae" bench vqgan --config "$1" --batch "$2" --repeats "$4" 2>/dev/null | tail -1 | "$python" -c "import json, sys; print(json.dumps({'seconds': json.load(sys.stdin)['decode_passes']}))")" \
      "$("$python" scripts/torch_vqgan.py "$1" --tokens "$tokens" --images "$work/torch.npy" --repeats "$4" --threads "$threads")"
  done
  row "$5" "$(max_diff "$work/rust.npy" "$work/torch.npy")"
}

printf '%-22s %10s %10s %8s %16s %12s\n' "work" "Rust s" "torch s" "ratio" "ratio spread" "max|diff|"
prior_rows "$bundle" 1 "$rounds" "$repeats" "prior forward b1"
prior_rows "$bundle" 16 "$rounds" "$repeats" "prior forward b16"

# One training step: the emoji configuration's batch of random grids on both sides.
train_tokens=$work/tokens-train.npy
random_tokens "$train_tokens" 32 $(prior_grid "$bundle")
for round in $(seq "$rounds"); do
  record "$("$sundae" bench train --config emoji --batch 32 --steps "$repeats" 2>/dev/null | tail -1)" \
    "$("$python" scripts/torch_prior.py "$bundle" --tokens "$train_tokens" --train --unroll 2 --repeats "$repeats" --threads "$threads" 2>/dev/null)"
done
row "training step b32 T2" "-"
decode_rows "$bundle" 16 "$rounds" "$repeats" "vqgan decode b16"

# One VQ-GAN training step of the emoji configuration (batch 8; L1 and the VQ loss, Adam; its
# discriminator starts after its last step): Rust random weights of the shape, PyTorch the bundle's.
for round in $(seq "$rounds"); do
  record "$("$sundae" bench vqgan-train --config emoji --batch 8 --steps "$repeats" 2>/dev/null | tail -1)" \
    "$("$python" scripts/torch_vqgan.py "$bundle" --train --batch 8 --repeats "$repeats" --threads "$threads")"
done
row "vqgan training b8" "-"

if [ "${FFHQ:-1}" != 0 ]; then
  "$sundae" bench prior --config ffhq1024 --batch 1 --repeats 1 --save-bundle "$work/ffhq1024" >/dev/null 2>&1
  prior_rows "$work/ffhq1024" 1 "${FFHQ_ROUNDS:-3}" 1 "ffhq1024 prior b1"
  decode_rows "$work/ffhq1024" 1 "${FFHQ_ROUNDS:-3}" 1 "ffhq1024 decode 1024"
fi
