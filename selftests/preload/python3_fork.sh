#!/bin/sh
# SPDX-License-Identifier: MIT
# runner: long (6-7 s: the runner starts it first)
#
# python3 forking with threads alive, under LD_PRELOAD=$HAKMEM_LIB: three
# threads allocate and free all the time (bytearrays up to 70 KB, so the
# small, mid and large paths, and their locks, are busy at every fork)
# while the main thread runs a multiprocessing fork Pool, two threads call
# os.fork() (each child allocates, starts a thread and exits) and three
# threads run subprocess.run. Same output with and without hakmem, no child
# may fail or hang (the runs are bounded by timeout).

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 3

py=$(command -v python3) || tap_skip_rest "python3 is not installed"

cat >"$workdir/fork.py" <<'PY'
import hashlib, multiprocessing as mp, os, random, subprocess, sys, threading

stop = False

def churn(seed):
    r = random.Random(seed)
    keep = []
    while not stop:
        keep.append(bytearray(r.randrange(1, 70000)))
        keep.append("x" * r.randrange(1, 3000))
        if len(keep) > 200:
            del keep[:100]

def task(n):
    d = {i: str(i) * (n % 50 + 1) for i in range(2000)}
    return n, hashlib.sha1(b"".join(v.encode() for v in d.values())).hexdigest()

def forker(out):
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            x = [bytearray(1000 + j) for j in range(2000)]
            t = threading.Thread(target=lambda: [str(j) * 10 for j in range(5000)])
            t.start()
            t.join()
            os._exit(0 if len(x) == 2000 else 3)
        out.append(os.waitpid(pid, 0)[1])

def runner(k, out):
    for i in range(3):
        r = subprocess.run([sys.executable, "-c", "print(sum(range(%d)))" % (k * 100 + i)],
                           capture_output=True, text=True, timeout=60)
        out[(k, i)] = r.stdout.strip()

if __name__ == "__main__":
    bg = [threading.Thread(target=churn, args=(s,)) for s in range(3)]
    for t in bg:
        t.start()
    with mp.get_context("fork").Pool(2) as pool:
        res = pool.map(task, range(24))
    print("pool", hashlib.sha1(repr(sorted(res)).encode()).hexdigest())
    sts = []
    ths = [threading.Thread(target=forker, args=(sts,)) for _ in range(2)]
    subs = {}
    ths += [threading.Thread(target=runner, args=(k, subs)) for k in range(3)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    print("forks", len(sts), "failed", sum(1 for s in sts if s != 0))
    print("subprocess", sorted(subs.items()))
    stop = True
    for t in bg:
        t.join()
    print("done")
PY

same_run "python3 fork Pool, os.fork and subprocess from threads, with threads allocating, under hakmem" \
	"python3 fork output identical with and without hakmem" \
	timeout 120 env PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 "$py" "$workdir/fork.py"
stats_check "python3 (fork)" "$py" -c 'import os; pid = os.fork(); pid or os._exit(0); os.waitpid(pid, 0)'
tap_finish
