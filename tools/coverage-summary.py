#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""coverage-summary: the tables tools/coverage.sh prints, from gcovr's JSON.

    coverage-summary.py MERGED.json SUMMARY.txt FUNCTIONS.txt

SUMMARY.txt: per file of lib/ and boxes/, lines and branches (run / all,
%), the totals, and the 10 files with the most lines never run.
FUNCTIONS.txt: every function no variant ran, as file:line name.
A line counts if gcov saw code on it (gcovr's noncode and excluded lines
left out); a branch counts as taken if it was taken at least once.
"""
import json
import sys


def main():
    merged, summary_path, functions_path = sys.argv[1:4]
    with open(merged) as f:
        data = json.load(f)
    rows = []
    never = []
    for fe in sorted(data["files"], key=lambda x: x["file"]):
        lines = [ln for ln in fe["lines"]
                 if not ln.get("gcovr/noncode") and not ln.get("gcovr/excluded")]
        nl = len(lines)
        rl = sum(1 for ln in lines if ln["count"] > 0)
        br = [b for ln in lines for b in ln["branches"]]
        nb = len(br)
        tb = sum(1 for b in br if b["count"] > 0)
        rows.append((fe["file"], nl, rl, nb, tb))
        # a function may be listed once per variant build; keep the most
        # executed copy
        seen = {}
        for fn in fe["functions"]:
            key = (fn["name"], fn["lineno"])
            seen[key] = max(seen.get(key, 0), fn["execution_count"])
        for (name, lineno), count in sorted(seen.items(), key=lambda x: x[0][1]):
            if count == 0:
                never.append("%s:%d %s" % (fe["file"], lineno, name))

    def pct(a, b):
        return "%5.1f" % (100.0 * a / b) if b else "    -"

    out = ["%-36s %6s %6s %6s  %6s %6s %6s" %
           ("file", "lines", "run", "%", "branch", "taken", "%")]
    for name, nl, rl, nb, tb in rows:
        out.append("%-36s %6d %6d %6s  %6d %6d %6s" %
                   (name, nl, rl, pct(rl, nl), nb, tb, pct(tb, nb)))
    tl = sum(r[1] for r in rows)
    trl = sum(r[2] for r in rows)
    tnb = sum(r[3] for r in rows)
    ttb = sum(r[4] for r in rows)
    out.append("%-36s %6d %6d %6s  %6d %6d %6s" %
               ("TOTAL", tl, trl, pct(trl, tl), tnb, ttb, pct(ttb, tnb)))
    out.append("")
    out.append("top 10 files by lines never run:")
    for name, nl, rl, nb, tb in sorted(rows, key=lambda r: r[2] - r[1])[:10]:
        out.append("  %-34s %5d" % (name, nl - rl))
    out.append("functions never run: %d (%s)" % (len(never), functions_path))
    with open(summary_path, "w") as f:
        f.write("\n".join(out) + "\n")
    with open(functions_path, "w") as f:
        f.write("\n".join(never) + ("\n" if never else ""))


if __name__ == "__main__":
    main()
