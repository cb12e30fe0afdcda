#!/usr/bin/env bash
# The second-generation model's figures against the train split of all its styles (Twemoji plus the
# fetched Iconify sets), at the held-out split's image count N and at SAMPLES: held-out drawings (the
# floor), their VQ-GAN reconstructions, unconditional samples (FD, precision, recall from `sundae
# score`, 2048-d), and samples whose style and name each image draws at random (`--random-label style
# --random-label name`: the data's spread of emoji and styles); then the held-out (name, style) pairs
# (`sundae pairs`) at guidance 0 and 3.
# Prints one JSON line per figure, each with its label; sheets and image folders stay in WORK_DIR.
# Needs the feature network (scripts/fetch-feature-net.sh) and the styles (scripts/fetch-emoji-styles.sh).
# Scoring the ~14,000 training drawings the first time takes about 40 minutes on 2 cores (cached after).
# Usage: scripts/score-emoji-styles.sh MODEL [WORK_DIR]   (default WORK_DIR runs/score-styles)
# Environment: STYLES [~/.cache/sundae/emoji-styles]  SAMPLES [1000]  PAIRS (pairs scored, evenly
#              spread; all when empty) [200]  SUNDAE [target/release/sundae]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: scripts/score-emoji-styles.sh MODEL [WORK_DIR]}
work=${2:-runs/score-styles}
styles=${STYLES:-$HOME/.cache/sundae/emoji-styles}
samples=${SAMPLES:-1000}
pairs=${PAIRS-200}
sundae=${SUNDAE:-target/release/sundae}
data="emoji,iconify:$styles"
mkdir -p "$work"
[ -x "$sundae" ] || cargo build --release -q

figure() { # LABEL ARGS...: one score, printed as {"label": ..., figures}
  local label=$1; shift
  local line
  line=$("$sundae" score "$@" --json 2>/dev/null | tail -1)
  echo "{\"label\": \"$label\", ${line#\{}"
}

held_out=$(figure "held-out drawings" "$data:validation" "$data:train")
echo "$held_out"
count=$(echo "$held_out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count_a"])')

[ -d "$work/reconstructions" ] || "$sundae" vqgan reconstruct --vqgan "$model" --data "$data:validation" \
  --max 100000 --out "$work/reconstructions.png" --out-dir "$work/reconstructions" >/dev/null
[ -d "$work/samples" ] || "$sundae" sample --model "$model" -n "$samples" --no-random-labels --out "$work/samples.png" \
  --out-dir "$work/samples" >/dev/null
[ -d "$work/random-labels" ] || "$sundae" sample --model "$model" -n "$samples" --random-label style \
  --random-label name --out "$work/random-labels.png" --out-dir "$work/random-labels" >/dev/null

figure "VQ-GAN reconstructions of them (N = $count)" "$work/reconstructions" "$data:train"
figure "unconditional samples (N = $count)" "$work/samples" "$data:train" --max "$count"
figure "unconditional samples (N = $samples)" "$work/samples" "$data:train"
figure "random-label samples (N = $count)" "$work/random-labels" "$data:train" --max "$count"
figure "random-label samples (N = $samples)" "$work/random-labels" "$data:train"

for guidance in 0 3; do
  line=$("$sundae" pairs --model "$model" --data "$data" --guidance "$guidance" ${pairs:+--max "$pairs"} \
    --json --out "$work/pairs-guidance-$guidance.png" --force 2>/dev/null | tail -1)
  echo "{\"label\": \"held-out (name, style) pairs, guidance $guidance\", ${line#\{}"
done
