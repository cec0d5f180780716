#!/usr/bin/env bash
# The main job on a fresh machine: build, then play the game end to end on
# loopback: `symserve replay` streams the seed's trace (traces/small.csv, at
# its own pace) and scores the answers of `symserve play`, which serves the
# bundled golden small model on the best backend present (the GPU when there
# is one, the CPU otherwise). Prints the server's report: latency, throughput,
# share answered, accuracy per tower against the reference model's outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
exec tools/play-demo.sh "$@"
