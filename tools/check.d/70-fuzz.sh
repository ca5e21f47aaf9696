# SPDX-License-Identifier: MIT
# libFuzzer on the hak_* API for 45 seconds from the seed corpus
# (tools/fuzz.sh; `make fuzz` for long runs).
step fuzz tools/fuzz.sh -t 45
