#!/usr/bin/env bash
# Rust (sundae) against PyTorch on the same weights and inputs, interleaved, on this machine:
# the prior's forward pass of a bundle (default the built-in emoji model) at batch 1 and 16, both
# sides checked to give the same logits (max |diff| printed; the twin is scripts/torch_prior.py),
# and one SUNDAE training step of the emoji configuration (batch 32, T = 2, AdamW, gradient norm
# clipped; Rust: `sundae bench train`, random weights of the bundle's shape; PyTorch: the twin on
# the bundle's weights; the same work, not the same numbers: the draws differ).
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

grid=$("$python" -c "import tomllib; c = tomllib.load(open('$bundle/prior.toml', 'rb')); print(c['grid_height'], c['grid_width'], c['vocab_size'])")
read -r gh gw vocab <<<"$grid"
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

printf '%-22s %10s %10s %8s %16s %12s\n' "work" "Rust s" "torch s" "ratio" "ratio spread" "max|diff|"
for batch in 1 16; do
  tokens=$work/tokens-$batch.npy
  "$python" -c "import numpy as np; np.save('$tokens', np.random.default_rng($batch).integers(0, $vocab, ($batch, $gh, $gw)).astype(np.int64))"
  diff=""
  for round in $(seq "$rounds"); do
    record "$("$sundae" bench prior --config "$bundle" --tokens "$tokens" --logits "$work/rust.npy" --repeats "$repeats" 2>/dev/null | tail -1)" \
      "$("$python" scripts/torch_prior.py "$bundle" --tokens "$tokens" --logits "$work/torch.npy" --repeats "$repeats" --threads "$threads")"
    [ -n "$diff" ] || diff=$("$python" -c "import numpy as np; print('%.1e' % np.abs(np.load('$work/rust.npy') - np.load('$work/torch.npy')).max())")
  done
  row "prior forward b$batch" "$diff"
done

# One training step: the emoji configuration's batch of random grids on both sides.
train_tokens=$work/tokens-train.npy
"$python" -c "import numpy as np; np.save('$train_tokens', np.random.default_rng(32).integers(0, $vocab, (32, $gh, $gw)).astype(np.int64))"
for round in $(seq "$rounds"); do
  record "$("$sundae" bench train --config emoji --batch 32 --steps "$repeats" 2>/dev/null | tail -1)" \
    "$("$python" scripts/torch_prior.py "$bundle" --tokens "$train_tokens" --train --unroll 2 --repeats "$repeats" --threads "$threads" 2>/dev/null)"
done
row "training step b32 T2" "-"
