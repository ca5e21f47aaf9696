#!/bin/sh
# SPDX-License-Identifier: MIT
# runner: long (one of the longest selftests: the runner starts it first)
#
# git under LD_PRELOAD=$HAKMEM_LIB: the same scripted session over a
# generated repository (init, 60 porcelain commits with edits, renames and
# deletions, 2000 more commits through fast-import, branches and a merge,
# log --stat, diff, blame, gc, fsck, object listing) must produce exactly
# the same output and the same commit ids with and without hakmem, and the
# preloaded git must really run on hakmem. Dates, identities and config are
# pinned so the output is deterministic.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 3

g=$(command -v git) || tap_skip_rest "git is not installed"

# session PRELOAD REPO: run the whole session, every git call through $run
session() {
	run=$1
	repo=$2
	mkdir -p "$repo" || return 1
	cd "$repo" || return 1
	$run "$g" init -q -b main . || return 1
	$run "$g" config core.autocrlf false
	$run "$g" config gc.auto 0
	i=0
	while [ $i -lt 60 ]; do
		f=file$((i % 7)).txt
		j=0
		while [ $j -lt $((i % 5 + 3)) ]; do
			echo "line $i.$j of $f: $((i * 7919 % 1000))"
			j=$((j + 1))
		done >>"$f"
		[ $((i % 11)) -eq 5 ] && $run "$g" mv -k "file$((i % 3)).txt" "moved$i.txt"
		[ $((i % 13)) -eq 7 ] && $run "$g" rm -q -f --ignore-unmatch "file$((i % 4)).txt"
		$run "$g" add -A || return 1
		GIT_AUTHOR_DATE="@$((1700000000 + i * 60)) +0000" \
		GIT_COMMITTER_DATE="@$((1700000000 + i * 60)) +0000" \
			$run "$g" commit -q -m "commit $i" || return 1
		i=$((i + 1))
	done
	$run "$g" branch side HEAD~10
	# 2000 commits in one fast-import stream (one process, lots of allocation)
	awk 'BEGIN {
		for (i = 1; i <= 2000; i++) {
			printf "commit refs/heads/side\nmark :%d\n", i
			printf "author A U Thor <author@example.com> %d +0000\n", 1700100000 + i
			printf "committer C O Mitter <committer@example.com> %d +0000\n", 1700100000 + i
			msg = sprintf("bulk %d", i)
			printf "data %d\n%s\n", length(msg), msg
			if (i == 1) printf "from refs/heads/side^0\n"
			body = ""
			for (k = 0; k < i % 9 + 1; k++) body = body sprintf("row %d %d\n", i, k * i % 977)
			printf "M 100644 inline bulk/d%d/f%d.txt\ndata %d\n%s\n", i % 10, i % 37, length(body), body
		}
	}' | $run "$g" fast-import --quiet || return 1
	GIT_AUTHOR_DATE="@1700200000 +0000" GIT_COMMITTER_DATE="@1700200000 +0000" \
		$run "$g" merge -q --no-edit side -m "merge side" || return 1
	$run "$g" rev-parse HEAD HEAD~1 side main
	$run "$g" log --stat --format='%H %an %ad %s' --date=raw -n 300
	$run "$g" log --format='%H %P' | tail -n 50
	$run "$g" diff --stat HEAD~30 HEAD
	$run "$g" blame -s file3.txt | head -n 40
	$run "$g" gc -q --aggressive || return 1
	$run "$g" fsck --full --strict 2>&1 || return 1
	$run "$g" count-objects -v | grep -v -e '^size' -e '^prune'
	$run "$g" cat-file --batch-all-objects --batch-check | sort
	$run "$g" ls-tree -r HEAD | tail -n 40
}

common_env() {
	HOME=$workdir/home
	XDG_CONFIG_HOME=$workdir/home
	GIT_CONFIG_NOSYSTEM=1
	GIT_AUTHOR_NAME="A U Thor"
	GIT_AUTHOR_EMAIL=author@example.com
	GIT_COMMITTER_NAME="C O Mitter"
	GIT_COMMITTER_EMAIL=committer@example.com
	GIT_AUTHOR_DATE="@1700000000 +0000"
	GIT_COMMITTER_DATE="@1700000000 +0000"
	TZ=UTC
	export HOME XDG_CONFIG_HOME GIT_CONFIG_NOSYSTEM GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL
	export GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL GIT_AUTHOR_DATE GIT_COMMITTER_DATE TZ
	mkdir -p "$HOME"
}

common_env
(session env "$workdir/plain") >"$workdir/plain.out" 2>&1
rc1=$?
(session with_hakmem "$workdir/hak") >"$workdir/hak.out" 2>&1
rc2=$?
same_status "git session over a 2000+ commit repository runs under hakmem" "$rc1" "$rc2"
same_files "git output (ids, log, diff, blame, gc, fsck, objects) identical with and without hakmem" \
	"$workdir/plain.out" "$workdir/hak.out"
stats_check git "$g" --version
tap_finish
