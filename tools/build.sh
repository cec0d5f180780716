#!/usr/bin/env bash
# Configures and builds symserve into build/ (CUDA objects too when nvcc is
# found). Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build build -j"$(nproc)"
