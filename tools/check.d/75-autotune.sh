# SPDX-License-Identifier: MIT
# autotune on its synthetic workloads (short version, ~30 s plus two
# variant builds): the mid-size workload must get the L2.5 pool, the RSS
# objective a smaller dirty limit, and a crashing candidate must be
# reported and not chosen. Writes only to build/.
# (first tier only: tools/check.sh)
tier check || return 0
step autotune tools/autotune/test.sh
