#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# What a suite of few rounds can read for a row, from the runs of one
# run.sh raw.csv (Documentation/benchmarks.md, "large-block, large-replace
# and cache-scratch at 2 threads").
#
#   tools/bench/suite-spread.py [--rounds 5] [--only NAME[,NAME..]] raw.csv
#
# The suite's bar compares one build's median of 5 rounds with the best of
# four peers' medians. Drawing each allocator's 5 runs with replacement from
# the runs it had (20,000 times) gives the spread of that ratio for a build
# as fast as it was measured: p10, p50, p90 and how often it reads below
# 1.00. A row whose p10-p90 spans 1.00 cannot be read against the bar on
# one suite; the median of all the runs ("all") is the better estimate.

import argparse
import collections
import csv
import random
import statistics

PEERS = ["mimalloc", "jemalloc", "tcmalloc", "tbbmalloc"]
BUILDS = ["hakmem-perf", "hakmem-default"]
DRAWS = 20000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("raw")
    a = ap.parse_args()
    only = [o for o in a.only.replace(",", " ").split() if o]
    runs = collections.defaultdict(list)
    for r in csv.DictReader(open(a.raw)):
        if r["status"] == "ok" and (not only or
                                    any(r["bench"].startswith(o) for o in only)):
            runs[(r["bench"], r["threads"], r["allocator"])].append(
                float(r["ops_per_sec"]))
    rnd = random.Random(1)
    for bench, t in sorted({(b, t) for b, t, _ in runs}):
        peers = [p for p in PEERS if (bench, t, p) in runs]
        if not peers:
            continue
        med = {p: statistics.median(runs[(bench, t, p)]) for p in peers}
        best = max(peers, key=lambda p: med[p])
        line = "%-22s %2s best %-9s" % (bench, t, best)
        for b in BUILDS:
            if (bench, t, b) not in runs:
                continue

            def draw(x):
                return statistics.median(rnd.choices(runs[(bench, t, x)],
                                                     k=a.rounds))
            rs = sorted(draw(b) / max(draw(p) for p in peers)
                        for _ in range(DRAWS))
            line += " | %s all %.3f p10 %.3f p50 %.3f p90 %.3f below1 %.2f" % (
                b[len("hakmem-"):],
                statistics.median(runs[(bench, t, b)]) / med[best],
                rs[DRAWS // 10], rs[DRAWS // 2], rs[9 * DRAWS // 10],
                sum(x < 1 for x in rs) / DRAWS)
        print(line)


if __name__ == "__main__":
    main()
