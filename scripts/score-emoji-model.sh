#!/usr/bin/env bash
# The built-in model's `sundae score` figures against the emoji train split, beside the floor and the
# ceiling at the same image counts: held-out emoji, their VQ-GAN reconstructions, the model's samples,
# and decoded uniformly random token grids. At N = 177 (every held-out emoji) FD needs features narrower
# than N, so those rows use the 64-d features of pytorch-fid's first block; the N = 1000 rows use the
# standard 2048. Prints one JSON line per figure, each with its label.
# Needs the feature network: scripts/fetch-feature-net.sh.
# Usage: scripts/score-emoji-model.sh [MODEL] [WORK_DIR]   (default models/emoji, runs/score)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/emoji}
work=${2:-runs/score}
samples=${SAMPLES:-1000}
mkdir -p "$work"
cargo build --release -q
sundae=target/release/sundae
held_out=$($sundae score emoji:validation emoji:train --json 2>/dev/null | tail -1)
count=$(echo "$held_out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count_a"])')

figure() { # LABEL ARGS...: one score, printed as {"label": ..., figures}
  local label=$1; shift
  local line
  line=$($sundae score "$@" --json 2>/dev/null | tail -1)
  echo "{\"label\": \"$label\", ${line#\{}"
}

# Decoded random token grids: a .npy of uniform tokens, written without NumPy.
random_grids() { # COUNT OUT.npy
  python3 - "$1" "$2" "$model/vqgan.toml" <<'PY'
import random, re, struct, sys
count, out, config = int(sys.argv[1]), sys.argv[2], open(sys.argv[3]).read()
value = lambda key: int(re.search(rf"^{key}\s*=\s*(\d+)", config, re.M).group(1))
side = value("resolution") // 2 ** (len(re.search(r"ch_mult\s*=\s*\[([^\]]*)\]", config).group(1).split(",")) - 1)
random.seed(0)
header = "{'descr': '<i8', 'fortran_order': False, 'shape': (%d, %d, %d), }" % (count, side, side)
header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
with open(out, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
    f.write(struct.pack(f"<{count * side * side}q", *(random.randrange(value("n_embed")) for _ in range(count * side * side))))
PY
}

[ -d "$work/samples" ] || $sundae sample --model "$model" -n "$samples" --out "$work/samples.png" --out-dir "$work/samples" >/dev/null
[ -d "$work/reconstructions" ] || $sundae vqgan reconstruct --vqgan "$model" --emoji 100000 \
  --out "$work/reconstructions.png" --out-dir "$work/reconstructions" >/dev/null
if [ ! -d "$work/random" ]; then
  random_grids "$samples" "$work/random.npy"
  mkdir -p "$work/random"
  $sundae vqgan decode --vqgan "$model" --tokens "$work/random.npy" --out "$work/random/r.png" >/dev/null
fi

for dims in 2048 64; do
  figure "held-out emoji (N = $count)" emoji:validation emoji:train --dims $dims
  figure "VQ-GAN reconstructions of them (N = $count)" "$work/reconstructions" emoji:train --dims $dims
  figure "model samples (N = $count)" "$work/samples" emoji:train --dims $dims --max "$count"
  figure "decoded random tokens (N = $count)" "$work/random" emoji:train --dims $dims --max "$count"
done
figure "model samples (N = $samples)" "$work/samples" emoji:train
figure "decoded random tokens (N = $samples)" "$work/random" emoji:train
