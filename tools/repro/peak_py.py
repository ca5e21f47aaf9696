# SPDX-License-Identifier: MIT
# Peak-RSS workload of r32 (Documentation/benchmarks.md, "Real programs against glibc
# and mimalloc"): dicts, string lists and bytearrays built and dropped, 4 rounds.
# /usr/bin/time -f "%U %S %M %R" env LD_PRELOAD=... /usr/bin/python3 tools/repro/peak_py.py
import random
random.seed(1)
keep = []
for r in range(4):
    d = {("k%d_%d" % (r, i)) * (1 + i % 7): [str(i) * (i % 13), i] for i in range(300000)}
    l = [("x" * (i % 200)) + str(i) for i in range(400000)]
    big = [bytearray(random.randint(40000, 400000)) for _ in range(60)]
    keep.append(list(d.items())[:20000])
    del d, l, big
    s = sorted(str(random.random()) for _ in range(200000))
    del s
print(len(keep))
