#!/usr/bin/env bash
# Reproduces the built-in generator (models/emoji) from nothing but the repository:
# VQ-GAN on the emoji set at 64x64, then its decoder alone with a falling learning rate -> latent data set
# (with mirror images) -> SUNDAE prior -> a second prior stage with block corruption, a third with a fill
# embedding (both for inpainting) and a fourth that trains the third on -> bundle, then the held-out figures.
# About 9 hours on a 2-core CPU (VQ-GAN 3000 steps, decoder 2000 steps, prior 3500 steps, second stage 1200
# steps, third stage 1000 steps, fourth stage 600 steps).
# Every stage resumes where it stopped when the script is run again.
# Usage: scripts/train-emoji.sh [WORK_DIR]   (default runs/emoji)
# On a GPU: DEVICE=vulkan FEATURES=vulkan scripts/train-emoji.sh (every stage runs on that device).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-runs/emoji}
mkdir -p "$work"
cargo build --release -q ${FEATURES:+--features "$FEATURES"}
sundae=target/release/sundae
device=(--device "${DEVICE:-cpu}")

resume_flag() { [ -f "$1/checkpoint/latest" ] && echo --resume || true; }

$sundae vqgan train "${device[@]}" --data emoji --config configs/vqgan-emoji.toml --run "$work/vqgan" \
  $(resume_flag "$work/vqgan") --bundle "$work/vqgan-bundle" --force
# The decoder trains on with a falling learning rate; the encoder and codebook stay fixed, so the tokens
# below are the first stage's either way.
if [ -f "$work/vqgan-polish/checkpoint/latest" ]; then polish=(--resume); else polish=(--init "$work/vqgan-bundle"); fi
$sundae vqgan train "${device[@]}" --data emoji --config configs/vqgan-emoji-polish.toml --run "$work/vqgan-polish" \
  "${polish[@]}" --bundle "$work/vqgan-polish-bundle" --force
$sundae encode "${device[@]}" --vqgan "$work/vqgan-bundle" --data emoji --split train --flip --out "$work/latents"
$sundae encode "${device[@]}" --vqgan "$work/vqgan-bundle" --data emoji --split validation --out "$work/latents-validation"
$sundae train "${device[@]}" --latents "$work/latents" --config configs/prior-emoji.toml --run "$work/prior" \
  $(resume_flag "$work/prior") --vqgan "$work/vqgan-bundle"
# The second stage starts from the first's weights (an f32 bundle) with a fresh optimiser; half its grids
# are corrupted in a random rectangle, as an inpainting mask leaves a region to the sampler.
$sundae bundle --vqgan "$work/vqgan-bundle" --prior "$work/prior" --out "$work/stage1" --force
if [ -f "$work/prior-blocks/checkpoint/latest" ]; then stage2=(--resume); else stage2=(--init "$work/stage1"); fi
$sundae train "${device[@]}" --latents "$work/latents" --config configs/prior-emoji-blocks.toml --run "$work/prior-blocks" \
  "${stage2[@]}" --vqgan "$work/vqgan-bundle"
# The third stage starts from the second's weights and learns a fill embedding: a vector added to the input of
# every token inside a block (and, when sampling, inside an inpainting mask).
$sundae bundle --vqgan "$work/vqgan-bundle" --prior "$work/prior-blocks" --out "$work/stage2" --force
if [ -f "$work/prior-fill/checkpoint/latest" ]; then stage3=(--resume); else stage3=(--init "$work/stage2"); fi
$sundae train "${device[@]}" --latents "$work/latents" --config configs/prior-emoji-fill.toml --run "$work/prior-fill" \
  "${stage3[@]}" --vqgan "$work/vqgan-bundle"
# The fourth stage trains the third on with a fresh optimiser, a new seed and a falling learning rate.
$sundae bundle --vqgan "$work/vqgan-bundle" --prior "$work/prior-fill" --out "$work/stage3" --force
if [ -f "$work/prior-fill-more/checkpoint/latest" ]; then stage4=(--resume); else stage4=(--init "$work/stage3"); fi
$sundae train "${device[@]}" --latents "$work/latents" --config configs/prior-emoji-fill-more.toml --run "$work/prior-fill-more" \
  "${stage4[@]}" --vqgan "$work/vqgan-bundle"
# f16 storage halves the bundle (loading converts back to the device's precision).
$sundae bundle --vqgan "$work/vqgan-polish-bundle" --prior "$work/prior-fill-more" --out models/emoji --half --force
cat > models/emoji/sampling.toml <<'TOML'
# Sampler defaults for this model (flags win): the reference's annealed temperature and update share
# over 60 steps.
steps = 60
temperature = "1.0:0.7"
proportion = "0.5"
TOML
echo "built-in model written to models/emoji"

# Held-out figures: the VQ-GAN's reconstruction PSNR on the validation emoji, the prior's loss and token
# accuracy on their token grids (and the codebook share they use), and the sampler's speed.
$sundae vqgan reconstruct "${device[@]}" --vqgan models/emoji --emoji 1000 --out "$work/validation-reconstructions.png"
$sundae evaluate "${device[@]}" --model models/emoji --latents "$work/latents-validation" --rates 0.1,0.5,1 --blocks
$sundae sample "${device[@]}" --out "$work/samples.png"
