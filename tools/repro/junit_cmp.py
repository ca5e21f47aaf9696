#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compare JUnit XML files case by case (pytest, CPython's regrtest --junit-xml).

    junit_cmp.py BASE.xml OTHER.xml...

Prints per file: cases by status (pass, fail, error, skip, xfail), then every case whose
status differs from BASE's, and cases present in one file only. A run under an allocator is
judged by this list, not by its totals: the same count can hide one case passing that
failed elsewhere and another failing.
"""
import collections
import sys
import xml.etree.ElementTree as ET


def status(tc):
    for ch in tc:
        if ch.tag == 'failure':
            return 'fail'
        if ch.tag == 'error':
            return 'error'
        if ch.tag == 'skipped':
            # pytest marks an expected failure as a skip of type pytest.xfail.
            return 'xfail' if 'xfail' in (ch.get('type') or '') else 'skip'
    return 'pass'


def load(path):
    res = {}
    for tc in ET.parse(path).getroot().iter('testcase'):
        key = tc.get('classname', '') + '::' + tc.get('name', '')
        st = status(tc)
        # A case reported twice (a setup error after a pass) keeps both statuses.
        res[key] = res[key] + '/' + st if key in res else st
    return res


def main(paths):
    runs = [(p, load(p)) for p in paths]
    for p, r in runs:
        c = collections.Counter(r.values())
        print(f'{p}: {len(r)} cases, ' + ', '.join(f'{k} {v}' for k, v in sorted(c.items())))
    base_path, base = runs[0]
    diffs = 0
    for p, r in runs[1:]:
        for key in sorted(set(base) | set(r)):
            if base.get(key) != r.get(key):
                diffs += 1
                print(f'  {p}: {key}: {base.get(key, "absent")} -> {r.get(key, "absent")}')
    print(f'{diffs} differences from {base_path}')
    return 1 if diffs else 0


if __name__ == '__main__':
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
