# SPDX-License-Identifier: MIT
# Sanitizer builds (tools/sanitize.sh): UBSan on defconfig with the arch,
# core and sanitize selftests; TSan and ASan with CONFIG_HAK_INTERPOSE=n
# on the selftests/sanitize programs, which call hak_* directly.
step sanitize:ubsan tools/sanitize.sh ubsan
step sanitize:tsan tools/sanitize.sh tsan
step sanitize:asan tools/sanitize.sh asan
