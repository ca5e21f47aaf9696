# SPDX-License-Identifier: MIT
# Sanitizer builds (tools/sanitize.sh): UBSan on defconfig with the arch,
# core and sanitize selftests; TSan and ASan with CONFIG_HAK_INTERPOSE=n
# on the selftests/sanitize programs (which call hak_* directly), at 4
# times their default length.
# (first tier only: tools/check.sh)
tier check || return 0
step sanitize:ubsan tools/sanitize.sh ubsan
step sanitize:tsan env HAKMEM_SAN_SCALE=4 tools/sanitize.sh tsan
step sanitize:asan env HAKMEM_SAN_SCALE=4 tools/sanitize.sh asan
