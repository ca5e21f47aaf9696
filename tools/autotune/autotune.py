#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""autotune: find the hakmem variant and run-time options that suit one workload.

Run through tools/autotune.sh or `make autotune` (Documentation/autotune.md).

The search space is read from the tree, so boxes added later take part
without an edit here:
  - every bool box symbol (a `config` with a prompt in boxes/*/Kconfig), on
    and off, with Kconfig's dependencies resolved by Kconfiglib;
  - the compiler optimisation choice (-O2, -O3, -Os);
  - a few int options of boxes that matter most (BUILD_KNOBS below), when
    their box is on;
  - the HAKMEM_* run-time options that matter most (RUNTIME_KNOBS), when
    the library reads them (their name is in lib/ or boxes/).
A build-time point is a .config; each is built once, with O=, in
build/autotune/<hash of its .config>/, and reused by later runs. Run-time
options only change the environment of the runs.

Search: the shipped defconfigs first (all run interleaved; defconfig is
the reference, another one becomes the start only when it wins), then
coordinate descent: the dimensions are visited in order, a few
alternatives at a time; each batch runs those candidates and the current
point interleaved in rounds (the order rotates every round) with
LD_PRELOAD, and the best candidate is adopted only when it beats the
current point by at least --min-gain and the ratio of the medians exceeds
both candidates' spreads (max/min of their rounds: machine load slows
runs by a factor). A pass over all dimensions without an adoption ends
the search, as does the budget. A run that crashes, times
out, exits with another status than the workload under glibc, or (with
--metric) prints no figure disqualifies its candidate, which is reported
and never chosen.
"""

import argparse
import atexit
import fcntl
import hashlib
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SRCTREE = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# Starting points left out unless named with --start: the fail-fast and
# valgrind variant is for debugging, never an answer to "fastest".
SKIP_STARTS = {"debug_defconfig", "autotune_defconfig"}
# Boxes that only serve debugging tools (they never win on time or RSS).
SKIP_BOXES = {"HAK_VALGRIND"}

# Int Kconfig options worth a build: symbol -> alternatives to its default.
BUILD_KNOBS = [
    ("HAK_L25_MAX_KIB", ["1024"]),
    ("HAK_L25_TCACHE_KIB", ["64", "4096"]),
    ("HAK_ADAPTIVE_BUDGET_KIB", ["8192", "32768"]),
]

# Run-time options: name, alternatives, the box that must be on (or None),
# and the Kconfig symbol (with its unit) that gives the default, so that
# the default itself is not tried again as an alternative.
RUNTIME_KNOBS = [
    ("HAKMEM_TCACHE_BYTES", ["8k", "128k", "512k"], None, ("HAK_TCACHE_BYTES", 1)),
    ("HAKMEM_DIRTY_MAX", ["0", "2m", "64m", "256m"], None, ("HAK_DIRTY_MAX_KIB", 1 << 10)),
    ("HAKMEM_PURGE_DELAY_MS", ["0", "10", "1000"], None, ("HAK_PURGE_DELAY_MS", 1)),
    ("HAKMEM_BIGCACHE_MAX", ["0", "32m", "1g"], "HAK_BIGCACHE", ("HAK_BIGCACHE_MAX_MB", 1 << 20)),
]

OPT_CHOICE = "HAK_CC_OPTIMIZE"
OPT_VALUES = ["HAK_CC_OPTIMIZE_O2", "HAK_CC_OPTIMIZE_O3", "HAK_CC_OPTIMIZE_SIZE"]


def say(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_size(s):
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", s)
    if not m:
        return None
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def short(name):
    for p in ("HAKMEM_", "HAK_CC_OPTIMIZE_", "HAK_"):
        if name.startswith(p):
            return name[len(p):]
    return name


# ---------------------------------------------------------------------------
# Configurations (Kconfiglib, in process) and their builds


class Configs:
    """Resolves (start defconfig, edits) to a .config and builds it once."""

    def __init__(self, cache, jobs, budget):
        os.environ["srctree"] = SRCTREE
        os.environ.setdefault("ARCH", "x86_64" if os.uname().machine in ("x86_64", "amd64") else "generic")
        os.environ.pop("KCONFIG_CONFIG", None)
        try:
            import kconfiglib
        except ImportError:
            sys.exit("autotune: Kconfiglib is missing (tools/deps.sh installs python3-kconfiglib)")
        self.kl = kconfiglib
        self.kconf = kconfiglib.Kconfig(os.path.join(SRCTREE, "Kconfig"), warn=False,
                                        suppress_traceback=True)
        self.cache = cache
        self.jobs = jobs
        self.budget = budget
        self.resolved = {}      # (start, edits) -> (hash, text, values)
        self.build_times = []
        self.failed = {}        # hash -> reason
        self.fingerprint = tree_fingerprint()

    def box_symbols(self):
        out = []
        for sym in self.kconf.unique_defined_syms:
            if sym.orig_type != self.kl.BOOL or sym.choice:
                continue
            nodes = [n for n in sym.nodes if n.prompt]
            if not nodes or not all(os.path.relpath(n.filename, SRCTREE).startswith("boxes/")
                                    if os.path.isabs(n.filename) else n.filename.startswith("boxes/")
                                    for n in nodes):
                continue
            out.append(sym.name)
        return out

    def has_symbol(self, name):
        return name in self.kconf.syms and self.kconf.syms[name].nodes

    def resolve(self, start, edits):
        key = (start, edits)
        if key in self.resolved:
            return self.resolved[key]
        k = self.kconf
        k.load_config(os.path.join(SRCTREE, "configs", start), replace=True)
        for name, val in edits:
            k.syms[name].set_value(val)
        text = k._config_contents(None)  # the text write_config would write
        h = hashlib.sha256(text.encode()).hexdigest()[:12]
        allv = {s.name: s.str_value for s in k.unique_defined_syms}
        allv[OPT_CHOICE] = next((v for v in OPT_VALUES
                                 if v in k.syms and k.syms[v].str_value == "y"), None)
        # Edits of symbols that are not visible (their box is off) change
        # nothing: the label leaves them out.
        live = tuple((n, v) for n, v in edits if k.syms[n].visibility)
        r = (h, text, allv, live)
        self.resolved[key] = r
        return r

    def dir_of(self, h):
        return os.path.join(self.cache, h)

    def is_built(self, h):
        d = self.dir_of(h)
        try:
            with open(os.path.join(d, ".autotune-stamp")) as f:
                return f.read().strip() == self.fingerprint and os.path.exists(os.path.join(d, "libhakmem.so"))
        except OSError:
            return False

    def estimate_build(self):
        return statistics.median(self.build_times) if self.build_times else 15.0

    def build(self, h, text):
        """Build variant h (its .config is text); returns the .so or None."""
        if h in self.failed:
            return None
        d = self.dir_of(h)
        so = os.path.join(d, "libhakmem.so")
        if self.is_built(h):
            return so
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, ".autotune-lock"), "w") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)   # another autotune may build it too
            if self.is_built(h):
                return so
            with open(os.path.join(d, ".config"), "w") as f:
                f.write(text)
            t0 = time.monotonic()
            log = os.path.join(d, "build.log")
            timeout = max(1.0, self.budget.remaining() - 3)
            env = dict(os.environ)
            for v in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "O", "KBUILD_OUTPUT",
                      "V", "C", "T"):
                env.pop(v, None)
            with open(log, "w") as lf:
                mk = subprocess.Popen(["make", "-C", SRCTREE, "O=" + d, "-j%d" % self.jobs, "all"],
                                      stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=env, start_new_session=True)
                try:
                    ok = mk.wait(timeout=timeout) == 0 and os.path.exists(so)
                except subprocess.TimeoutExpired:
                    os.killpg(mk.pid, signal.SIGKILL)   # make and its compilers
                    mk.wait()
                    self.failed[h] = "build cut off by the budget"
                    return None
            self.build_times.append(time.monotonic() - t0)
            if not ok:
                self.failed[h] = "build failed (%s)" % os.path.relpath(log, SRCTREE)
                return None
            with open(os.path.join(d, ".autotune-stamp"), "w") as f:
                f.write(self.fingerprint + "\n")
        return so


def tree_fingerprint():
    """Names, sizes and mtimes of everything a build reads: a cached variant
    is rebuilt (incrementally, by make) when the sources changed."""
    h = hashlib.sha256()
    roots = ["Makefile", "Kconfig", "arch", "include", "lib", "boxes", "tools/fixdep",
             "tools/syncconfig"]
    for r in roots:
        p = os.path.join(SRCTREE, r)
        paths = []
        if os.path.isdir(p):
            for dp, dn, fn in os.walk(p):
                dn[:] = sorted(x for x in dn if x not in ("generated", "config"))
                paths += [os.path.join(dp, f) for f in sorted(fn)]
        elif os.path.exists(p):
            paths.append(p)
        for f in paths:
            try:
                st = os.stat(f)
            except OSError:
                continue
            h.update(("%s %d %d\n" % (os.path.relpath(f, SRCTREE), st.st_size, st.st_mtime_ns)).encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Budget


class Budget:
    def __init__(self, seconds):
        self.total = float(seconds)
        self.t0 = time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.t0

    def remaining(self):
        return self.total - self.elapsed()


# ---------------------------------------------------------------------------
# Points and candidates


class Point:
    """A candidate: a start defconfig, Kconfig edits, run-time options."""

    def __init__(self, start, edits=(), env=(), glibc=False):
        self.start = start
        self.edits = tuple(edits)
        self.env = tuple(sorted(env))
        self.glibc = glibc

    def key(self, cfgs):
        if self.glibc:
            return ("glibc",)
        return (cfgs.resolve(self.start, self.edits)[0], self.env)

    def label(self):
        if self.glibc:
            return "glibc (no LD_PRELOAD)"
        parts = [os.path.basename(self.start).replace("_defconfig", "")]
        for n, v in self.edits:
            if n in OPT_VALUES:
                parts.append("cc=-" + {"HAK_CC_OPTIMIZE_SIZE": "Os"}.get(n, short(n)))
            elif v == "y":
                parts.append("+" + short(n))
            elif v == "n":
                parts.append("-" + short(n))
            else:
                parts.append("%s=%s" % (short(n), v))
        for n, v in self.env:
            parts.append("%s=%s" % (n, v))
        return " ".join(parts)

    def with_edit(self, name, val):
        edits = [(n, v) for n, v in self.edits if n != name]
        if name in OPT_VALUES:
            edits = [(n, v) for n, v in edits if n not in OPT_VALUES]
        edits.append((name, val))
        return Point(self.start, edits, self.env)

    def with_env(self, name, val):
        env = [(n, v) for n, v in self.env if n != name]
        if val is not None:
            env.append((name, val))
        return Point(self.start, self.edits, env)

    def env_line(self):
        return " ".join("%s=%s" % nv for nv in self.env)


class Dim:
    """One choice of the search: kind 'box', 'int', 'opt' or 'env'."""

    def __init__(self, kind, name, values, needs=None, default=None):
        self.kind, self.name, self.values = kind, name, values
        self.needs, self.default = needs, default

    def alternatives(self, p, cfgs):
        """The points one step from p along this dimension."""
        _, _, allv, _ = cfgs.resolve(p.start, p.edits)
        out = []
        if self.kind == "box":
            cur = allv.get(self.name)
            if cur not in ("y", "n"):
                return []
            out.append(p.with_edit(self.name, "n" if cur == "y" else "y"))
        elif self.kind == "int":
            cur = allv.get(self.name, "")
            if cur == "":
                return []
            for v in self.values:
                if v != cur:
                    out.append(p.with_edit(self.name, v))
        elif self.kind == "opt":
            cur = allv.get(OPT_CHOICE)
            if cur is None:
                return []
            for v in self.values:
                if v != cur and cfgs.has_symbol(v):
                    out.append(p.with_edit(v, "y"))
        else:
            if self.needs and allv.get(self.needs) != "y":
                return []
            cur = dict(p.env).get(self.name)
            dflt = None
            if self.default and allv.get(self.default[0], "") not in ("", None):
                try:
                    dflt = int(allv[self.default[0]]) * self.default[1]
                except ValueError:
                    dflt = None
            curval = parse_size(cur) if cur is not None else dflt
            if cur is not None:
                out.append(p.with_env(self.name, None))   # back to the default
            for v in self.values:
                if parse_size(v) != curval and v != cur:
                    out.append(p.with_env(self.name, v))
        # Drop steps Kconfig refused (the symbol's dependencies are off) or
        # that give the same variant.
        keep = []
        pk = p.key(cfgs)
        for q in out:
            if self.kind != "env":
                _, _, qv, live = cfgs.resolve(q.start, q.edits)
                want = q.edits[-1]
                name = OPT_CHOICE if self.kind == "opt" else want[0]
                if qv.get(name) != (want[0] if self.kind == "opt" else want[1]):
                    continue
                q = Point(q.start, live, q.env)
                if q.key(cfgs) == pk:
                    continue
            keep.append(q)
        return keep


# ---------------------------------------------------------------------------
# Running the workload


class Runner:
    def __init__(self, args, budget, tmpdir):
        self.cmd = args.workload
        self.objective = args.objective
        self.metric = re.compile(args.metric) if args.metric else None
        self.metric_dir = args.metric_dir
        self.budget = budget
        self.tmp = tmpdir
        self.timeout = args.timeout
        self.expected_rc = None
        self.base_env = {k: v for k, v in os.environ.items()
                         if k != "LD_PRELOAD" and not k.startswith("HAKMEM_")}
        for v in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
            self.base_env.pop(v, None)
        self.nruns = 0
        # A simple command runs without a shell, so that a crash is seen
        # as the signal it is (sh would report exit 128+N).
        self.shell = bool(re.search(r"[^\w\s./=,:@%+-]", self.cmd))
        self.argv = ["/bin/sh", "-c", self.cmd] if self.shell else self.cmd.split()
        if not self.shell and "=" in self.argv[0]:
            self.shell, self.argv = True, ["/bin/sh", "-c", self.cmd]

    def run(self, preload, env, timeout):
        """One run: a dict with status ('ok' or why not), secs, rss_kb, metric."""
        e = dict(self.base_env)
        e.update(env)
        if preload:
            e["LD_PRELOAD"] = preload
        outf = os.path.join(self.tmp, "out.txt")
        timef = os.path.join(self.tmp, "time.txt")
        fd = os.open(outf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        fa = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
              (os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)]
        # /usr/bin/time reports the peak RSS of its child: a child of this
        # (large) Python process would count the parent's pages it was
        # forked with.
        argv = ["/usr/bin/time", "-f", "%e %M %x", "-o", timef] + self.argv
        try:
            os.unlink(timef)
        except OSError:
            pass
        t0 = time.monotonic()
        pid = os.posix_spawn(argv[0], argv, e, file_actions=fa, setsid=True)
        os.close(fd)
        timed_out = []

        def kill():
            timed_out.append(1)
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        timer = threading.Timer(max(0.1, timeout), kill)
        timer.start()
        os.waitpid(pid, 0)
        secs = time.monotonic() - t0
        timer.cancel()
        try:    # leftovers of the process group (background children)
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        self.nruns += 1
        with open(outf, "rb") as f:
            out = f.read().decode("utf-8", "replace")
        rc, rss, sig = None, 0, None
        try:
            with open(timef) as f:
                for line in f:
                    m = re.match(r"Command terminated by signal (\d+)", line)
                    if m:
                        sig = int(m.group(1))
                    m = re.fullmatch(r"([\d.]+) (\d+) (\d+)\n?", line)
                    if m:
                        rss, rc = int(m.group(2)), int(m.group(3))
        except OSError:
            pass
        r = {"secs": secs, "rss_kb": rss, "rc": rc if sig is None else -sig, "metric": None,
             "tail": "\n".join(out.splitlines()[-6:])}
        if timed_out:
            r["status"] = "timeout (%.0f s)" % timeout
        elif sig is not None:
            r["status"] = signame(sig)
        elif rc is None:
            r["status"] = "no report from /usr/bin/time"
        elif self.expected_rc is not None and rc != self.expected_rc:
            r["status"] = "exit %d (glibc: %d)%s" % (
                rc, self.expected_rc,
                " = %s in the shell's child" % signame(rc - 128) if self.shell and rc > 128 else "")
        else:
            r["status"] = "ok"
        if self.metric:
            ms = list(self.metric.finditer(out))
            if ms:
                m = ms[-1]
                try:
                    r["metric"] = float(m.group(1) if m.groups() else m.group(0))
                except (ValueError, IndexError):
                    pass
            if r["metric"] is None and r["status"] == "ok":
                r["status"] = "no METRIC match"
        r["obj"] = self.objective_of(r)
        return r

    def objective_of(self, r):
        if self.objective == "time":
            return r["secs"]
        if self.objective == "rss":
            return float(r["rss_kb"])
        if self.objective == "time*rss":
            return r["secs"] * r["rss_kb"] / 1024.0
        return r["metric"]

    def lower_better(self):
        return self.objective != "metric" or self.metric_dir == "lower"


class Stats:
    def __init__(self, runs, lower):
        self.runs = runs
        ok = [r for r in runs if r["status"] == "ok"]
        self.failed = [r for r in runs if r["status"] != "ok"]
        self.ok = ok
        self.lower = lower

        def ms(key):
            v = [r[key] for r in ok if r[key] is not None]
            if not v:
                return None, None
            return statistics.median(v), max(v) - min(v)
        self.time, self.time_sp = ms("secs")
        self.rss, self.rss_sp = ms("rss_kb")
        self.metric, self.metric_sp = ms("metric")
        self.obj, self.obj_sp = ms("obj")
        # The spread as a ratio (log max/min): load slows every run by a
        # factor, so a 10x effect keeps standing out of a noisy slow run.
        v = [r["obj"] for r in ok if r["obj"] is not None]
        self.obj_lsp = math.log(max(v) / min(v)) if v and min(v) > 0 else None

    def gain_over(self, other):
        """How much better self's objective median is than other's (> 0: better)."""
        d = other.obj - self.obj
        return d if self.lower else -d


# ---------------------------------------------------------------------------
# The search


class Autotune:
    def __init__(self, args):
        self.args = args
        self.budget = Budget(args.budget)
        self.out = args.out
        os.makedirs(self.out, exist_ok=True)
        self.cfgs = Configs(args.cache, args.jobs, self.budget)
        self.tmp = tempfile.mkdtemp(prefix="autotune.")
        atexit.register(shutil.rmtree, self.tmp, True)
        self.runner = Runner(args, self.budget, self.tmp)
        self.lower = self.runner.lower_better()
        self.batches = []       # (title, [(point, Stats, verdict)])
        self.disq = {}          # key -> reason
        self.fixes = []
        for f in args.fix:
            n, _, v = f.partition("=")
            n = n[7:] if n.startswith("CONFIG_") else n
            self.fixes.append((n, v))
        self.notes = []
        self.csv = open(os.path.join(self.out, "runs.csv"), "w")
        self.csv.write("batch,round,candidate,status,seconds,maxrss_kb,metric,objective\n")

    # -- helpers --

    def fixed(self, p):
        if p.glibc or not self.fixes:
            return p
        q = p
        base = self.cfgs.resolve(p.start, ())[2]
        for n, v in self.fixes:
            if n not in self.cfgs.kconf.syms:
                sys.exit("autotune: --fix %s=%s: no such Kconfig symbol" % (n, v))
            if base.get(n) != v:
                q = q.with_edit(n, v)
        return q

    def so_of(self, p):
        if p.glibc:
            return ""
        h, text, _, _ = self.cfgs.resolve(p.start, p.edits)
        return self.cfgs.build(h, text)

    def reserve(self):
        # Time kept for the report: savedefconfig, plot.
        return 4.0

    def progress(self, msg):
        say("[%4.0fs/%ds] %s" % (self.budget.elapsed(), self.budget.total, msg))

    # -- one batch: build, run interleaved, judge --

    def batch(self, title, points, current=None, rounds=None):
        """Runs points (current first when given) interleaved; returns
        [(point, Stats)] of those measured in every round, or None when
        the budget ran out first. When it runs out after two whole rounds,
        those rounds are the result and self.cut_short is set."""
        rounds = rounds or self.args.rounds
        self.cut_short = False
        pts = ([current] if current else []) + points
        todo = []
        for p in pts:
            if p.key(self.cfgs) in self.disq:
                continue
            h = None if p.glibc else self.cfgs.resolve(p.start, p.edits)[0]
            if not p.glibc and not self.cfgs.is_built(h):
                if self.budget.remaining() - self.cfgs.estimate_build() < self.reserve() + 1:
                    self.progress("no budget left to build %s" % p.label())
                    return None
                self.progress("build %s -> build/%s" % (p.label(), os.path.relpath(
                    self.cfgs.dir_of(h), os.path.join(SRCTREE, "build"))))
            so = self.so_of(p)
            if so is None:
                reason = self.cfgs.failed.get(h, "build failed")
                self.disq[p.key(self.cfgs)] = reason
                self.progress("  %s: %s" % (p.label(), reason))
                continue
            todo.append((p, so))
        runs = {p.key(self.cfgs): [] for p, _ in todo}
        self.progress("%s: %d candidates x %d rounds" % (title, len(todo), rounds))
        for r in range(rounds):
            order = todo[r % len(todo):] + todo[:r % len(todo)] if todo else []
            for p, so in order:
                k = p.key(self.cfgs)
                if k in self.disq:
                    continue
                left = self.budget.remaining() - self.reserve()
                if left < 1:
                    return self.cut(title, todo, runs, r)
                t = min(self.timeout, left)
                res = self.runner.run(so, dict(p.env), t)
                runs[k].append(res)
                self.csv.write("%d,%d,\"%s\",%s,%.4f,%d,%s,%s\n" % (
                    len(self.batches) + 1, r + 1, p.label(), res["status"], res["secs"],
                    res["rss_kb"], "" if res["metric"] is None else res["metric"],
                    "" if res["obj"] is None else "%.6g" % res["obj"]))
                self.csv.flush()
                if res["status"] != "ok":
                    if left <= self.timeout and res["status"].startswith("timeout"):
                        runs[k].pop()
                        return self.cut(title, todo, runs, r)
                    self.disq[k] = "%s in round %d" % (res["status"], r + 1)
                    self.fail_tail[k] = res["tail"]
                    self.progress("  r%d %-56s DISQUALIFIED: %s" % (r + 1, p.label()[:56], res["status"]))
                    continue
                self.known_time[k] = res["secs"]
                self.progress("  r%d %-56s %8.3f s %9.1f MiB%s" % (
                    r + 1, p.label()[:56], res["secs"], res["rss_kb"] / 1024.0,
                    "" if res["metric"] is None else "  metric %g" % res["metric"]))
        out = []
        for p, _ in todo:
            k = p.key(self.cfgs)
            out.append((p, Stats(runs[k], self.lower)))
        return out

    def cut(self, title, todo, runs, rdone):
        """The budget ran out in round rdone + 1 of a batch."""
        if rdone < 2:
            self.progress("budget used up in the middle of %s" % title)
            return None
        self.progress("budget used up in round %d of %s: judging the %d whole rounds" % (
            rdone + 1, title, rdone))
        self.cut_short = True
        return [(p, Stats(runs[p.key(self.cfgs)][:rdone], self.lower)) for p, _ in todo]

    def significant(self, a, b):
        """a beats b by more than both spreads and the minimum gain."""
        if a.obj is None or b.obj is None:
            return False
        g = a.gain_over(b)
        if g <= self.args.min_gain * abs(b.obj):
            return False
        if a.obj_lsp is not None and b.obj_lsp is not None and a.obj > 0 and b.obj > 0:
            lg = math.log(b.obj / a.obj) if self.lower else math.log(a.obj / b.obj)
            return lg > max(a.obj_lsp, b.obj_lsp)
        return g > max(a.obj_sp, b.obj_sp)

    def judge(self, title, res, current):
        """Verdicts for a batch; returns the winner (or None)."""
        rows = []
        cur_stats = None
        for p, st in res:
            if current is not None and p is current:
                cur_stats = st
        best = None
        for p, st in res:
            k = p.key(self.cfgs)
            if k in self.disq:
                rows.append([p, st, "disqualified: " + self.disq[k]])
                continue
            if p is current:
                rows.append([p, st, "current"])
                continue
            if p.glibc:
                rows.append([p, st, "reference (never chosen)"])
                continue
            if cur_stats is None or cur_stats.obj is None:
                rows.append([p, st, "measured"])
                continue
            if self.significant(st, cur_stats):
                rows.append([p, st, "win"])
                if best is None or st.gain_over(best[1]) > 0:
                    best = (p, st)
            elif self.significant(cur_stats, st):
                rows.append([p, st, "worse"])
            else:
                rows.append([p, st, "no significant difference"])
        if best:
            for row in rows:
                if row[0] is best[0]:
                    row[2] = "win, adopted"
        self.batches.append((title, rows))
        return best[0] if best else None

    # -- the whole run --

    def dims(self):
        ds = []
        only = set(self.args.dims.split(",")) if self.args.dims else None
        fixed = {n for n, _ in self.fixes}

        def want(name):
            return (only is None or name in only or short(name) in only) and name not in fixed
        if not self.args.runtime_only:
            for s in self.cfgs.box_symbols():
                if s in SKIP_BOXES and not (only and s in only):
                    continue
                if want(s):
                    ds.append(Dim("box", s, ["y", "n"]))
            for s, vals in BUILD_KNOBS:
                if self.cfgs.has_symbol(s) and want(s):
                    ds.append(Dim("int", s, vals))
            if want(OPT_CHOICE) and all(self.cfgs.has_symbol(v) for v in OPT_VALUES[:2]):
                ds.append(Dim("opt", OPT_CHOICE, OPT_VALUES))
        src = source_text()
        for name, vals, needs, dflt in RUNTIME_KNOBS:
            if ('"%s"' % name) in src and want(name):
                ds.append(Dim("env", name, vals, needs, dflt))
        # Said in the report: what the tree has that no dimension covers.
        known = {n for n, _ in BUILD_KNOBS} | {n for n, *_ in RUNTIME_KNOBS} | \
            {k[3][0] for k in RUNTIME_KNOBS}     # run-time options stand for these
        ints = [s.name for s in self.cfgs.kconf.unique_defined_syms
                if s.orig_type in (self.cfgs.kl.INT, self.cfgs.kl.HEX) and s.nodes
                and s.nodes[0].prompt and s.name not in known]
        envs = sorted(set(re.findall(r'"(HAKMEM_[A-Z0-9_]+)"', src)) - known - {"HAKMEM_STATS"})
        if ints or envs:
            self.notes.append("not searched (no values to try are known for them; --fix or the "
                              "environment sets them): %s" % ", ".join(ints + envs))
        return ds

    def starts(self):
        if self.args.start:
            names = self.args.start.split(",")
        else:
            names = ["defconfig"] + sorted(
                f for f in os.listdir(os.path.join(SRCTREE, "configs"))
                if f.endswith("_defconfig") and f not in SKIP_STARTS)
        for n in names:
            if not os.path.exists(os.path.join(SRCTREE, "configs", n)):
                sys.exit("autotune: no configs/%s" % n)
        return names

    def compare(self):
        """--compare: the given variants (and glibc) interleaved, no search;
        the first one is the reference of the verdicts."""
        a = self.args
        self.known_time = {}
        self.fail_tail = {}
        pts = []
        for spec in a.compare:
            words = spec.split()
            conf = words[0]
            path = conf if os.path.exists(conf) else os.path.join(SRCTREE, "configs", conf)
            if not os.path.exists(path):
                sys.exit("autotune: --compare %r: no such defconfig" % spec)
            env = []
            for w in words[1:]:
                n, eq, v = w.partition("=")
                if not eq:
                    sys.exit("autotune: --compare %r: %r is not NAME=VALUE" % (spec, w))
                env.append((n, v))
            pts.append(Point(os.path.abspath(path), (), env))
        self.progress("reference run under glibc")
        ref = self.runner.run("", {}, a.timeout or 3600)
        self.runner.expected_rc = ref["rc"]
        self.timeout = a.timeout or max(10.0, 10 * ref["secs"])
        res = self.batch("comparison", pts + [Point(None, glibc=True)])
        if res is None:
            sys.exit("autotune: the budget ran out")
        self.reference = pts[0]
        self.judge("comparison", res, pts[0])
        for row in self.batches[-1][1]:
            row[2] = {"current": "reference", "win, adopted": "win"}.get(row[2], row[2])
        self.csv.close()
        png = self.plot(None)
        self.stopped = "comparison only"
        self.report(None, "", None, png, compare=True)
        L = ["%-50s %10s %10s %12s  %s" % ("variant", "time (s)", "RSS (MiB)", a.objective, "verdict")]
        for p, st, v in self.batches[-1][1]:
            L.append("%-50s %10s %10s %12s  %s" % (
                p.label()[:50], "-" if st.time is None else "%.3f" % st.time,
                "-" if st.rss is None else "%.1f" % (st.rss / 1024), self.fmt(st, "obj").split(" ±")[0], v))
        print("\n".join(L))
        say("autotune: report: %s" % os.path.relpath(os.path.join(self.out, "report.md")))
        return 0

    def main(self):
        if self.args.compare:
            return self.compare()
        a = self.args
        self.known_time = {}
        self.fail_tail = {}
        dims = self.dims()
        starts = self.starts()
        say("autotune: workload: %s" % a.workload)
        say("autotune: objective %s (%s is better), budget %d s, %d rounds per comparison, results in %s" % (
            a.objective, "lower" if self.lower else "higher", a.budget, a.rounds,
            os.path.relpath(self.out)))
        say("autotune: starting points: %s" % ", ".join(starts))
        say("autotune: dimensions: %s" % ", ".join(
            ("%s" % short(d.name)) + ("" if d.kind == "box" else "(%s)" % d.kind) for d in dims))

        # The workload under glibc: the exit status every candidate must
        # give, and the run time that sets the timeout.
        g = Point(None, glibc=True)
        self.progress("reference run under glibc")
        ref = self.runner.run("", {}, min(a.timeout or 3600, max(1, self.budget.remaining() - 5)))
        if ref["status"].startswith(("timeout", "no report")) or ref["rc"] < 0:
            sys.exit("autotune: the workload fails under glibc: %s\n%s" % (ref["status"], ref["tail"]))
        if self.runner.metric and ref["metric"] is None:
            sys.exit("autotune: METRIC %r matches nothing in the output under glibc:\n%s" % (
                a.metric, ref["tail"]))
        self.runner.expected_rc = ref["rc"]
        self.timeout = a.timeout or max(10.0, 10 * ref["secs"])
        self.progress("glibc: %.3f s, %.1f MiB, exit %d; timeout per run %.0f s" % (
            ref["secs"], ref["rss_kb"] / 1024.0, ref["rc"], self.timeout))

        # Starting points.
        spts = [self.fixed(Point(s)) for s in starts]
        uniq = []
        for p in spts:
            if p.key(self.cfgs) not in [q.key(self.cfgs) for q in uniq]:
                uniq.append(p)
        res = self.batch("shipped defconfigs", uniq + [g])
        if res is None:
            sys.exit("autotune: the budget (%d s) does not cover even the shipped defconfigs" % a.budget)
        self.reference = uniq[0]
        refst = dict((p.key(self.cfgs), st) for p, st in res).get(self.reference.key(self.cfgs))
        current = self.reference
        if self.reference.key(self.cfgs) in self.disq:
            valid = [(p, st) for p, st in res if p.key(self.cfgs) not in self.disq and not p.glibc]
            if not valid:
                self.judge("shipped defconfigs", res, None)
                self.finish(None)
                return 1
            current = min(valid, key=lambda x: x[1].obj if self.lower else -x[1].obj)[0]
            self.notes.append("%s was disqualified; the search starts from %s" % (
                self.reference.label(), current.label()))
            refst = dict((p.key(self.cfgs), st) for p, st in res)[current.key(self.cfgs)]
        w = self.judge_starts(res, current, refst)
        if w is not None:
            current = w
        self.progress("start: %s" % current.label())

        # Coordinate descent. examined[d] is the point at which dimension
        # d's alternatives last lost: it is skipped until the point moves.
        npass = 0
        stopped = None
        examined = {}
        while stopped is None:
            npass += 1
            ran = False
            i = 0
            while i < len(dims):
                group, names, gdims = [], [], []
                while i < len(dims) and len(group) < a.group:
                    d = dims[i]
                    i += 1
                    if examined.get(d.name) == current.key(self.cfgs):
                        continue
                    alts = [q for q in d.alternatives(current, self.cfgs)
                            if q.key(self.cfgs) not in self.disq]
                    if alts:
                        group += [(q, d) for q in alts]
                        names.append(short(d.name))
                        gdims.append(d)
                    else:
                        examined[d.name] = current.key(self.cfgs)
                if not group:
                    continue
                # Fewer alternatives when the budget cannot take them all
                # (the rest come back in the next pass).
                cut = False
                while group and not self.fits([q for q, _ in group], current):
                    group.pop()
                    cut = True
                if not group:
                    stopped = "budget"
                    break
                gdims = [d for d in gdims if any(gd is d for _, gd in group)]
                names = [short(d.name) for d in gdims]
                title = "pass %d: %s" % (npass, ", ".join(names))
                res = self.batch(title, [q for q, _ in group], current)
                if res is None:
                    stopped = "budget"
                    break
                ran = True
                if self.cut_short:
                    stopped = "budget"
                before = current.key(self.cfgs)
                w = self.judge(title, res, current)
                for d in gdims[:-1] if cut else gdims:
                    examined[d.name] = before
                if w is None and current.key(self.cfgs) in self.disq:
                    # The current point itself failed (a crash that does not
                    # happen every run): it must not be the answer.
                    w = self.fallback(res)
                    self.notes.append("%s failed in %s; moved to %s" % (
                        current.label(), title, w.label() if w else "nothing"))
                    if w is None:
                        stopped = "every candidate failed"
                        current = None
                        break
                if w is not None:
                    wd = next((d for q, d in group if q is w), None)
                    self.progress("adopted: %s" % w.label())
                    current = w
                    if wd is not None:
                        examined[wd.name] = current.key(self.cfgs)
                if stopped is not None:
                    break
            if stopped is None and not ran:
                stopped = "converged"
            if stopped is None and npass >= a.max_passes:
                stopped = "max passes"
        self.stopped = stopped
        if current is None:
            self.finish(None)
            return 1
        self.progress("search ended (%s): %s" % (stopped, current.label()))

        # Confirmation: the choice against the reference, interleaved.
        if current.key(self.cfgs) != self.reference.key(self.cfgs) and \
                self.reference.key(self.cfgs) not in self.disq and not self.args.no_confirm:
            if self.fits([self.reference], current):
                title = "confirmation"
                res = self.batch(title, [self.reference], current)
                if res is not None:
                    st = dict((p.key(self.cfgs), s) for p, s in res)
                    cs = st.get(current.key(self.cfgs))
                    rs = st.get(self.reference.key(self.cfgs))
                    self.judge(title, res, current)
                    if current.key(self.cfgs) in self.disq:
                        self.notes.append("the choice failed in the confirmation run; "
                                          "falling back to %s" % self.reference.label())
                        current = self.reference
                    elif cs and rs and self.significant(rs, cs):
                        self.notes.append("the choice lost to %s in the confirmation run; "
                                          "falling back to it" % self.reference.label())
                        current = self.reference
                    elif cs and rs:
                        self.confirm = (cs, rs)
            else:
                self.notes.append("no budget left for the confirmation run")
        self.finish(current)
        return 0

    def fallback(self, res):
        """The best candidate of res that never failed (not glibc)."""
        valid = [(p, st) for p, st in res
                 if not p.glibc and p.key(self.cfgs) not in self.disq and st.obj is not None]
        if not valid:
            return None
        return min(valid, key=lambda x: x[1].obj if self.lower else -x[1].obj)[0]

    def judge_starts(self, res, current, refst):
        """Verdicts of the defconfig batch; another defconfig replaces the
        reference only when it beats it."""
        return self.judge("shipped defconfigs", res, current)

    def fits(self, group, current):
        cur_t = self.known_time.get(current.key(self.cfgs), 1.0)
        need = 0.0
        for q in group:
            if not q.glibc and not self.cfgs.is_built(q.key(self.cfgs)[0]):
                need += self.cfgs.estimate_build()
            need += self.args.rounds * self.known_time.get(q.key(self.cfgs), cur_t)
        need += self.args.rounds * cur_t
        return need + self.reserve() < self.budget.remaining()

    # -- output --

    def finish(self, best):
        a = self.args
        self.csv.close()
        env_line = best.env_line() if best else ""
        defc = None
        if best is not None:
            h = best.key(self.cfgs)[0]
            d = self.cfgs.dir_of(h)
            r = subprocess.run(["make", "-s", "-C", SRCTREE, "O=" + d, "savedefconfig"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode == 0:
                with open(os.path.join(d, "defconfig")) as f:
                    defc = f.read()
                head = "".join("# %s\n" % l for l in (
                    "autotune result (tools/autotune.sh), %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "workload: %s" % a.workload,
                    "objective: %s; run-time options: %s" % (a.objective, env_line or "(defaults)")))
                for path in (a.defconfig_out, os.path.join(self.out, "autotune_defconfig")):
                    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
                    with open(path, "w") as f:
                        f.write(head + defc)
            else:
                self.notes.append("savedefconfig failed: " + r.stdout.strip()[-200:])
        with open(os.path.join(self.out, "env.txt"), "w") as f:
            f.write(env_line + "\n")
        png = self.plot(best)
        self.report(best, env_line, defc, png)
        say("")
        say("autotune: done in %.0f s (budget %d s), %d runs, %d builds" % (
            self.budget.elapsed(), a.budget, self.runner.nruns, len(self.cfgs.build_times)))
        if best is None:
            say("autotune: every candidate failed; see %s" % os.path.relpath(os.path.join(self.out, "report.md")))
            return
        say("autotune: best variant: %s" % best.label())
        say("autotune: library: %s" % os.path.relpath(os.path.join(self.cfgs.dir_of(best.key(self.cfgs)[0]), "libhakmem.so")))
        say("autotune: %s written (minimal, as savedefconfig writes it)" % os.path.relpath(a.defconfig_out))
        say("autotune: run-time options: %s" % (env_line or "(none: the defaults)"))
        say("autotune: report: %s" % os.path.relpath(os.path.join(self.out, "report.md")))
        print("AUTOTUNE_VARIANT=%s" % best.label())
        print("AUTOTUNE_ENV=%s" % env_line)
        print("AUTOTUNE_DEFCONFIG=%s" % a.defconfig_out)
        print("AUTOTUNE_LIB=%s" % os.path.join(self.cfgs.dir_of(best.key(self.cfgs)[0]), "libhakmem.so"))

    def fmt(self, st, what):
        v, sp = getattr(st, what), getattr(st, what + "_sp")
        if v is None:
            return "-"
        if what == "time":
            return "%.3f ±%.3f" % (v, sp / 2)
        if what == "rss":
            return "%.1f ±%.1f" % (v / 1024, sp / 2048)
        if what == "obj" and self.args.objective == "rss":
            return "%.1f MiB ±%.1f" % (v / 1024, sp / 2048)
        if what == "obj" and self.args.objective == "time":
            return "%.3f s ±%.3f" % (v, sp / 2)
        if what == "obj" and self.args.objective == "time*rss":
            return "%.4g s*MiB ±%.2g" % (v, sp / 2)
        return "%.4g ±%.2g" % (v, sp / 2)

    def plot(self, best):
        """Median objective of every candidate (bars from min to max), as a
        ratio to the reference measured in the same batch."""
        if not shutil.which("gnuplot"):
            self.notes.append("gnuplot not found: no plot (tools/deps.sh installs gnuplot-nox)")
            return None
        dat = os.path.join(self.out, "plot.dat")
        n = 0
        with open(dat, "w") as f:
            for bi, (title, rows) in enumerate(self.batches):
                base = next((st for p, st, v in rows if v == "current"), None)
                if base is None:
                    base = next((st for p, st, v in rows if not p.glibc and st.obj), None)
                if base is None or not base.obj:
                    continue
                curp = next((p for p, st, v in rows if v in ("current", "reference")), None)
                for p, st, v in rows:
                    if st.obj is None or not st.ok:
                        continue
                    vals = [r["obj"] for r in st.ok]
                    n += 1
                    # The x label: what differs from the batch's current point.
                    if p is curp or curp is None or p.glibc or \
                            p.label().split()[0] != curp.label().split()[0]:
                        name = p.label() if p is not curp else "current: " + p.label()
                    else:
                        a_t, c_t = p.label().split(), curp.label().split()
                        name = " ".join([t for t in a_t if t not in c_t] +
                                        ["undo " + t for t in c_t if t not in a_t]) or p.label()
                    col = 3 if v.startswith("win") else (2 if v in ("current", "reference") else (4 if p.glibc else 1))
                    f.write("%d %.5f %.5f %.5f %d \"%s\"\n" % (
                        n, st.obj / base.obj, min(vals) / base.obj, max(vals) / base.obj, col,
                        ("%d: " % (bi + 1)) + name[:44].replace('"', "'")))
        if not n:
            return None
        png = "plot.png"
        gp = """
set terminal pngcairo noenhanced size %d,560 font "sans,9"
set output '%s'
set logscale y 2
set title "autotune: %s of every candidate / its batch's current point (grey: current, green: win, orange: glibc; bars: min..max)"
set ylabel "%s ratio (%s is better)"
set grid ytics
set xtics rotate by -60 nomirror font "sans,7"
set key off
set style fill solid 0.7 border -1
set boxwidth 0.8
set xrange [0:%d]
set palette defined (1 '#9ecae1', 2 '#636363', 3 '#31a354', 4 '#fdae6b')
unset colorbox
set cbrange [1:4]
plot '%s' using 1:2:5:xtic(6) with boxes lc palette, '' using 1:2:3:4 with yerrorbars lc rgb 'black' pt 0
""" % (max(900, 22 * n + 200), os.path.join(self.out, png), self.args.objective,
            self.args.objective, "lower" if self.lower else "higher", n + 1, dat)
        r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
        if r.returncode:
            self.notes.append("gnuplot failed: " + r.stderr.strip()[-200:])
            return None
        return png

    def report(self, best, env_line, defc, png, compare=False):
        a = self.args
        L = []
        L.append("# autotune report\n")
        L.append("- date: %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        L.append("- workload: `%s`" % a.workload)
        L.append("- objective: %s (%s is better)%s" % (
            a.objective, "lower" if self.lower else "higher",
            "; METRIC `%s` (%s is better)" % (a.metric, a.metric_dir) if a.metric else ""))
        nb = len(self.cfgs.build_times)
        L.append("- budget: %d s; used %.0f s (%d runs, %s); search ended: %s" % (
            a.budget, self.budget.elapsed(), self.runner.nruns,
            "%d builds of %.1f s median" % (nb, self.cfgs.estimate_build()) if nb else
            "no build: every variant was in build/autotune already", getattr(self, "stopped", "-")))
        L.append("- rounds per comparison: %d, interleaved, order rotated each round; "
                 "a win needs a ratio of medians larger than both spreads (max/min of "
                 "the rounds) and a gain of at least %.1f%%" % (a.rounds, 100 * a.min_gain))
        L.append("- machine: %s, %d CPUs, load %s" % (
            os.uname().machine, os.cpu_count() or 0, " ".join("%.2f" % x for x in os.getloadavg())))
        L.append("- commit: %s" % git_head())
        L.append("")
        L.append("## Result\n")
        if compare:
            L.append("Comparison only (--compare); the first variant is the reference.\n")
        elif best is None:
            L.append("Every candidate failed; nothing chosen.\n")
        else:
            L.append("- variant: **%s**" % best.label())
            L.append("- run-time options: `%s`" % (env_line or "(defaults)"))
            L.append("- library: `%s`" % os.path.relpath(os.path.join(
                self.cfgs.dir_of(best.key(self.cfgs)[0]), "libhakmem.so"), SRCTREE))
            name = os.path.basename(a.defconfig_out)
            cp = "" if os.path.dirname(a.defconfig_out) == os.path.join(SRCTREE, "configs") else \
                "`cp %s configs/autotune_defconfig`, then " % os.path.relpath(a.defconfig_out, SRCTREE)
            if cp:
                name = "autotune_defconfig"
            L.append("- use it: %s`make O=build/tuned %s all`, then `%sLD_PRELOAD=$PWD/build/tuned/libhakmem.so %s`" % (
                cp, name, env_line + " " if env_line else "", a.workload))
            conf = getattr(self, "confirm", None)
            if conf:
                cs, rs = conf
                L.append("- confirmation run (interleaved, %d rounds), %s median: chosen %s, %s %s; "
                         "the choice is %.3fx as good" % (
                             a.rounds, a.objective, self.fmt(cs, "obj"), self.reference.label(),
                             self.fmt(rs, "obj"),
                             (rs.obj / cs.obj) if self.lower else (cs.obj / rs.obj)))
            L.append("")
            if defc is not None:
                L.append("autotune_defconfig:\n\n```\n%s```\n" % defc)
        for n in self.notes:
            L.append("- note: %s" % n)
        if self.notes:
            L.append("")
        dq = [(title, p, v) for title, rows in self.batches for p, st, v in rows if v.startswith("disqualified")]
        if dq:
            L.append("## Disqualified candidates\n")
            seen = set()
            for title, p, v in dq:
                if p.label() in seen:
                    continue
                seen.add(p.label())
                L.append("- %s: %s" % (p.label(), v[len("disqualified: "):]))
                tail = self.fail_tail.get(p.key(self.cfgs))
                if tail:
                    L.append("\n  ```\n" + "\n".join("  " + l for l in tail.splitlines()) + "\n  ```")
            L.append("")
        L.append("## Every candidate\n")
        L.append("Medians over the rounds ± half the spread (max - min); RSS is the peak "
                 "(/usr/bin/time %M) in MiB; the objective column is what was compared.\n")
        for bi, (title, rows) in enumerate(self.batches):
            L.append("### %d. %s\n" % (bi + 1, title))
            L.append("| candidate | rounds ok | time (s) | peak RSS (MiB) |%s objective | verdict |" % (
                " metric |" if a.metric else ""))
            L.append("|---|---:|---:|---:|%s---:|---|" % ("---:|" if a.metric else ""))
            for p, st, v in rows:
                L.append("| %s | %d/%d | %s | %s |%s %s | %s |" % (
                    p.label(), len(st.ok), len(st.runs), self.fmt(st, "time"), self.fmt(st, "rss"),
                    (" %s |" % self.fmt(st, "metric")) if a.metric else "", self.fmt(st, "obj"), v))
            L.append("")
        if png:
            L.append("## Plot\n")
            L.append("![objective of every candidate](%s)\n" % png)
        L.append("Raw runs: runs.csv.\n")
        with open(os.path.join(self.out, "report.md"), "w") as f:
            f.write("\n".join(L))


def signame(n):
    try:
        return signal.Signals(n).name
    except ValueError:
        return "signal %d" % n


def source_text():
    out = []
    for root in ("lib", "boxes"):
        for dp, dn, fn in os.walk(os.path.join(SRCTREE, root)):
            for f in fn:
                if f.endswith((".c", ".h")):
                    with open(os.path.join(dp, f), errors="replace") as fh:
                        out.append(fh.read())
    return "\n".join(out)


def git_head():
    try:
        return subprocess.run(["git", "-C", SRCTREE, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip() or "-"
    except OSError:
        return "-"


def main(argv):
    env = os.environ
    ap = argparse.ArgumentParser(
        prog="tools/autotune.sh",
        description="Pick the hakmem variant and HAKMEM_* options that suit a workload "
                    "(Documentation/autotune.md). Options default to the environment "
                    "variables WORKLOAD, OBJECTIVE, BUDGET, METRIC, METRIC_DIR, OUT.")
    ap.add_argument("command", nargs="*", help="the workload (instead of --workload/WORKLOAD)")
    ap.add_argument("--workload", default=env.get("WORKLOAD"), help="shell command to tune for")
    ap.add_argument("--objective", default=env.get("OBJECTIVE"),
                    choices=["time", "rss", "time*rss", "metric"],
                    help="what to minimise (metric: the METRIC figure); default time, or metric when METRIC is set")
    ap.add_argument("--budget", type=float, default=float(env.get("BUDGET") or 600),
                    help="seconds for the whole run, builds included (default 600)")
    ap.add_argument("--metric", default=env.get("METRIC") or None,
                    help="regexp whose last match in the output (group 1 if any) is the workload's figure")
    ap.add_argument("--metric-dir", default=env.get("METRIC_DIR") or "higher", choices=["higher", "lower"],
                    help="whether a higher or a lower METRIC is better (default higher)")
    ap.add_argument("--rounds", type=int, default=int(env.get("ROUNDS") or 3),
                    help="rounds per comparison (default 3)")
    ap.add_argument("--timeout", type=float, default=float(env.get("TIMEOUT") or 0),
                    help="seconds per run (default: 10x the glibc run, at least 10)")
    ap.add_argument("--start", default=env.get("START"),
                    help="comma-separated configs/ names to start from (default: defconfig and every "
                         "*_defconfig but debug_defconfig)")
    ap.add_argument("--dims", default=env.get("DIMS"),
                    help="search only these (comma-separated Kconfig symbols or HAKMEM_ names, "
                         "HAK_ prefix optional; HAK_CC_OPTIMIZE for the -O level)")
    ap.add_argument("--fix", action="append", default=(env.get("FIX") or "").split(),
                    metavar="SYM=VAL", help="hold a Kconfig symbol in every candidate (repeatable)")
    ap.add_argument("--runtime-only", action="store_true", help="no build-time dimensions")
    ap.add_argument("--no-confirm", action="store_true",
                    help="skip the final interleaved run of the choice against the reference")
    ap.add_argument("--group", type=int, default=4, help="alternatives per batch (default 4)")
    ap.add_argument("--max-passes", type=int, default=5, help="coordinate-descent passes at most (default 5)")
    ap.add_argument("--min-gain", type=float, default=0.01,
                    help="smallest relative gain called a win (default 0.01)")
    ap.add_argument("--out", default=env.get("OUT"),
                    help="results folder (default autotune-results/<date>)")
    ap.add_argument("--defconfig-out", default=env.get("DEFCONFIG_OUT"),
                    help="where the chosen defconfig goes (default configs/autotune_defconfig)")
    ap.add_argument("--cache", default=os.path.join(SRCTREE, "build", "autotune"),
                    help="where variants are built (default build/autotune)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="make -j for the builds")
    ap.add_argument("--compare", action="append", metavar="'DEFCONFIG [NAME=VAL...]'",
                    help="no search: run these variants (a defconfig file or configs/ name, then "
                         "run-time options) and glibc interleaved, the first one the reference (repeatable)")
    a = ap.parse_args(argv)
    if a.command:
        a.workload = " ".join(a.command) if len(a.command) > 1 else a.command[0]
    if not a.workload:
        ap.error("no workload: give WORKLOAD=\"command args\", --workload or a command")
    if a.objective is None:
        a.objective = "metric" if a.metric else "time"
    if a.objective == "metric" and not a.metric:
        ap.error("OBJECTIVE=metric needs METRIC")
    if a.rounds < 2:
        ap.error("--rounds must be at least 2 (a spread needs two rounds)")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    a.out = os.path.abspath(a.out or os.path.join(SRCTREE, "autotune-results", stamp))
    a.defconfig_out = os.path.abspath(a.defconfig_out or os.path.join(SRCTREE, "configs", "autotune_defconfig"))
    a.fix = [f for f in a.fix if f]
    for f in a.fix:
        if "=" not in f:
            ap.error("--fix wants SYM=VAL, not %r" % f)
    return Autotune(a).main()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
