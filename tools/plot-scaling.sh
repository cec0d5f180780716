#!/usr/bin/env bash
# Draws throughput and p99 against the offered rate for the e2e runs of
# tools/gpu-multi.sh (PART=e2e): one line per configuration (gpusN: N GPUs,
# a shard each; splitN: one shard with its towers over N GPUs; splitNxK: K
# such shards) and symbol count.
#   [GPUS=H200s] tools/plot-scaling.sh OUT.png e2e-gpus1.tar.gz e2e-gpus2.tar.gz e2e-split2.tar.gz ...
set -eu
png=$1
shift
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
plots1= plots2=
for tgz in "$@"; do
  n=$(basename "$tgz" .tar.gz)
  n=${n#e2e-}
  case $n in
  gpus1) label="1 GPU" ;;
  gpus*) label="${n#gpus} GPUs" ;;
  split*x*) k=${n#split}; label="${k#*x} shards, towers split over ${k%x*} GPUs each" ;;
  split*) label="towers split over ${n#split} GPUs" ;;
  *) label=$n ;;
  esac
  mkdir -p "$d/$n"
  tar -C "$d/$n" -xzf "$tgz"
  for syms in $(ls "$d/$n" | sed -n 's/^poisson\([0-9]*\)_.*json$/\1/p' | sort -un); do
    python3 - "$d/$n" "$syms" >"$d/$n-$syms.dat" <<'PY'
import json, os, sys
d, s = sys.argv[1], sys.argv[2]
rows = []
for f in os.listdir(d):
    if f.startswith(f"poisson{s}_") and f.endswith(".json"):
        r = json.load(open(os.path.join(d, f)))
        rows.append((int(f[len(f"poisson{s}_"):-5]), r["throughput_rps"], r["latency_ms"]["p99"]))
for off, rps, p99 in sorted(rows):
    print(off, rps, p99)
PY
    t="$label, $syms symbols"
    plots1="$plots1${plots1:+, }'$d/$n-$syms.dat' using 1:2 with linespoints title '$t'"
    plots2="$plots2${plots2:+, }'$d/$n-$syms.dat' using 1:3 with linespoints title '$t'"
  done
done
gnuplot <<GP
set terminal pngcairo size 1300,620 noenhanced
set output '$png'
set multiplot layout 1,2
set key top left font ',9'
set grid
set xlabel 'offered req/s (Poisson)'
set ylabel 'answered req/s'
set title 'Throughput, full model, mixed, ${GPUS:-H100s}'
plot $plots1, x with lines dt 2 lc rgb 'gray' title 'offered'
set logscale y
set ylabel 'p99 latency (ms)'
set key top left font ',9'
set title 'End-to-end p99 (play <-> replay, loopback)'
plot $plots2, 25 with lines dt 2 lc rgb 'red' title '25 ms'
unset multiplot
GP
