# SPDX-License-Identifier: MIT
# rsscurve workload (run under PYTHONMALLOC=malloc so every object is a malloc):
# grow ~500 MB of dicts and strings, drop 95% at random, idle, rebuild half.
import random, sys, time
random.seed(34)
def mark(m):
    sys.stdout.write(m + "\n"); sys.stdout.flush()
IDLE = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
N = int(sys.argv[2]) if len(sys.argv) > 2 else 1_400_000
def item(i):
    return {"id": i, "name": "user%08d" % i, "tags": ["t%d" % (i % 97), "x" * (i % 61)],
            "note": str(i) * (1 + i % 9)}
mark("start")
data = [item(i) for i in range(N)]
mark("grown")
for i in range(N):
    if random.random() < 0.95:
        data[i] = None
mark("shrunk")
time.sleep(IDLE)
mark("idle")
more = [item(i) for i in range(N // 2)]
mark("regrown")
time.sleep(2)
mark("end")
