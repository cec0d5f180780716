#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, runs every
# test. GPU tests skip (and say so) where no GPU is present.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh "$@"
ctest --test-dir build --output-on-failure -j2
