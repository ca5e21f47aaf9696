# SPDX-License-Identifier: MIT
# rsscurve workload, two threads (PYTHONMALLOC=malloc): each worker builds 300,000 dicts
# and strings and 37,500 bytes(n) of 1-64 KiB (calloc'ed: 1.2 GB each if every page is
# touched); the main thread drops 95% (frees of another thread's blocks); the workers stay
# alive and idle; then they rebuild half of it each.
import random, sys, threading, time
def mark(m):
    sys.stdout.write(m + "\n"); sys.stdout.flush()
IDLE = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
N = int(sys.argv[2]) if len(sys.argv) > 2 else 300_000
res = [None, None]
go = [threading.Event(), threading.Event()]
done = [threading.Event(), threading.Event()]
def work(k):
    rnd = random.Random(k)
    for n in (N, N // 2):
        go[k].wait(); go[k].clear()
        out = []
        for i in range(n):
            out.append({"id": i, "s": "v%07d" % i * (1 + i % 5)})
            if i % 8 == 0:
                out.append(bytes(rnd.randint(1024, 65536)))
        res[k] = out
        out = None      # the main thread's drop frees them
        done[k].set()
ts = [threading.Thread(target=work, args=(k,)) for k in (0, 1)]
for t in ts:
    t.start()
mark("start")
for e in go: e.set()
for e in done: e.wait(); e.clear()
data = res[0] + res[1]; res[0] = res[1] = None
mark("grown")
rnd = random.Random(34)
for i in range(len(data)):
    if rnd.random() < 0.95:
        data[i] = None
mark("shrunk")
time.sleep(IDLE)
mark("idle")
for e in go: e.set()
for e in done: e.wait()
mark("regrown")
time.sleep(2)
mark("end")
for t in ts: t.join()
