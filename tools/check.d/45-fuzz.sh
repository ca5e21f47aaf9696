# SPDX-License-Identifier: MIT
# libFuzzer on the hak_* API for 45 seconds from the seed corpus
# (tools/fuzz.sh; `make fuzz` for long runs): one libFuzzer process (after
# its clang build), in the background next to the stress steps (threaded
# programs one run at a time, about 1.5 of the two CPUs) and ubsan's
# selftests. Until 2026-12-06 it was a step of its own next to
# faultinject-core, which now runs beside the box matrix (ck35). The
# fuzzing is 45 s of wall time either way; beside other steps it gets
# fewer executions in it (fuzz.log prints how many).
# (first tier only: tools/check.sh)
tier check || return 0
bgstep fuzz tools/fuzz.sh -t 45
