#!/usr/bin/env bash
# Installs symserve's build dependencies from Debian's packages when they are
# missing: a C compiler, CMake, pkg-config, concurrencykit, nanomsg, cJSON,
# libmicrohttpd (the metrics endpoint), and gnuplot (latency plots). The CUDA toolkit is used when present (nvcc on
# PATH or in /usr/local/cuda/bin) and never installed here.
set -euo pipefail
need=()
command -v cc >/dev/null || need+=(gcc)
command -v cmake >/dev/null || need+=(cmake)
command -v make >/dev/null || need+=(make)
command -v pkg-config >/dev/null || need+=(pkg-config)
for pair in ck:libck-dev nanomsg:libnanomsg-dev libcjson:libcjson-dev libmicrohttpd:libmicrohttpd-dev; do
  mod=${pair%%:*} pkg=${pair#*:}
  pkg-config --exists "$mod" 2>/dev/null || need+=("$pkg")
done
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
