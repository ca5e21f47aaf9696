#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RSS over time of real programs through phases (grow, shrink, idle, grow again), per
allocator (rs34; Documentation/benchmarks.md, "RSS over time in real programs").

  tools/bench/rsscurve/rsscurve.py [--rounds N] [--idle S] [--only W,W] [--alloc NAME=SPEC ...]
                                   [--out FILE.jsonl]

SPEC is a preload path or "-" for the libc malloc, optionally followed by ",VAR=VAL" pairs
(e.g. hakmem-bg=build/d/libhakmem.so,HAKMEM_BACKGROUND_PURGE=1). Without --alloc: glibc,
jemalloc, mimalloc, tcmalloc (Debian's), and hakmem def / def+bg / perf from build/def and
build/perf. The sampler reads /proc/PID/statm and /proc/PID/stat every 100 ms; the workload
prints its phase marks (start, grown, shrunk, idle, regrown, end) on stdout, or, for
redis-server, the driver here sends the commands and makes the marks. Allocators run in
interleaved order, one run at a time. Each run is one JSON line in --out; the table printed at
the end gives RSS (MiB) at each mark and at shrunk+1 s/+10 s, the peak, the minor faults of
the whole run and of the regrow, and CPU user+sys (s). redis-server with "-" runs on the
jemalloc Debian links it with (there is no glibc row for it). Not in make check.
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PAGE = os.sysconf("SC_PAGE_SIZE")
TCK = os.sysconf("SC_CLK_TCK")
LIB = "/usr/lib/x86_64-linux-gnu/"
PY = "/usr/bin/python3"

def default_allocs():
    return [("glibc", "-"), ("jemalloc", LIB + "libjemalloc.so.2"),
            ("mimalloc", LIB + "libmimalloc.so.2"), ("tcmalloc", LIB + "libtcmalloc_minimal.so.4"),
            ("hak-def", ROOT + "/build/def/libhakmem.so"),
            ("hak-bg", ROOT + "/build/def/libhakmem.so,HAKMEM_BACKGROUND_PURGE=1"),
            ("hak-perf", ROOT + "/build/perf/libhakmem.so")]

def alloc_env(spec):
    parts = spec.split(",")
    env = {}
    if parts[0] != "-":
        env["LD_PRELOAD"] = os.path.abspath(parts[0])
    for kv in parts[1:]:
        k, v = kv.split("=", 1)
        env[k] = v
    return env

def proc_sample(pid):
    try:
        with open("/proc/%d/statm" % pid) as f:
            rss = int(f.read().split()[1]) * PAGE
        with open("/proc/%d/stat" % pid) as f:
            st = f.read().rsplit(")", 1)[1].split()
        # fields after the comm: state=0 ... minflt=7, majflt=9, utime=11, stime=12
        return rss, int(st[7]), (int(st[11]) + int(st[12])) / TCK
    except (OSError, ValueError, IndexError):
        return None

class Run:
    def __init__(self):
        self.t0 = time.monotonic()
        self.marks = []     # (name, t)
        self.samples = []   # (t, rss, minflt, cpu)
        self.lock = threading.Lock()
    def mark(self, name):
        with self.lock:
            self.marks.append((name, time.monotonic() - self.t0))

def sample_loop(run, pid, stop):
    while not stop.is_set():
        s = proc_sample(pid)
        if s and s[0] > 0:      # a zombie's statm reads 0
            with run.lock:
                run.samples.append((time.monotonic() - run.t0,) + s)
        stop.wait(0.1)

def py_workload(script, pymalloc_off):
    def go(env, idle):
        e = dict(os.environ); e.update(env)
        if pymalloc_off:
            e["PYTHONMALLOC"] = "malloc"
        run = Run()
        p = subprocess.Popen([PY, os.path.join(HERE, script), str(idle)], env=e,
                             stdout=subprocess.PIPE, text=True)
        stop = threading.Event()
        th = threading.Thread(target=sample_loop, args=(run, p.pid, stop)); th.start()
        for line in p.stdout:
            run.mark(line.strip())
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = status
        stop.set(); th.join()
        return run, status, ru, {}
    return go

def redis_cmd(port, *args, timeout=600):
    out = subprocess.run(["redis-cli", "-p", str(port)] + list(args), capture_output=True,
                         text=True, timeout=timeout)
    return out.stdout.strip()

REDIS_N = 2_000_000
DEL_LUA = ("local n=0 for i=0,tonumber(ARGV[1])-1 do if i%10~=0 then "
           "n=n+redis.call('DEL','key:'..i) end end return n")

def redis_workload(env, idle):
    e = dict(os.environ); e.update(env)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    run = Run()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly",
                          "no", "--enable-debug-command", "yes", "--dir", "/tmp",
                          "--logfile", "", "--loglevel", "warning"],
                         env=e, stdout=subprocess.DEVNULL)
    for _ in range(100):
        if redis_cmd(port, "ping") == "PONG":
            break
        time.sleep(0.05)
    stop = threading.Event()
    th = threading.Thread(target=sample_loop, args=(run, p.pid, stop)); th.start()
    info = {}
    def used():
        for l in redis_cmd(port, "info", "memory").splitlines():
            if l.startswith("used_memory:"):
                return int(l.split(":")[1])
    run.mark("start")
    redis_cmd(port, "debug", "populate", str(REDIS_N), "key", "100")
    run.mark("grown"); info["used_grown"] = used()
    redis_cmd(port, "eval", DEL_LUA, "0", str(REDIS_N))
    run.mark("shrunk"); info["used_shrunk"] = used()
    time.sleep(idle)
    run.mark("idle")
    redis_cmd(port, "debug", "populate", str(REDIS_N // 2), "k2", "100")
    run.mark("regrown"); info["used_regrown"] = used()
    time.sleep(2)
    run.mark("end")
    redis_cmd(port, "shutdown", "nosave")
    _, status, ru = os.wait4(p.pid, 0)
    stop.set(); th.join()
    return run, status, ru, info

WORKLOADS = {
    "py-small": py_workload("py_small.py", True),
    "py-bytes": py_workload("py_bytes.py", False),
    "py-threads": py_workload("py_threads.py", True),
    "sqlite": py_workload("sqlite_load.py", False),
    "redis": redis_workload,
}

def rss_at(run, t):
    for s in run.samples:
        if s[0] >= t:
            return s
    return run.samples[-1] if run.samples else None

def summarize(run, ru, idle):
    m = dict(run.marks)
    row = {}
    # the growth phase's peak: the drop that follows may take less than a sample period
    g = [s[1] for s in run.samples if m.get("start", 0) <= s[0] <= m.get("shrunk", 1e9)]
    row["grown"] = max(g) if g else None
    s = rss_at(run, m.get("shrunk", 1e9)); row["shrunk"] = s[1] if s else None
    sh = m.get("shrunk", 1e9)
    for dt in (1, 10):
        s = rss_at(run, sh + dt)
        row["shrunk+%ds" % dt] = s[1] if s else None
    # the last sample before the regrow starts: the idle phase's end
    before = [s for s in run.samples if s[0] <= m.get("idle", 1e9)]
    row["idle_end"] = before[-1][1] if before else None
    s = rss_at(run, m.get("regrown", 1e9)); row["regrown"] = s[1] if s else None
    s = rss_at(run, m.get("end", 1e9)); row["end"] = s[1] if s else None
    row["peak"] = max(ru.ru_maxrss * 1024, max((s[1] for s in run.samples), default=0))
    row["minflt"] = ru.ru_minflt
    a, b = rss_at(run, m.get("idle", 1e9)), rss_at(run, m.get("regrown", 1e9))
    row["regrow_flt"] = (b[2] - a[2]) if a and b else None
    a, b = rss_at(run, m.get("shrunk", 1e9)), before[-1] if before else None
    row["idle_flt"] = (b[2] - a[2]) if a and b else None
    row["cpu"] = ru.ru_utime + ru.ru_stime
    return row

COLS = ["grown", "shrunk", "shrunk+1s", "shrunk+10s", "idle_end", "regrown", "end", "peak"]

class _RU:
    def __init__(self, row):
        self.ru_maxrss = row["peak"] // 1024; self.ru_minflt = row["minflt"]
        self.ru_utime = row["cpu"]; self.ru_stime = 0.0

def table(rows):
    print("medians, MiB: workload alloc | " + " ".join(COLS) + " | minflt idle_flt regrow_flt cpu")
    med = lambda xs: sorted(xs)[len(xs) // 2]
    for (w, name), rs in rows.items():
        vals = []
        for c in COLS:
            xs = [x[c] for x in rs if x[c] is not None]
            vals.append("%.1f" % (med(xs) / 1048576) if xs else "-")
        print("%-10s %-9s n=%d | %s | %d %s %s %.2f" % (w, name, len(rs), " ".join(vals),
              med([x["minflt"] for x in rs]), med([x["idle_flt"] or 0 for x in rs]),
              med([x["regrow_flt"] or 0 for x in rs]), med([x["cpu"] for x in rs])))

def report(path):
    rows = {}
    for line in open(path):
        rec = json.loads(line)
        run = Run(); run.marks = rec["marks"]
        run.samples = [s for s in rec["samples"] if s[1] > 0]
        rows.setdefault((rec["workload"], rec["alloc"]), []).append(
            summarize(run, _RU(rec["row"]), 0))
    table(rows)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--idle", type=float, default=30.0)
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--alloc", action="append")
    ap.add_argument("--out", default="rsscurve.jsonl")
    ap.add_argument("--report", help="print the table again from a --out file")
    a = ap.parse_args()
    if a.report:
        return report(a.report)
    allocs = [x.split("=", 1) for x in a.alloc] if a.alloc else default_allocs()
    rows = {}
    with open(a.out, "a") as out:
        for r in range(a.rounds):
            for w in a.only.split(","):
                order = allocs if r % 2 == 0 else allocs[::-1]
                for name, spec in order:
                    load = os.getloadavg()[0]
                    run, status, ru, info = WORKLOADS[w](alloc_env(spec), a.idle)
                    row = summarize(run, ru, a.idle)
                    rec = dict(workload=w, alloc=name, spec=spec, round=r, status=status,
                               load=load, info=info, row=row, marks=run.marks,
                               samples=run.samples)
                    out.write(json.dumps(rec) + "\n"); out.flush()
                    rows.setdefault((w, name), []).append(row)
                    mb = lambda v: "-" if v is None else "%.1f" % (v / 1048576)
                    print("%-10s %-9s r%d load %.1f status %d | %s | flt %d idle %s regrow %s"
                          " | cpu %.2f %s" % (w, name, r, load, status,
                          " ".join(mb(row[c]) for c in COLS), row["minflt"], row["idle_flt"],
                          row["regrow_flt"], row["cpu"], info or ""), flush=True)
    print()
    table(rows)

if __name__ == "__main__":
    main()
