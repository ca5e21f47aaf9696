#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""flamegraph.py: an SVG flame graph from folded stacks, standard library only.

    tools/flamegraph.py [--title T] [--unit bytes] FOLDED > out.svg

FOLDED holds lines "root;caller;...;leaf VALUE" (HAKMEM_PROF_FORMAT=collapsed
writes them). Each frame is a box as wide as the total of the stacks through
it, callers below callees; frames narrower than 0.1% are left out. Debian has
no flamegraph.pl, so the heap profiler's documentation draws its picture
with this.
"""
import argparse
import html
import sys
import zlib

W, ROW, FONT = 1200, 17, 11


def load(path):
    root = {"n": 0, "kids": {}}
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if not line or " " not in line:
            continue
        stack, value = line.rsplit(" ", 1)
        try:
            v = int(value)
        except ValueError:
            continue
        node = root
        node["n"] += v
        for frame in stack.split(";"):
            node = node["kids"].setdefault(frame, {"n": 0, "kids": {}})
            node["n"] += v
    return root


def colour(name):
    h = zlib.crc32(name.encode())
    return "rgb(%d,%d,%d)" % (205 + h % 50, 80 + (h >> 8) % 120, 40 + (h >> 16) % 40)


def human(v, unit):
    if unit != "bytes":
        return "%d %s" % (v, unit)
    for u in ("B", "KiB", "MiB", "GiB"):
        if v < 1024 or u == "GiB":
            return "%.1f %s" % (v, u) if u != "B" else "%d B" % v
        v /= 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folded")
    ap.add_argument("--title", default="Flame graph")
    ap.add_argument("--unit", default="bytes")
    a = ap.parse_args()
    root = load(a.folded)
    total = root["n"] or 1
    boxes = []

    def walk(node, name, x, depth):
        w = node["n"] * (W - 20) / total
        if w < (W - 20) / 1000.0:
            return
        boxes.append((x, depth, w, name, node["n"]))
        cx = x
        for k, kid in sorted(node["kids"].items()):
            walk(kid, k, cx, depth + 1)
            cx += kid["n"] * (W - 20) / total

    walk(root, "all", 10, 0)
    depth = max(d for _, d, _, _, _ in boxes) + 1
    hgt = (depth + 3) * ROW
    out = ['<?xml version="1.0" standalone="no"?>',
           '<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="Verdana, sans-serif" font-size="%d">' % (W, hgt, FONT),
           '<rect width="100%" height="100%" fill="#f8f8f0"/>',
           '<text x="%d" y="%d" text-anchor="middle" font-size="%d">%s</text>'
           % (W // 2, ROW, FONT + 4, html.escape(a.title))]
    for x, d, w, name, n in boxes:
        y = hgt - (d + 2) * ROW
        label = "%s (%s, %.1f%%)" % (name, human(n, a.unit), 100.0 * n / total)
        out.append('<g><title>%s</title><rect x="%.1f" y="%d" width="%.1f" height="%d" '
                   'fill="%s" rx="2"/>' % (html.escape(label), x, y, w, ROW - 1, colour(name)))
        chars = int(w / (FONT * 0.6))
        if chars >= 3:
            text = name if len(name) <= chars else name[:chars - 2] + ".."
            out.append('<text x="%.1f" y="%d">%s</text>' % (x + 3, y + ROW - 5, html.escape(text)))
        out.append('</g>')
    out.append('</svg>')
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
