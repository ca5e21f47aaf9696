#!/bin/bash
# SPDX-License-Identifier: MIT
# runner: long (one of the longest selftests: the runner starts it first)
#
# Heap profiles of real programs under LD_PRELOAD=$HAKMEM_LIB with
# HAKMEM_PROF=1: python3, git and gcc (the driver and its cc1/as children,
# each writing its own file) must leave profiles that `go tool pprof`
# opens without error and whose stacks reach the program's own code:
# python3 and cc1 export their functions, so pprof names them (from the
# profile's own dynamic-symbol names: these binaries carry no DWARF); git
# exports none, so its frames show as its mapping, [git]. A missing
# go tool pprof is a failure (tools/deps.sh installs golang-go).
set -u
n=0
fails=0
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n $2"; else echo "not ok $n $2"; fails=$((fails + 1)); fi
}
skip() {
	n=$((n + 1))
	echo "ok $n # SKIP $1"
}

lib=${HAKMEM_LIB:-${O:-.}/libhakmem.so}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PPROF_TMPDIR=$tmp HOME=${HOME:-$tmp}
prof() {	# NAME CMD...: run CMD profiled, files $tmp/NAME.<pid>.pb.gz
	local name=$1
	shift
	HAKMEM_PROF=1 HAKMEM_PROF_SAMPLE=65536 HAKMEM_PROF_OUT=$tmp/$name LD_PRELOAD=$lib "$@"
}
# every profile NAME.* opens; prints the -top text of all of them
top_all() {
	local f rc=0
	for f in "$tmp/$1".*.pb.gz; do
		[ -f "$f" ] || return 1
		go tool pprof -top -nodecount=200 -sample_index=alloc_space "$f" 2>"$tmp/err" || rc=1
		[ -s "$tmp/err" ] && grep -qi 'error\|failed' "$tmp/err" && { sed 's/^/# /' "$tmp/err"; rc=1; }
	done
	return $rc
}

echo "TAP version 13"
echo "1..6"
if ! go tool pprof -h >/dev/null 2>&1; then
	echo "# go tool pprof is missing: run tools/deps.sh (golang-go)"
	for i in 1 2 3 4 5 6; do ok 1 "go tool pprof available"; done
	exit 1
fi

py=/usr/bin/python3
if [ -x "$py" ]; then
	prof py "$py" -c '
import json
d = [{"k": i, "v": str(i) * 8} for i in range(200000)]
s = json.dumps(d)
print(len(json.loads(s)))' >/dev/null
	top_all py >"$tmp/py.top"; ok $? "python3: every profile opens in go tool pprof"
	grep -qE ' (Py|_Py)[A-Za-z_]+$' "$tmp/py.top"; ok $? "python3: the interpreter's functions are named"
else
	skip "python3 is not installed"; skip "python3 is not installed"
fi

g=$(command -v git 2>/dev/null)
if [ -n "$g" ]; then
	(
		cd "$tmp" && mkdir repo && cd repo || exit 1
		export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
		prof git "$g" init -q . && for i in $(seq 1 30); do
			seq "$i" 5000 >"f$((i % 5))" && prof git "$g" add -A && prof git "$g" commit -qm "c$i"
		done && prof git "$g" log -p >/dev/null && prof git "$g" gc -q
	) >/dev/null 2>&1
	top_all git >"$tmp/git.top"; ok $? "git: every profile opens in go tool pprof"
	grep -qE '\[git\]$' "$tmp/git.top"; ok $? "git: stacks reach git's own code (shown as [git]: it exports no names)"
else
	skip "git is not installed"; skip "git is not installed"
fi

cc=$(command -v gcc 2>/dev/null)
if [ -n "$cc" ]; then
	printf '#include <stdio.h>\nstruct s { int a[64]; };\nint main(void) { struct s x = {{1}}; printf("%%d\\n", x.a[0]); return 0; }\n' >"$tmp/t.c"
	prof gcc "$cc" -O2 -c "$tmp/t.c" -o "$tmp/t.o"
	top_all gcc >"$tmp/gcc.top"; ok $? "gcc: every profile (driver, cc1, as) opens in go tool pprof"
	grep -qE ' (xmalloc|xcalloc|xrealloc|ggc_[a-z_]+)$' "$tmp/gcc.top"; ok $? "gcc: cc1's own functions are named"
else
	skip "gcc is not installed"; skip "gcc is not installed"
fi
[ "$fails" -eq 0 ]
