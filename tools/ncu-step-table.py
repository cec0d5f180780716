#!/usr/bin/env python3
"""Per-kernel table of one profiled step from ncu's raw CSV
(tools/gpu-run.sh GV_NCU_STEP=1: gpu__time_duration.sum, dram__bytes_read.sum,
dram__bytes_write.sum, base units). Kernels are grouped by name; for each
group: launches, total us, GB moved, TB/s, and the time above what its
bytes take at the copy rate (--copy-tbs, default 3.0). Sorted by that
excess, which is what the step would save if the group ran at the copy rate.
usage: ncu-step-table.py FILE.csv [--copy-tbs 3.0]"""
import csv
import re
import sys


def main():
    args = sys.argv[1:]
    copy = 3.0
    if "--copy-tbs" in args:
        i = args.index("--copy-tbs")
        copy = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    with open(args[0], newline="") as f:
        lines = [ln for ln in f if ln.startswith('"')]
    rows = list(csv.reader(lines))
    if not rows:
        sys.exit("no CSV rows in " + args[0])
    head = rows[0]
    col = {name: i for i, name in enumerate(head)}
    need = ["Kernel Name", "gpu__time_duration.sum", "dram__bytes_read.sum", "dram__bytes_write.sum"]
    for n in need:
        if n not in col:
            sys.exit("column %s missing" % n)
    groups = {}
    for r in rows[1:]:
        try:
            t = float(r[col["gpu__time_duration.sum"]].replace(",", ""))
            rd = float(r[col["dram__bytes_read.sum"]].replace(",", ""))
            wr = float(r[col["dram__bytes_write.sum"]].replace(",", ""))
        except ValueError:
            continue  # the units row
        name = re.sub(r"\(.*$", "", r[col["Kernel Name"]]).strip()
        g = groups.setdefault(name, [0, 0.0, 0.0])
        g[0] += 1
        g[1] += t * 1e-3  # ns -> us
        g[2] += rd + wr
    tot_t = sum(g[1] for g in groups.values())
    tot_b = sum(g[2] for g in groups.values())
    tot_n = sum(g[0] for g in groups.values())
    print("| kernel | launches | us | GB | TB/s | us above the copy rate |")
    print("|---|---|---|---|---|---|")
    items = sorted(groups.items(), key=lambda kv: -(kv[1][1] - kv[1][2] / (copy * 1e6)))
    for name, (n, t, b) in items:
        print("| %s | %d | %.0f | %.3f | %.2f | %.0f |" % (name[:60], n, t, b / 1e9, b / (t * 1e6) if t else 0,
                                                        t - b / (copy * 1e6)))
    print("| **all, one at a time** | %d | %.0f | %.3f | %.2f | %.0f |" % (tot_n, tot_t, tot_b / 1e9,
                                                                          tot_b / (tot_t * 1e6), tot_t - tot_b / (copy * 1e6)))


if __name__ == "__main__":
    main()
