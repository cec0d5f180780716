#!/usr/bin/env bash
# Draws the end-to-end latency CDFs of some runs of one tools/gpu-e2e.sh
# tarball (the .cdf files replay writes with --cdf), log-scaled latency.
#   tools/plot-e2e.sh OUT.png e2e-NAME.tar.gz [run ...]
# Default runs: the trace and the Poisson rates around the 25 ms p99 knee.
# TITLE: the plot's title.
set -eu
png=$1 tgz=$2 title=${TITLE:-symserve play on one H100, full model, mixed precision}
shift 2
runs=${*:-trace_speed1 poisson39_2000 poisson39_3000 poisson39_4000 poisson128_3000 poisson128_4000}
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
tar -C "$d" -xzf "$tgz"
plots=
for r in $runs; do
  [ -f "$d/$r.cdf" ] || { echo "no run $r in $tgz" >&2; exit 1; }
  plots="$plots${plots:+, }'$d/$r.cdf' using 1:2 with steps lw 2 title '$r'"
done
gnuplot <<GP
set terminal pngcairo size 900,540 noenhanced
set xrange [1:300]
set output '$png'
set logscale x
set grid
set key bottom right
set xlabel 'end-to-end latency (ms), replay send -> response'
set ylabel 'fraction of requests'
set title '$title'
plot $plots, '+' using (25):(\$0/100.0) with lines dt 2 lc rgb 'red' title '25 ms'
GP
