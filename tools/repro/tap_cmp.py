#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compare runs of tools/repro/git_suite.sh test by test.

    tap_cmp.py BASEDIR OTHERDIR...

Prints per run: scripts, tests by status (pass, fail, skip, broken = known breakage,
fixed), scripts killed by the timeout, other non-zero exits; then every test whose status
differs from BASEDIR's, over the scripts both runs finished.
"""
import re
import sys

TAP = re.compile(r'^(not ok|ok) (\d+) - (.*?)(?: # (TODO.*))?$')
# git's test-lib writes a skipped test as "ok N # skip <title> (missing PREREQ)".
SKIP = re.compile(r'^ok (\d+) # skip (.*)$')


def load(d):
    rcs = {}
    for line in open(d + '/rc.txt'):
        s, rc, _ = line.split()
        rcs[s] = int(rc)
    res = {}
    for s in rcs:
        for line in open(f'{d}/tap/{s}.tap', errors='replace'):
            line = line.rstrip('\n')
            m = SKIP.match(line)
            if m:
                res[(s, int(m.group(1)))] = ('skip', m.group(2))
                continue
            m = TAP.match(line)
            if not m:
                continue
            st, num, desc, ann = m.groups()
            if ann:
                k = 'broken' if st == 'not ok' else 'fixed'
            else:
                k = 'pass' if st == 'ok' else 'fail'
            res[(s, int(num))] = (k, desc)
    return rcs, res


def main(dirs):
    runs = {d: load(d) for d in dirs}
    for d, (rcs, res) in runs.items():
        count = {}
        for k, _ in res.values():
            count[k] = count.get(k, 0) + 1
        hung = sorted(s for s, rc in rcs.items() if rc in (124, 137))
        bad = sorted(s for s, rc in rcs.items() if rc not in (0, 124, 137))
        print(f'{d}: {len(rcs)} scripts, {len(res)} tests {count}; timed out {hung}; '
              f'exit != 0 {bad}')
    base_rcs, base = runs[dirs[0]]
    for d in dirs[1:]:
        rcs, res = runs[d]
        both = set(rcs) & set(base_rcs)
        for key in sorted(set(base) | set(res)):
            if key[0] not in both:
                continue
            a = base.get(key, ('-', ''))
            b = res.get(key, ('-', ''))
            if a[0] != b[0]:
                print(f'  {d}: {key[0]} #{key[1]}: {a[0]} -> {b[0]}  {a[1] or b[1]}')


if __name__ == '__main__':
    main(sys.argv[1:])
