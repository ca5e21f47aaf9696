#!/bin/sh
# SPDX-License-Identifier: MIT
#
# errno_table.c built without hakmem and run on the C library's malloc:
# proves that the rows of the errno table (Documentation/bad-input.md)
# that claim glibc's behaviour are glibc's behaviour. Its TAP output is
# errno_table's own. Skipped when no C compiler is found.

src=${SRCTREE:-$(cd "$(dirname "$0")/../.." && pwd)}
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
	echo "TAP version 13"
	echo "1..0 # SKIP no C compiler"
	exit 4
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
if ! "$cc" -std=gnu11 -D_GNU_SOURCE -O1 -fno-builtin -I"$src/selftests/lib" \
	-o "$tmp/errno_table" "$src/selftests/core/errno_table.c" 2>"$tmp/cc.log"; then
	echo "TAP version 13"
	echo "1..1"
	sed 's/^/# /' "$tmp/cc.log"
	echo "not ok 1 errno_table.c builds without hakmem"
	exit 1
fi
"$tmp/errno_table"
