#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# Paired fixed-work comparison of hakmem builds over every row of the bench
# suite (the rows and command lines are read from tools/bench/run.sh).
#
#   tools/bench/ab.py [--rounds N] [--only NAME[,NAME..]] [--threads "1 2"]
#                     [--chrt] [--csv FILE] [--row "NAME|THREADED|CMD" ...]
#                     REF=LIB.so NAME=LIB.so ...
#
# Each round runs every row once under every build, the builds in turn and
# their order reversed every other round, each run under
# `perf stat -e task-clock,page-faults,context-switches env LD_PRELOAD=LIB
# <row>` (with
# --chrt under `chrt -f 1`).  Several rows stop at a time limit (larson,
# mid-size, large-block, ...), so a run's cost is taken per operation: CPU
# per op (task-clock / the ops= the program reports) and wall per op (its
# seconds= / ops=, i.e. 1 / ops_per_sec).  For each row and build: the
# median over the rounds of each, its ratio to REF's median, and the median
# of the per-round (paired) ratios; then the geomean of the rows' ratios.
# --row runs the given rows instead of the suite's (written as in run.sh's
# suite array), e.g. a time-limited row without its limit, so that every
# build does the same work.  Faults and context switches per op are shown
# after the CPU ratios (their ratio to REF's medians).  "win" is the CPU
# per op inside the program's timed window (the cpu_seconds= the programs
# that time one window report, bench.h): task-clock also holds the process's
# start and exit, which differ by allocator (tcmalloc's load and init cost
# about 15 ms more than hakmem's, a fifth of a 70 ms size-chain run;
# Documentation/benchmarks.md, "large-block and size-chain: wall against
# CPU"), so on short rows "win" is the ratio to read.
# Why not run.sh: its rounds are wall-time throughput, which on a shared
# 2-core machine moves rows by 10-30% between runs of the same library.

import argparse
import math
import os
import re
import statistics
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))


def suite_rows():
    """The suite array of run.sh: (name, threaded, command)."""
    text = open(os.path.join(here, "run.sh")).read()
    body = re.search(r"^suite=\(\n(.*?)^\)", text, re.S | re.M).group(1)
    return [tuple(m.split("|")) for m in re.findall(r'"([^"]+)"', body)]


def subst(cmd, t):
    cmd = cmd.replace("@T@", str(t))

    def work(m):
        w = int(m.group(1))
        return str(w * 2 // t if t > 2 else w)
    return re.sub(r"@W:(\d+)@", work, cmd)


def run_one(lib, cmd, chrt, timeout):
    argv = cmd.split()
    argv[0] = os.path.join(here, "../../build/bench", argv[0])
    pre = ["chrt", "-f", "1"] if chrt else []
    full = pre + ["perf", "stat", "-x,", "-e",
                  "task-clock,page-faults,context-switches",
                  "env", "LD_PRELOAD=" + lib] + argv
    try:
        p = subprocess.run(full, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    res = re.search(r"^RESULT .*", p.stdout, re.M)
    if p.returncode != 0 or not res:
        sys.stderr.write("FAILED (%d): %s\n%s" % (p.returncode, " ".join(full),
                                                  p.stderr[-400:]))
        return None
    kv = dict(x.split("=", 1) for x in res.group(0).split()[1:] if "=" in x)
    cpu = faults = ctx = None
    for line in p.stderr.splitlines():
        f = line.split(",")
        if len(f) > 2 and f[2] == "task-clock":
            cpu = float(f[0])
        elif len(f) > 2 and f[2] == "page-faults":
            faults = int(f[0])
        elif len(f) > 2 and f[2] == "context-switches" and f[0].isdigit():
            ctx = int(f[0])
    ops = float(kv["ops"])
    return {"cpu": cpu, "faults": faults, "ctx": ctx, "ops": ops,
            "secs": float(kv["seconds"]),
            "rss": float(kv.get("rss_peak_kb", "nan")),
            "win": float(kv["cpu_seconds"]) * 1e3 if "cpu_seconds" in kv else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--only", default="")
    ap.add_argument("--threads", default="1 2")
    ap.add_argument("--chrt", action="store_true")
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--csv")
    ap.add_argument("--row", action="append", default=[],
                    help="NAME|THREADED|CMD instead of the suite's rows")
    ap.add_argument("libs", nargs="+", help="NAME=LIB.so, the first is the reference")
    a = ap.parse_args()
    libs = [x.split("=", 1) for x in a.libs]
    only = [o for o in a.only.replace(",", " ").split() if o]
    threads = [int(t) for t in a.threads.replace(",", " ").split()]

    jobs = []
    rows = [tuple(x.split("|", 2)) for x in a.row] or suite_rows()
    for name, threaded, cmd in rows:
        if only and not any(name.startswith(o) for o in only):
            continue
        for t in (threads if threaded == "1" else [1]):
            jobs.append((name, t, subst(cmd, t)))

    data = {}	# (row, t, lib) -> list of per-round dicts (None: failed)
    csv = open(a.csv, "w") if a.csv else None
    if csv:
        csv.write("round,row,threads,build,cpu_ms,faults,ops,seconds,rss_peak_kb,"
                  "ctx_switches,win_cpu_ms\n")
    for r in range(a.rounds):
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        sys.stderr.write("round %d/%d, load %s\n" % (r + 1, a.rounds, load))
        for name, t, cmd in jobs:
            order = libs if r % 2 == 0 else libs[::-1]
            for bname, lib in order:
                x = run_one(lib, cmd, a.chrt, a.timeout)
                data.setdefault((name, t, bname), []).append(x)
                if csv and x:
                    csv.write("%d,%s,%d,%s,%.2f,%d,%d,%.6f,%.0f,%s,%s\n" % (
                        r, name, t, bname, x["cpu"], x["faults"], x["ops"],
                        x["secs"], x["rss"],
                        "" if x["ctx"] is None else x["ctx"],
                        "" if x["win"] is None else "%.2f" % x["win"]))
                    csv.flush()

    ref = libs[0][0]
    geo = {b: {"cpu": [], "wall": [], "pcpu": [], "rss": [], "win": []}
           for b, _ in libs[1:]}
    hdr = "%-22s %2s  %11s" % ("row", "t", "cpu ms " + ref)
    for b, _ in libs[1:]:
        hdr += " | %-54s" % (b + " cpu/op wall/op paired rss flt/op ctx/op win")
    print(hdr)
    for name, t, _ in jobs:
        rr = data[(name, t, ref)]

        def per(xs, k):
            return [x[k] / x["ops"] if x and x[k] is not None else None
                    for x in xs]
        ref_cpu = [v for v in per(rr, "cpu") if v]
        ref_wall = [v for v in per(rr, "secs") if v]
        if not ref_cpu:
            continue
        line = "%-22s %2d  %11.1f" % (name, t, statistics.median(
            [x["cpu"] for x in rr if x]))
        for b, _ in libs[1:]:
            bb = data[(name, t, b)]
            bc = [v for v in per(bb, "cpu") if v]
            bw = [v for v in per(bb, "secs") if v]
            if not bc:
                line += " | %-54s" % "failed"
                continue
            c = statistics.median(bc) / statistics.median(ref_cpu)
            w = statistics.median(bw) / statistics.median(ref_wall)
            pair = [x / y for x, y in zip(per(bb, "cpu"), per(rr, "cpu"))
                    if x and y]
            p = statistics.median(pair)
            geo[b]["cpu"].append(c)
            geo[b]["wall"].append(w)
            geo[b]["pcpu"].append(p)
            # peak RSS at the same work only where the row does fixed work
            rs = statistics.median([x["rss"] for x in bb if x]) / \
                statistics.median([x["rss"] for x in rr if x])
            if rs == rs:
                geo[b]["rss"].append(rs)
            q = sorted(pair)

            def ratio(k):
                x, y = per(bb, k), per(rr, k)
                x = [v for v in x if v is not None]
                y = [v for v in y if v is not None]
                m = statistics.median(y) if y else 0
                return statistics.median(x) / m if x and m else float("nan")
            wi = ratio("win")
            if wi == wi:
                geo[b]["win"].append(wi)
            line += " | %6.3f %6.3f %6.3f (%.2f-%.2f) %6.3f %6.3f %6.3f %6.3f" % (
                c, w, p, q[len(q) // 4], q[(3 * len(q)) // 4], rs,
                ratio("faults"), ratio("ctx"), wi)
        print(line)
    nrows = len(geo[libs[1][0]]["cpu"]) if len(libs) > 1 else 0
    line = "%-37s" % ("geomean of %d rows" % nrows)
    for b, _ in libs[1:]:
        g = {k: math.exp(sum(map(math.log, v)) / len(v)) if v else float("nan")
             for k, v in geo[b].items()}
        line += " | %6.3f %6.3f %6.3f %11s %6.3f %13s %6.3f" % (
            g["cpu"], g["wall"], g["pcpu"], "", g["rss"], "", g["win"])
    print(line)


if __name__ == "__main__":
    main()
