#!/usr/bin/env bash
# tools/ncu-step-table.py and tools/queue-sim.py on inputs whose answers
# are known: a two-kernel ncu CSV (sums, rates, the copy-rate excess), and
# the serving-loop model with a constant 1 ms step (latency at least one
# step, at most a few at a low rate; every request answered).
set -euo pipefail
repo=$1
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/step.csv" <<'CSV'
==PROF== Connected to process
"ID","Kernel Name","dram__bytes_read.sum","dram__bytes_write.sum","gpu__time_duration.sum"
"","","byte","byte","nsecond"
"0","void k_a<5>(int, float *)","3000000","3000000","4000"
"1","void k_a<5>(int, float *)","3000000","3000000","4000"
"2","k_b(float)","1000","0","10000"
CSV
out=$(python3 "$repo/tools/ncu-step-table.py" "$tmp/step.csv" --copy-tbs 3.0)
echo "$out"
# k_a: 2 launches, 8 us, 12 MB -> 1.50 TB/s, 8 - 12e6/3e6 = 4 us above; k_b first (10 us above)
echo "$out" | sed -n 3p | grep -q '^| k_b | 1 | 10 |' || { echo "FAIL: k_b should lead (largest excess)"; exit 1; }
echo "$out" | grep -q '^| void k_a<5> | 2 | 8 | 0.012 | 1.50 | 4 |$' || { echo "FAIL: k_a row"; exit 1; }
echo "$out" | grep -q '^| \*\*all, one at a time\*\* | 3 | 18 |' || { echo "FAIL: totals"; exit 1; }
out=$(python3 "$repo/tools/queue-sim.py" --steps 1:1.0,128:1.0 --rates 100,800 --symbols 8 --seconds 20)
echo "$out"
python3 - "$out" <<'PY'
import sys
rows = [l.split("|")[1:-1] for l in sys.argv[1].splitlines()[2:]]
for r in rows:
    rate, p50, p99, thr = float(r[0]), float(r[2]), float(r[3]), float(r[4])
    assert 1.0 <= p50 <= 2.0, ("p50 of a 1 ms step", p50)
    assert p50 <= p99 <= 5.0, ("p99", p99)
    assert abs(thr - rate) / rate < 0.1, ("throughput", thr, rate)
print("PASS: analysis tools")
PY
