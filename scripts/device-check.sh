#!/usr/bin/env bash
# The GPU check as one prepared script, for the few minutes a GPU machine is lent:
#   1-3. `sundae bench generator` for the large configuration at batch 1 and 16, in f32 and in f16
#        (prior seconds per sampler step, so 100 steps cost 100 of them; decode; peak memory), then the
#        emoji model;
#   4-5. `sundae bench train`: seconds per prior training step, the emoji configuration (batch 32) and
#        the large one (batch TRAIN_BATCH), f32 (training has no half-precision path);
#   6.   `sundae bench vqgan`: the large VQ-GAN's encode and decode (1024x1024 for ffhq1024);
#   7.   a sample on the GPU, in f32 and in f16, against the CPU's with the same seed (token agreement).
# Peak GPU memory comes from nvidia-smi, polled in the background, when the machine has it.
# Every stage has its own time limit and the whole script a deadline (TOTAL): a stage gets what is
# left of it, and stages past it are skipped, so the check fits one call. It prints what it
# measured as it goes; the exit status is non-zero when any stage failed or was skipped.
#
# Usage: scripts/device-check.sh [DEVICE]                 (default vulkan)
# Environment (defaults in brackets):
#   SUNDAE       the binary, built with the device's feature   [target/release/sundae]
#   CONFIG       bench configuration for stages 1-2, 5, 6      [ffhq1024]
#   BATCHES      batch sizes for the generator benches         [1,16]
#   TRAIN_CONFIGS  configurations whose training steps are timed   [emoji CONFIG]
#   TRAIN_BATCH  grids per training step of each but emoji     [4]
#   MODEL        generator bundle for stages 3 and 7           [models/emoji]
#   LIMIT        seconds allowed per stage                     [110]
#   TOTAL        seconds allowed for the whole check           [450]
#   OUT          where the sample tokens go                    [a temporary folder]
# Try it on a CPU: CONFIG=tiny MODEL=some/tiny/bundle scripts/device-check.sh cpu
set -uo pipefail
cd "$(dirname "$0")/.."

device=${1:-vulkan}
sundae=${SUNDAE:-target/release/sundae}
config=${CONFIG:-ffhq1024}
batches=${BATCHES:-1,16}
model=${MODEL:-models/emoji}
limit=${LIMIT:-110}
total=${TOTAL:-450}
train_batch=${TRAIN_BATCH:-4}
train_configs=${TRAIN_CONFIGS:-emoji $config}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
failed=0

if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 250 >"$out/gpu-memory.txt" 2>/dev/null &
    poller=$!
    trap 'kill $poller 2>/dev/null' EXIT
fi

stage() {
    local name=$1
    shift
    echo "== $name"
    local left=$((total - SECONDS))
    if [ $left -lt 10 ]; then
        echo "SKIPPED ($name): the ${total} s deadline is reached"
        failed=1
        return 1
    fi
    local allowed=$((left < limit ? left : limit))
    local start=$SECONDS
    timeout --kill-after=5 "$allowed" "$@"
    local status=$?
    if [ $status -ne 0 ]; then
        echo "FAILED ($name): exit status $status$([ $status -eq 124 ] && echo ", over its ${allowed} s limit")"
        failed=1
    fi
    echo "   ($((SECONDS - start)) s)"
    return $status
}

echo "device check: $device, binary $sundae, configuration $config, model $model"
stage "bench $config f32" "$sundae" bench generator --config "$config" --batch "$batches" \
    --device "$device" --precision f32
stage "bench $config f16" "$sundae" bench generator --config "$config" --batch "$batches" \
    --device "$device" --precision f16
stage "bench emoji model" "$sundae" bench generator --config "$model" --batch "$batches" \
    --device "$device"
for train in $train_configs; do
    if [ "$train" = emoji ]; then batch=(); else batch=(--batch "$train_batch"); fi
    stage "train $train" "$sundae" bench train --config "$train" "${batch[@]}" --steps 3 --device "$device"
done
stage "vqgan $config" "$sundae" bench vqgan --config "$config" --repeats 2 --device "$device"

# `timeout` runs programs, not shell functions: the sample command is spelled out per device.
sample=("$sundae" sample --model "$model" -n 16 --steps 50 --seed 7 --force)
if stage "sample on cpu" "${sample[@]}" --device cpu --out "$out/sample-cpu.png" \
    --tokens "$out/tokens-cpu.npy" &&
    stage "sample on $device" "${sample[@]}" --device "$device" --out "$out/sample-$device.png" \
        --tokens "$out/tokens-$device.npy"; then
    stage "agreement $device vs cpu" "$sundae" bench agreement "$out/tokens-$device.npy" "$out/tokens-cpu.npy"
fi
if stage "sample on $device in f16" "${sample[@]}" --device "$device" --precision f16 \
    --out "$out/sample-$device-f16.png" --tokens "$out/tokens-$device-f16.npy"; then
    stage "agreement $device f16 vs cpu f32" "$sundae" bench agreement "$out/tokens-$device-f16.npy" \
        "$out/tokens-cpu.npy"
fi

if [ -s "$out/gpu-memory.txt" ]; then
    echo "peak GPU memory: $(sort -n "$out/gpu-memory.txt" | tail -1) MiB (nvidia-smi, whole device)"
fi
if [ $failed -ne 0 ]; then
    echo "device check: some stages failed"
    exit 1
fi
echo "device check: done"
