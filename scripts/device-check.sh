#!/usr/bin/env bash
# The GPU check (issue 7) as one prepared script, for the few minutes a GPU machine is lent:
#   1-2. `sundae bench generator` for the large configuration at batch 1 and 16, in f32 and in f16;
#   3.   the same for the emoji model;
#   4.   a sample on the GPU, in f32 and in f16, against the CPU's with the same seed (token agreement).
# Every stage has its own time limit, so no stage can eat the machine's minutes (3 x 110 s for the benches
# plus short sample stages stays under 8 minutes), and the script prints what it measured as it goes.
# The exit status is non-zero when any stage failed.
#
# Usage: scripts/device-check.sh [DEVICE]                 (default vulkan)
# Environment (defaults in brackets):
#   SUNDAE   the binary, built with the device's feature   [target/release/sundae]
#   CONFIG   bench configuration for stages 1-2            [ffhq1024]
#   BATCHES  batch sizes for the benches                   [1,16]
#   MODEL    generator bundle for stages 3-4               [models/emoji]
#   LIMIT    seconds allowed per stage                     [110]
#   OUT      where the sample tokens go                    [a temporary folder]
# Try it on a CPU: CONFIG=tiny MODEL=some/tiny/bundle scripts/device-check.sh cpu
set -uo pipefail
cd "$(dirname "$0")/.."

device=${1:-vulkan}
sundae=${SUNDAE:-target/release/sundae}
config=${CONFIG:-ffhq1024}
batches=${BATCHES:-1,16}
model=${MODEL:-models/emoji}
limit=${LIMIT:-110}
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
failed=0

stage() {
    local name=$1
    shift
    echo "== $name"
    local start=$SECONDS
    timeout --kill-after=5 "$limit" "$@"
    local status=$?
    if [ $status -ne 0 ]; then
        echo "FAILED ($name): exit status $status$([ $status -eq 124 ] && echo ", over the ${limit} s limit")"
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

if [ $failed -ne 0 ]; then
    echo "device check: some stages failed"
    exit 1
fi
echo "device check: done"
