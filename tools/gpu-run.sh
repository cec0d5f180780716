#!/usr/bin/env bash
# The GPU machine's one entry point for the CUDA engine: from the repo root,
#   . tools/unpack-debs.sh && bash tools/gpu-run.sh
# builds (standalone CMake project of the gv engine + its tests and bench),
# runs the GPU tests and benches, writes logs under $OUT, prints a summary.
exec bash "$(dirname "$0")/gpu-run-gv.sh" "$@"
