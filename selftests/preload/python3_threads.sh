#!/bin/sh
# SPDX-License-Identifier: MIT
#
# python3 with threads under LD_PRELOAD=$HAKMEM_LIB: four worker threads
# take jobs from a queue.Queue, build and hash lists, dicts and strings
# (allocation on every thread, objects freed by whichever thread drops the
# last reference), and put results on a second queue; the main thread
# collects and prints them sorted. The output must be the same with and
# without hakmem, and the preloaded interpreter must really run on hakmem.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 3

py=$(command -v python3) || tap_skip_rest "python3 is not installed"

cat >"$workdir/threads.py" <<'PY'
import hashlib, queue, threading

jobs = queue.Queue(maxsize=64)
results = queue.Queue()
shared = {}
lock = threading.Lock()

def work(n):
    rng = n * 2654435761 % 4294967296
    d = {}
    for i in range(3000):
        rng = (rng * 1103515245 + 12345) & 0x7fffffff
        d["k%d-%d" % (n, rng % 5000)] = [i, "v" * (rng % 40), (n, i)]
    keys = sorted(d)
    blob = "|".join(k + str(len(d[k][1])) for k in keys)
    big = bytearray(blob.encode()) * (1 + n % 5)
    return len(d), hashlib.sha256(bytes(big)).hexdigest()[:16]

def worker():
    while True:
        n = jobs.get()
        if n is None:
            jobs.task_done()
            return
        r = work(n)
        with lock:
            shared.setdefault(n % 7, []).append(r[0])
        results.put((n, r))
        jobs.task_done()

threads = [threading.Thread(target=worker) for _ in range(4)]
for t in threads:
    t.start()
for n in range(240):
    jobs.put(n)
for _ in threads:
    jobs.put(None)
jobs.join()
for t in threads:
    t.join()
out = []
while not results.empty():
    out.append(results.get())
out.sort()
for n, (size, h) in out:
    print(n, size, h)
print("shared", sorted((k, sum(v)) for k, v in shared.items()))
print("done", len(out))
PY

same_run "python3 threading + queue workload (4 workers, 240 jobs) runs under hakmem" \
	"python3 threaded output identical with and without hakmem" \
	env PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 "$py" "$workdir/threads.py"
stats_check "python3 (threads)" "$py" -c 'import threading; t = threading.Thread(target=lambda: [str(i) for i in range(1000)]); t.start(); t.join()'
tap_finish
