#!/bin/sh
# SPDX-License-Identifier: MIT
# Copy into a git tree's t/ as t9990-preload.sh and run it there (tools/repro/git_suite.sh runs
# it like any script): checks that the allocator under test reached git and a child git
# (upload-pack of a clone --no-local), by their /proc/<pid>/maps. EXPECT_MAPPED names the
# library expected in the maps (a path part); unset, no hakmem may be mapped.
test_description='the allocator under test is mapped in git and its children'
. ./test-lib.sh
test_expect_success 'git process maps the expected allocator' '
	git config alias.maps "!cat /proc/\$PPID/maps" &&
	git maps >maps &&
	if test -n "$EXPECT_MAPPED"
	then
		grep "$EXPECT_MAPPED" maps
	else
		! grep hakmem maps
	fi
'
test_expect_success 'upload-pack child of a local clone maps it too' '
	test_commit one &&
	git clone --no-local -u "sh -c \"cat /proc/\\\$\\\$/maps >../up-maps; exec git-upload-pack \\\"\\\$@\\\"\" --" . clone &&
	if test -n "$EXPECT_MAPPED"; then grep "$EXPECT_MAPPED" ../up-maps; else ! grep hakmem ../up-maps; fi
'
test_done
