#!/usr/bin/env bash
# The main job on a fresh machine: build, then run the bundled small golden
# model over its request stream and print the accuracy against the reference
# model's outputs. Uses the GPU when one is present, the CPU otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
d=tests/data/golden_small
build/app/symserve predict --model "$d" --requests "$d/requests.csv" --out build/predictions.csv \
  --expected "$d/expected_f64.csv"
