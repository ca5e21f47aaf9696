# SPDX-License-Identifier: MIT
"""A fixed Python workload for the worked example in Documentation/autotune.md:
records built, serialised to JSON, parsed back, sorted, joined and counted.
Deterministic (seeded); prints one line of sizes. Run with /usr/bin/python3."""
import json
import random

random.seed(14)
N = 10000
recs = [{"id": i, "name": "user%d" % i, "score": random.random(),
         "tags": [random.choice("abcdefgh") * random.randint(1, 60) for _ in range(6)],
         "blob": "x" * random.randint(100, 2000)}
        for i in range(N)]
s = json.dumps(recs)
back = json.loads(s)
back.sort(key=lambda r: r["score"])
text = "\n".join(r["name"] + ":" + ",".join(r["tags"]) for r in back)
counts = {}
for w in text.split(","):
    counts[w] = counts.get(w, 0) + 1
chunks = [s[i:i + 65536] for i in range(0, len(s), 65536)]
total = sum(len(c.upper()) for c in chunks)
print(len(s), len(text), len(counts), total)
