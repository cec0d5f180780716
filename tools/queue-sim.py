#!/usr/bin/env python3
"""What step times a request rate needs: a model of the game's serving loop.

Poisson arrivals at RATE req/s, spread evenly over SYMBOLS symbols; one
engine that, whenever it is free, steps every symbol with a request waiting
(one request each, oldest first, as the router batches them) and takes
T(B) for a batch of B rows (--multi: several requests of a symbol in one
step, see docs/design/runs.md). Prints p50 and p99 latency (arrival to the end
of its step) and the throughput. T(B) is interpolated from --steps
(B:ms pairs, e.g. bench_gv_step's mixed column), the HBM floor
(--floor WEIGHT_GB,SLOT_MB,COPY_GBS), and --scale multiplies it.
It leaves out the wire, the host and the graph buckets (a batch runs the
graph of the next multiple of 8), so it reads a few ms under
tools/gpu-e2e.sh at the same rate (docs/BENCHMARKS.md section 3).

usage: queue-sim.py (--steps 1:2.05,8:3.36,... | --floor 4.90,153.5,2999)
                    [--rates 4000,4500,5000] [--symbols 39] [--scale 1.0]
                    [--seconds 30] [--seed 1]"""
import argparse
import bisect
import collections
import random


def step_curve(args):
    if args.floor:
        wgb, slot_mb, gbs = (float(v) for v in args.floor.split(","))
        return lambda b: (wgb * 1e9 + b * 2 * slot_mb * 1e6) / (gbs * 1e9)
    pts = sorted((int(b), float(ms) * 1e-3) for b, ms in (p.split(":") for p in args.steps.split(",")))
    xs = [p[0] for p in pts]

    def t(b):
        j = bisect.bisect_left(xs, b)
        if j < len(xs) and xs[j] == b:
            return pts[j][1]
        if j == 0 or j == len(xs):  # outside the points: the nearest two, extended
            j = 1 if j == 0 else len(xs) - 1
        (x0, y0), (x1, y1) = pts[j - 1], pts[j]
        return y0 + (y1 - y0) * (b - x0) / (x1 - x0)
    return t


def simulate(rate, symbols, t_of_b, seconds, seed, multi=None):
    rnd = random.Random(seed)
    arrivals, t = [], 0.0
    while t < seconds:
        t += rnd.expovariate(rate)
        arrivals.append((t, rnd.randrange(symbols)))
    queues = [collections.deque() for _ in range(symbols)]
    i, now, lat = 0, 0.0, []
    while i < len(arrivals) or any(queues):
        while i < len(arrivals) and arrivals[i][0] <= now:
            queues[arrivals[i][1]].append(arrivals[i][0])
            i += 1
        batch = [q for q in queues if q]
        if not batch:
            now = arrivals[i][0]
            continue
        if multi:  # up to kmax requests of each symbol, in order, in one step
            kmax, per_row, per_pass = multi
            take = [min(len(q), kmax) for q in batch]
            if per_row < 0:  # as passes of distinct symbols: a whole step each
                now += sum(t_of_b(sum(k > p for k in take)) for p in range(max(take)))
            else:
                now += t_of_b(len(batch)) + per_row * (sum(take) - len(batch)) + per_pass * (max(take) - 1)
            for q, k in zip(batch, take):
                lat.extend(now - q.popleft() for _ in range(k))
            continue
        now += t_of_b(len(batch))
        lat.extend(now - q.popleft() for q in batch)
    lat.sort()
    return lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3, len(lat) / now


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--steps", help="B:ms pairs of the step time")
    src.add_argument("--floor", help="weight GB, slot MB, copy GB/s: the HBM floor as the step time")
    ap.add_argument("--rates", default="3500,4000,4500,5000")
    ap.add_argument("--symbols", type=int, default=39)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--multi", help="KMAX,ROW_MS,PASS_MS: a step takes up to KMAX waiting requests of a symbol "
                    "(its state read once, updated in order); each row beyond the first of its symbol adds ROW_MS, "
                    "each pass beyond the first (the most rows of one symbol) PASS_MS; ROW_MS -1: the rows run as passes of "
                    "distinct symbols, each pass a whole step (sym_backend_step_runs today)")
    args = ap.parse_args()
    curve = step_curve(args)
    print("| req/s | symbols | p50 ms | p99 ms | answered/s |")
    print("|---|---|---|---|---|")
    for r in (int(v) for v in args.rates.split(",")):
        multi = tuple(float(v) for v in args.multi.split(",")) if args.multi else None
        if multi:
            multi = (int(multi[0]), multi[1] * 1e-3, multi[2] * 1e-3)
        p50, p99, thr = simulate(r, args.symbols, lambda b: args.scale * curve(b), args.seconds, args.seed, multi)
        print("| %d | %d | %.1f | %.1f | %.0f |" % (r, args.symbols, p50, p99, thr))


if __name__ == "__main__":
    main()
