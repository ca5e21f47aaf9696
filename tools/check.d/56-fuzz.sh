# SPDX-License-Identifier: MIT
# libFuzzer on the hak_* API for 45 seconds from the seed corpus
# (tools/fuzz.sh; `make fuzz` for long runs). Right after faultinject-core
# (55-faultinject.sh), which runs in the background: both are one process
# at a time, so together they keep the two CPUs busy.
# (first tier only: tools/check.sh)
tier check || return 0
step fuzz tools/fuzz.sh -t 45
