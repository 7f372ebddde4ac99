#!/usr/bin/env bash
# The README's "Measured speed" table, each from one `lightseg bench` run
# (pipelined vs sequential vs model-only, interleaved, medians over --repeat runs).
#   bash benchmarks/pipeline_figures.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results}
mkdir -p "$out"
video=${LIGHTSEG_SHARED:-../shared}/video/solidWhiteRight.mp4
lightseg bench "$video" --model lpsnet-m --repeat 3 --json > "$out/bench_lpsnet-m_480x360.json"
lightseg bench "$video" --model espnetv2-s0.5-cityscapes --size 512x256 --repeat 3 --json \
  > "$out/bench_espnetv2-s0.5_512x256.json"
lightseg bench "$video" --model espnetv2-s2.0-cityscapes --size 1024x512 --frames 40 --repeat 3 --json \
  > "$out/bench_espnetv2-s2.0_1024x512.json"
