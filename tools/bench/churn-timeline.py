#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Where a thread-churn thread's wall time goes, from the scheduler's trace.

Record a whole-system trace of one run and read it back:

  LD_PRELOAD=... perf record -a -o churn.data \\
      -e sched:sched_wakeup_new,sched:sched_switch,sched:sched_process_exit \\
      build/bench/thread-churn 1 2000 64 42
  perf script -i churn.data | tools/bench/churn-timeline.py

For each thread the program started it takes the creation (sched_wakeup_new,
with the CPU the kernel chose), the first switch to it, its exit and the next
switch to its creator, and prints medians (quartiles) in microseconds: the
start delay, the thread's own run (switch-in to exit: the allocator's part is
in there), the creator's wake-up after the exit, the creator's time to the
next creation, the period from one creation to the next (what the row's
ops_per_sec measures), and that period split by whether the thread ran on its
creator's CPU or had to wait for the other one.  Only the one-thread shape
(a wave of one) reads cleanly; with more threads a wave's periods overlap.
"""

import bisect
import re
import statistics
import sys

LINE = re.compile(r"^\s*(\S.*?)\s+(-?\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$")


def quart(v):
    s = sorted(v)
    return "%.1f (%.1f-%.1f)" % (statistics.median(s), s[len(s) // 4],
                                 s[3 * len(s) // 4])


def main():
    creator = None
    threads = {}
    creator_in = []
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        _, pid, cpu, t, ev, rest = m.groups()
        pid, cpu, t = int(pid), int(cpu), float(t) * 1e6
        if ev == "sched:sched_wakeup_new" and "comm=thread-churn" in rest:
            creator = pid
            child = int(re.search(r"pid=(\d+)", rest).group(1))
            threads[child] = {"new": t, "pcpu": cpu}
        elif ev == "sched:sched_switch":
            nxt = int(re.search(r"next_pid=(-?\d+)", rest).group(1))
            d = threads.get(nxt)
            if d is not None and "run" not in d:
                d["run"], d["rcpu"] = t, cpu
            if nxt == creator:
                creator_in.append(t)
        elif ev == "sched:sched_process_exit" and pid in threads:
            threads[pid]["exit"] = t
    order = sorted(threads, key=lambda k: threads[k]["new"])
    start, run, wake, gap, period = [], [], [], [], []
    split = {True: [], False: []}
    for i, k in enumerate(order):
        d = threads[k]
        if "run" not in d or "exit" not in d:
            continue
        j = bisect.bisect_left(creator_in, d["exit"])
        if j == len(creator_in) or i + 1 == len(order):
            continue
        nxt = threads[order[i + 1]]["new"]
        start.append(d["run"] - d["new"])
        run.append(d["exit"] - d["run"])
        wake.append(creator_in[j] - d["exit"])
        gap.append(nxt - creator_in[j])
        period.append(nxt - d["new"])
        split[d["rcpu"] == d["pcpu"]].append(nxt - d["new"])
    if not period:
        sys.exit("no complete thread in the trace")
    n = len(period)
    print("threads %d, ran on the creator's CPU %.2f" % (n, len(split[True]) / n))
    print("  start delay         %s" % quart(start))
    print("  run to exit         %s" % quart(run))
    print("  creator's wake-up   %s" % quart(wake))
    print("  creator to next     %s" % quart(gap))
    print("  period              %s" % quart(period))
    for same in (True, False):
        if split[same]:
            print("  period, %s CPU  n=%d %s" % ("same " if same else "other",
                                                len(split[same]), quart(split[same])))


if __name__ == "__main__":
    main()
