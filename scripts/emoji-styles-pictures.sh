#!/usr/bin/env bash
# The README's pictures of a labelled emoji model: unconditional samples; samples whose style and name
# each image draws at random (--random-label); one emoji name in every style;
# guidance 0, 1 and 3 side by side (same seed, same labels); a held-out (name, style) pair sheet; the
# lower half of a held-out drawing inpainted (Fluent's woman, docs/inpaint-woman-fluent.png: its name is
# held out in that style) with its labels at guidance 3.
# Usage: scripts/emoji-styles-pictures.sh MODEL OUT_DIR [NAME]   (NAME default red-heart)
# Environment: STYLES [~/.cache/sundae/emoji-styles]  SUNDAE [target/release/sundae]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: scripts/emoji-styles-pictures.sh MODEL OUT_DIR [NAME]}
out=${2:?usage: scripts/emoji-styles-pictures.sh MODEL OUT_DIR [NAME]}
name=${3:-red-heart}
styles=${STYLES:-$HOME/.cache/sundae/emoji-styles}
sundae=${SUNDAE:-target/release/sundae}
mkdir -p "$out"
[ -x "$sundae" ] || cargo build --release -q

"$sundae" sample --model "$model" -n 16 --seed 1 --no-random-labels --out "$out/styles-unconditional.png" --force
"$sundae" sample --model "$model" -n 16 --seed 1 --random-label style --random-label name \
  --out "$out/styles-random-labels.png" --force
for style in $("$sundae" labels --model "$model" --set style); do
  "$sundae" sample --model "$model" -n 4 --seed 1 --label "name=$name" --label "style=$style" \
    --guidance 3 --out "$out/styles-$name-$style.png" --force
done
for guidance in 0 1 3; do
  "$sundae" sample --model "$model" -n 4 --seed 1 --label "name=$name" --label style=noto \
    --guidance "$guidance" --out "$out/styles-guidance-$guidance.png" --force
done
"$sundae" pairs --model "$model" --data "emoji,iconify:$styles" --guidance 3 --max 16 \
  --out "$out/styles-pairs.png" --force
"$sundae" inpaint --model "$model" --image docs/inpaint-woman-fluent.png --mask docs/inpaint-mask-lower.png \
  --label name=woman --label style=fluent-emoji-flat --guidance 3 -n 8 --seed 1 --paste --show-input \
  --out "$out/styles-inpaint.png" --force
