#!/bin/sh
# SPDX-License-Identifier: MIT
#
# autotune.sh: pick the hakmem variant (boxes, build options) and HAKMEM_*
# run-time options that suit one workload (`make autotune` runs it).
# Documentation/autotune.md; tools/autotune.sh --help lists the options.
#
#   tools/autotune.sh [--objective time|rss|time*rss|metric] [--budget S]
#                     [--metric REGEXP [--metric-dir higher|lower]]
#                     [--out DIR] [...] -- command args
#
# The options also come from the environment, as `make autotune` passes
# them: WORKLOAD, OBJECTIVE, BUDGET, METRIC, METRIC_DIR, OUT, ROUNDS, START,
# DIMS, FIX, TIMEOUT, DEFCONFIG_OUT.
srctree=$(cd "$(dirname "$0")/.." && pwd)
# Kconfiglib is Debian's: /usr/bin/python3 sees it, a pyenv python3 may not.
py=/usr/bin/python3
[ -x $py ] || py=python3
$py -c 'import kconfiglib' 2>/dev/null || "$srctree/tools/deps.sh" || exit 1
exec $py "$srctree/tools/autotune/autotune.py" "$@"
