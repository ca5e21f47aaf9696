#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Summarise a tools/bench/run.sh results directory.

Reads raw.csv (one row per run) or callgrind.csv, writes summary.csv,
results.md and PNG plots (gnuplot) next to them, prints the tables, and with
--update-docs rewrites the generated section of Documentation/benchmarks.md
and copies the plots to Documentation/images/bench/.
"""

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys

PEERS = ["mimalloc", "jemalloc", "tcmalloc", "tbbmalloc"]
ORDER = ["hakmem-perf", "hakmem-default", "glibc"] + PEERS
# Benchmarks whose bar is "at least the best peer"; all others must be
# within 10% of the best peer and ahead of glibc.
LEAD = ("larson", "random-mixed", "producer-consumer")
BEGIN = "<!-- BEGIN GENERATED RESULTS (tools/bench/run.sh --update-docs) -->"
END = "<!-- END GENERATED RESULTS -->"
CG_BEGIN = "<!-- BEGIN GENERATED CALLGRIND (tools/bench/run.sh --callgrind --update-docs) -->"
CG_END = "<!-- END GENERATED CALLGRIND -->"


def si(x):
    if x is None:
        return "-"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return "%.3g%s" % (x / div, suf)
    return "%.3g" % x


def ratio(x):
    return "-" if x is None else "%.2f" % x


def read_machine(d):
    m = {}
    try:
        with open(os.path.join(d, "machine.txt")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                m[k] = v
    except OSError:
        pass
    return m


def median(v):
    return statistics.median(v) if v else None


def summarise(d):
    rows = {}
    fails = {}
    with open(os.path.join(d, "raw.csv")) as f:
        for r in csv.DictReader(f):
            key = (r["bench"], int(r["threads"]), r["allocator"])
            if r["status"] != "ok":
                fails[key] = fails.get(key, 0) + 1
                rows.setdefault(key, [])
                continue
            rows.setdefault(key, []).append(r)
    benches = []
    allocs = []
    for b, t, a in rows:
        if (b, t) not in benches:
            benches.append((b, t))
        if a not in allocs:
            allocs.append(a)
    allocs.sort(key=lambda a: ORDER.index(a) if a in ORDER else len(ORDER))
    summ = {}
    for key, rs in rows.items():
        ops = [float(r["ops_per_sec"]) for r in rs]
        rss = [float(r["maxrss_kb"]) for r in rs if r["maxrss_kb"]]
        end = [float(r["rss_end_kb"]) for r in rs if r["rss_end_kb"]]
        summ[key] = {
            "runs": len(rs), "fails": fails.get(key, 0),
            "ops": median(ops), "min": min(ops) if ops else None,
            "max": max(ops) if ops else None,
            "rss": median(rss), "end": median(end),
        }
    for b, t in benches:
        g = summ.get((b, t, "glibc"), {}).get("ops")
        peers = [(summ[(b, t, p)]["ops"], p) for p in PEERS
                 if (b, t, p) in summ and summ[(b, t, p)]["ops"]]
        best_ops, best = max(peers) if peers else (None, None)
        mi = summ.get((b, t, "mimalloc"), {}).get("rss")
        for a in allocs:
            s = summ.get((b, t, a))
            if not s:
                continue
            s["vs_glibc"] = s["ops"] / g if s["ops"] and g else None
            s["best_peer"] = best
            s["vs_best"] = s["ops"] / best_ops if s["ops"] and best_ops else None
            s["rss_vs_mi"] = s["rss"] / mi if s["rss"] and mi else None
            if not a.startswith("hakmem"):
                continue
            ok = s["vs_best"] is not None and s["vs_glibc"] is not None
            if ok:
                if b.startswith(LEAD):
                    ok = s["vs_best"] >= 1.0
                else:
                    ok = s["vs_best"] >= 0.9 and s["vs_glibc"] > 1.0
            s["bar_speed"] = ok
            s["bar_rss"] = s["rss_vs_mi"] is not None and s["rss_vs_mi"] <= 1.2
    return benches, allocs, summ


def write_summary_csv(d, benches, allocs, summ):
    with open(os.path.join(d, "summary.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["bench", "threads", "allocator", "runs", "failed",
                    "median_ops_per_sec", "min_ops_per_sec", "max_ops_per_sec",
                    "peak_rss_kb", "end_rss_kb", "vs_glibc", "best_peer",
                    "vs_best_peer", "peak_rss_vs_mimalloc"])
        for b, t in benches:
            for a in allocs:
                s = summ.get((b, t, a))
                if not s:
                    continue

                def num(x, fmt="%.0f"):
                    return "" if x is None else fmt % x
                w.writerow([b, t, a, s["runs"], s["fails"], num(s["ops"]),
                            num(s["min"]), num(s["max"]), num(s["rss"]),
                            num(s["end"]), num(s.get("vs_glibc"), "%.3f"),
                            s.get("best_peer") or "",
                            num(s.get("vs_best"), "%.3f"),
                            num(s.get("rss_vs_mi"), "%.3f")])


def matrix(benches, allocs, summ, field, fmt):
    head = ["benchmark", "thr"] + allocs
    body = []
    for b, t in benches:
        row = [b, str(t)]
        for a in allocs:
            s = summ.get((b, t, a))
            if not s:
                row.append("")
            elif s["ops"] is None:
                row.append("FAIL")
            else:
                row.append(fmt(s.get(field)))
        body.append(row)
    return head, body


def bar_table(benches, allocs, summ):
    head = ["benchmark", "thr"]
    hk = [a for a in allocs if a.startswith("hakmem")]
    for a in hk:
        head += [a + " vs glibc", "vs best peer", "RSS vs mimalloc", "bar"]
    body = []
    for b, t in benches:
        row = [b, str(t)]
        for a in hk:
            s = summ.get((b, t, a))
            if not s or s["ops"] is None:
                row += ["FAIL", "", "", "no"]
                continue
            bar = []
            if not s.get("bar_speed"):
                bar.append("speed")
            if not s.get("bar_rss"):
                bar.append("rss")
            vb = s.get("vs_best")
            row += [ratio(s.get("vs_glibc")),
                    "%s (%s)" % ("-" if vb is None else "%.3f" % vb,
                                 s.get("best_peer")),
                    ratio(s.get("rss_vs_mi")),
                    "ok" if not bar else "MISS " + "+".join(bar)]
        body.append(row)
    return (head, body) if hk else None


def text_table(title, head, body):
    w = [max(len(x) for x in col) for col in zip(head, *body)]
    out = [title]
    line = "  ".join(h.ljust(w[i]) if i < 2 else h.rjust(w[i])
                     for i, h in enumerate(head))
    out.append(line)
    out.append("-" * len(line))
    for r in body:
        out.append("  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i])
                             for i, c in enumerate(r)))
    return "\n".join(out) + "\n"


def md_table(head, body):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    for r in body:
        out.append("| " + " | ".join(r) + " |")
    return "\n".join(out) + "\n"


def plot(d, benches, allocs, summ, field, norm, stem, ylabel, title):
    """Clustered bars per benchmark, one bar per allocator, log scale."""
    if not shutil.which("gnuplot"):
        print("report: gnuplot not found, no plots", file=sys.stderr)
        return []
    made = []
    for t in sorted({t for _, t in benches}):
        bs = [b for b, tt in benches if tt == t]
        datf = os.path.join(d, "%s-%dt.dat" % (stem, t))
        rows = 0
        with open(datf, "w") as f:
            f.write("bench " + " ".join(allocs) + "\n")
            for b in bs:
                base = summ.get((b, t, norm), {}).get(field)
                vals = []
                for a in allocs:
                    v = summ.get((b, t, a), {}).get(field)
                    vals.append("%.4f" % (v / base) if v and base else "NaN")
                f.write(b + " " + " ".join(vals) + "\n")
                rows += 1
        if not rows:
            continue
        png = "%s-%dt.png" % (stem, t)
        gp = """
set terminal pngcairo size %d,460 font "sans,10"
set output '%s'
set title "%s (%d thread%s), %s = 1"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 2
set grid ytics
set ylabel "%s"
set xtics rotate by -25 nomirror
set key outside right top vertical
set yrange [*:*]
plot for [i=2:%d] '%s' using i:xtic(1) title columnheader(i)
""" % (max(900, 130 * rows + 260), os.path.join(d, png), title, t,
            "" if t == 1 else "s", norm, ylabel, len(allocs) + 1, datf)
        r = subprocess.run(["gnuplot"], input=gp, text=True,
                           capture_output=True)
        if r.returncode:
            print("report: gnuplot failed: " + r.stderr, file=sys.stderr)
            continue
        made.append(png)
    return made


def replace_section(path, begin, end, text):
    try:
        with open(path) as f:
            doc = f.read()
    except OSError:
        print("report: %s not found" % path, file=sys.stderr)
        return False
    pat = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    if not pat.search(doc):
        print("report: markers not found in %s" % path, file=sys.stderr)
        return False
    doc = pat.sub(lambda _: begin + "\n" + text + end, doc)
    with open(path, "w") as f:
        f.write(doc)
    return True


def machine_line(m):
    return "%s; %s, %s CPUs; %s; hakmem %s; %s round(s), median." % (
        m.get("date", "?"), m.get("cpu", "?"), m.get("cpus", "?"),
        m.get("os", "?"), m.get("commit", "?"), m.get("rounds", "?"))


def do_suite(args):
    d = args.results
    m = read_machine(d)
    benches, allocs, summ = summarise(d)
    write_summary_csv(d, benches, allocs, summ)
    tabs = [
        ("Throughput, median ops/s (higher is better)",
         matrix(benches, allocs, summ, "ops", si)),
        ("Throughput relative to the best peer (1.00 = best of "
         + "/".join(PEERS) + ")",
         matrix(benches, allocs, summ, "vs_best", ratio)),
        ("Throughput relative to glibc",
         matrix(benches, allocs, summ, "vs_glibc", ratio)),
        ("Peak RSS (/usr/bin/time %M), median KiB",
         matrix(benches, allocs, summ, "rss", lambda x: "%.0f" % x if x else "-")),
        ("Peak RSS relative to mimalloc (lower is better)",
         matrix(benches, allocs, summ, "rss_vs_mi", ratio)),
        ("RSS at the end of the run (VmRSS), median KiB",
         matrix(benches, allocs, summ, "end", lambda x: "%.0f" % x if x else "-")),
    ]
    bt = bar_table(benches, allocs, summ)
    if bt:
        tabs.append(("hakmem against the bar", bt))

    print()
    print(machine_line(m))
    print()
    for title, (h, b) in tabs:
        print(text_table(title, h, b))

    plots = plot(d, benches, allocs, summ, "ops", "glibc", "throughput",
                 "throughput relative to glibc (log2)", "Throughput")
    plots += plot(d, benches, allocs, summ, "rss", "mimalloc", "peak-rss",
                  "peak RSS relative to mimalloc (log2)", "Peak RSS")

    md = ["_%s_\n" % machine_line(m)]
    for title, (h, b) in tabs:
        md.append("#### %s\n\n%s" % (title, md_table(h, b)))
    for p in plots:
        md.append("![%s](images/bench/%s)\n" % (p[:-4], p))
    failures = os.path.join(d, "failures.txt")
    if os.path.exists(failures) and os.path.getsize(failures):
        with open(failures) as f:
            md.append("#### Failed runs\n\n```\n" + f.read() + "```\n")
    text = "\n".join(md)
    with open(os.path.join(d, "results.md"), "w") as f:
        f.write(text)
    print("results: %s/{raw,summary}.csv, results.md, %s" % (
        d, ", ".join(plots) or "no plots"))

    if args.update_docs:
        doc = os.path.join(args.srctree, "Documentation", "benchmarks.md")
        img = os.path.join(args.srctree, "Documentation", "images", "bench")
        os.makedirs(img, exist_ok=True)
        for p in plots:
            shutil.copy(os.path.join(d, p), os.path.join(img, p))
        if replace_section(doc, BEGIN, END, text):
            print("updated %s and %s/" % (doc, img))


def do_callgrind(args):
    d = args.results
    m = read_machine(d)
    rows = []
    with open(os.path.join(d, "callgrind.csv")) as f:
        rows = list(csv.DictReader(f))
    allocs = []
    for r in rows:
        if r["allocator"] not in allocs:
            allocs.append(r["allocator"])
    allocs.sort(key=lambda a: ORDER.index(a) if a in ORDER else len(ORDER))
    sizes = sorted({int(r["max_size"]) for r in rows})
    head = ["allocator"] + ["8..%d B" % s for s in sizes]
    body = []
    for a in allocs:
        row = [a]
        for s in sizes:
            v = [r["ir_per_pair"] for r in rows
                 if r["allocator"] == a and int(r["max_size"]) == s]
            row.append(v[0] if v else "-")
        body.append(row)
    title = ("Instructions per malloc+free pair, random-mixed "
             "(callgrind Ir, loop cost subtracted)")
    print()
    w = [max(len(x) for x in col) for col in zip(head, *body)]
    print(title)
    print("  ".join(h.rjust(w[i]) if i else h.ljust(w[i])
                    for i, h in enumerate(head)))
    for r in body:
        print("  ".join(c.rjust(w[i]) if i else c.ljust(w[i])
                        for i, c in enumerate(r)))
    print("csv: %s/callgrind.csv" % d)
    n = rows[0]["ops"] if rows else "?"
    text = ("_%s; %s; hakmem %s; %s pairs per run, valgrind "
            "--tool=callgrind --toggle-collect=bench_loop._\n\n"
            % (m.get("date", "?"), m.get("cpu", "?"), m.get("commit", "?"), n)
            + md_table(["allocator"] + head[1:], body))
    text = text.replace("|---|---|", "|---|---:|")
    with open(os.path.join(d, "callgrind.md"), "w") as f:
        f.write(text)
    if args.update_docs:
        doc = os.path.join(args.srctree, "Documentation", "benchmarks.md")
        if replace_section(doc, CG_BEGIN, CG_END, text):
            print("updated %s" % doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", required=True)
    ap.add_argument("--srctree", default=".")
    ap.add_argument("--update-docs", action="store_true")
    ap.add_argument("--callgrind", action="store_true")
    args = ap.parse_args()
    if args.callgrind:
        do_callgrind(args)
    else:
        do_suite(args)


if __name__ == "__main__":
    main()
