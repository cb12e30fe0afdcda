#!/usr/bin/env bash
# Reproduces the second-generation built-in generator: four emoji styles with labels.
#   1. the styles (scripts/fetch-emoji-styles.sh), beside the built-in Twemoji;
#   2. the VQ-GAN on all four, started from the built-in one (configs/vqgan-emoji-styles.toml; its result
#      is committed as models/emoji-styles-vqgan and used unless RETRAIN_VQGAN=1);
#   3. latents with labels: the train split with mirror images, and the held-out split;
#   4. the labelled prior in nine stages (configs/prior-emoji-styles{,-on,-more,-more2,-more3,-more4,-more5,-more6,-more8}.toml,
#      about 10 hours on a 2-core CPU; -more7 was tried and not shipped);
#   5. the bundle (f16) with its sampler defaults, then its held-out figures;
#   6. its render decoders: 256 pixels in four stages (configs/decoder-emoji-256.toml, from the VQ-GAN's
#      decoder, then -256-more, -256-deep and -256-attn, each from the last one's weights), then 1024
#      pixels grown from it (configs/decoder-emoji-1024-attn.toml), added as f16. (The earlier 1024
#      decoders, configs/decoder-emoji-1024{,-deep}.toml, were grown from earlier 256 stages and replaced;
#      nothing later starts from them, so they are not retrained here.)
# Every stage resumes where it stopped when the script is run again.
# Usage: scripts/train-emoji-styles.sh [WORK_DIR] [OUT_BUNDLE]   (default runs/emoji-styles, runs/emoji-styles/model)
# On a GPU: DEVICE=vulkan FEATURES=vulkan scripts/train-emoji-styles.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-runs/emoji-styles}
out=${2:-$work/model}
styles=${STYLES:-$HOME/.cache/sundae/emoji-styles}
mkdir -p "$work"
cargo build --release -q ${FEATURES:+--features "$FEATURES"}
sundae=target/release/sundae
device=(--device "${DEVICE:-cpu}")
data="emoji,iconify:$styles"
scripts/fetch-emoji-styles.sh "$styles"

resume_flag() { [ -f "$1/checkpoint/latest" ] && echo --resume || true; }

# The tokenizer: the committed one (models/emoji-styles-vqgan, this config's run, f16) unless
# RETRAIN_VQGAN=1 asks for the run itself (about 45 minutes on a 2-core CPU).
if [ -z "${RETRAIN_VQGAN:-}" ] && [ -f models/emoji-styles-vqgan/vqgan.safetensors ]; then
  vqgan=models/emoji-styles-vqgan
else
  if [ -f "$work/vqgan/checkpoint/latest" ]; then vq=(--resume); else vq=(--config configs/vqgan-emoji-styles.toml --init models/emoji); fi
  $sundae vqgan train "${device[@]}" --data "$data" "${vq[@]}" --run "$work/vqgan" --bundle "$work/vqgan-bundle" --force
  vqgan=$work/vqgan-bundle
fi
$sundae encode "${device[@]}" --vqgan "$vqgan" --data "$data" --split train --flip --out "$work/latents"
$sundae encode "${device[@]}" --vqgan "$vqgan" --data "$data" --split validation --out "$work/latents-validation"
# Nine stages, each from the last one's weights (an f32 bundle) with a fresh optimiser and its own seed.
previous=
for stage in prior prior-on prior-more prior-more2 prior-more3 prior-more4 prior-more5 prior-more6 prior-more8; do
  config=configs/${stage/prior/prior-emoji-styles}.toml
  if [ -f "$work/$stage/checkpoint/latest" ]; then pr=(--resume)
  elif [ -z "$previous" ]; then pr=(--config "$config")
  else pr=(--config "$config" --init "$work/$previous-bundle"); fi
  $sundae train "${device[@]}" --latents "$work/latents" "${pr[@]}" --run "$work/$stage" --vqgan "$vqgan"
  $sundae bundle --vqgan "$vqgan" --prior "$work/$stage" --out "$work/$stage-bundle" --force
  previous=$stage
done
$sundae bundle --vqgan "$vqgan" --prior "$work/$previous" --out "$out" --half --force
cat > "$out/sampling.toml" <<'TOML'
# Sampler defaults for this model (flags win): the reference's annealed temperature and update share.
steps = 60
temperature = "1.0:0.7"
proportion = "0.5"
# `sample` draws each image's style and name at random unless --label, --random-label or
# --no-random-labels says otherwise: drawn labels give clearer emoji than none (FD 1.18x the
# reconstructions' against 1.92x for label-free samples, README).
random_labels = ["style", "name"]
TOML
echo "generator written to $out"
$sundae evaluate "${device[@]}" --model "$out" --latents "$work/latents-validation" --rates 0.1,0.5,1 --blocks

# The 256 decoder in four stages (each from the last one's weights: a lower rate, one block deeper, attention
# at 16x16 too), then the 1024 one grown from it.
for stage in 256 256-more 256-deep 256-attn 1024-attn; do
  run="$work/decoder-$stage"
  size=${stage%%-*}
  if [ -f "$run/checkpoint/latest" ]; then dec=(--resume)
  elif [ "$stage" = 256 ]; then dec=(--config configs/decoder-emoji-256.toml)
  else dec=(--config "configs/decoder-emoji-$stage.toml" --init "$out/decoders/256"); fi
  $sundae vqgan train-decoder "${device[@]}" --data "$data" --vqgan "$vqgan" "${dec[@]}" --run "$run"
  $sundae vqgan add-decoder --run "$run" --bundle "$out" --half --force
  $sundae vqgan reconstruct "${device[@]}" --vqgan "$out" --data "$data:validation" --max 100 \
    --render-size "$size" --out "$work/decoder-$stage-validation.png" --force
done
