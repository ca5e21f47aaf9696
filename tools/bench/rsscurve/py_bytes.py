# SPDX-License-Identifier: MIT
# rsscurve workload: bytearrays of 64 KiB..4 MiB (log-uniform) to ~500 MB, drop 95% at
# random, idle, rebuild half. Every buffer is written (resident), as a program would.
import random, sys, time
random.seed(34)
def mark(m):
    sys.stdout.write(m + "\n"); sys.stdout.flush()
IDLE = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
TOTAL = int(sys.argv[2]) if len(sys.argv) > 2 else 500 << 20
def build(total):
    out, n = [], 0
    while n < total:
        sz = int(2 ** random.uniform(16, 22))
        out.append(bytearray(b"\x5a") * sz)
        n += sz
    return out
mark("start")
data = build(TOTAL)
mark("grown")
for i in range(len(data)):
    if random.random() < 0.95:
        data[i] = None
mark("shrunk")
time.sleep(IDLE)
mark("idle")
more = build(TOTAL // 2)
mark("regrown")
time.sleep(2)
mark("end")
