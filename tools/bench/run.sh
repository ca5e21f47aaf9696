#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# hakmem benchmark runner (`make bench`).  Documentation/benchmarks.md.
#
# Builds the benchmark programs (tools/bench/*.c, plain libc) into
# build/bench/, builds the hakmem perf_defconfig and defconfig variants into
# build/bench-perf and build/bench-default, then runs every benchmark under
# every allocator through LD_PRELOAD in interleaved rounds (A B C ... A B C
# ...; each round and each row starts one allocator later), so all
# allocators see the same machine noise.  Reports the median throughput, peak
# RSS (/usr/bin/time %M) and ratios against the system malloc and the best
# peer; writes CSV, a Markdown table and PNG plots under bench-results/<date>/
# (bench-results/latest points there).
#
#   tools/bench/run.sh [--quick] [--rounds N] [--only NAME[,NAME..]]
#                      [--threads "1 2"] [--alloc NAME[,NAME..]]
#                      [--with NAME=LIB.so] [--callgrind] [--update-docs]
#                      [--no-build]
#
#   --quick        1 round, a subset of the benchmarks (smoke test)
#   --rounds N     rounds per benchmark (default 5; the median is reported)
#   --only LIST    only these benchmarks (names as in the table, prefixes ok)
#   --threads L    thread counts for the threaded benchmarks (default "1 2";
#                  e.g. "1 2 4 8 16 64" or 1,2,16,64; past 2 threads the
#                  per-thread work of producer-consumer, cache-scratch,
#                  footprint and size-chain shrinks so the total stays that of 2 threads)
#   --alloc LIST   only these allocators (hakmem-perf, hakmem-default, glibc,
#                  mimalloc, jemalloc, tcmalloc, tbbmalloc)
#   --with N=SO    also run LD_PRELOAD=SO under the name N (repeatable)
#   --callgrind    instructions per malloc+free pair on random-mixed
#                  (valgrind --tool=callgrind) instead of the timed suite
#   --update-docs  also regenerate the results section and plots of
#                  Documentation/benchmarks.md
#   --no-build     do not rebuild hakmem (use what is in build/bench-*)
#
# Environment: BENCH_ARGS (options read before the command line, so
# `make bench BENCH_ARGS="--quick"` works), BENCH_TIMEOUT (seconds per run,
# default 60), BENCH_OUT (results directory, default bench-results/<date>),
# CC (default cc).

# The body is one brace group: bash parses it whole before running it, so
# editing this file while a run is in progress cannot derail that run.
{
set -u -o pipefail

srctree=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
benchsrc=$srctree/tools/bench
bindir=$srctree/build/bench
libdir=/usr/lib/x86_64-linux-gnu

rounds=5
quick=0
only=""
threads_list="1 2"
alloc_filter=""
callgrind=0
update_docs=0
build_hakmem=1
extra_allocs=()
timeout_s=${BENCH_TIMEOUT:-60}
CC=${CC:-cc}

usage() {
	sed -n '/^#   tools\/bench\/run.sh/,/^# CC (default/p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

# shellcheck disable=SC2086 # BENCH_ARGS is a list of words
set -- ${BENCH_ARGS:-} "$@"
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1; rounds=1 ;;
	--rounds) rounds=${2:?--rounds needs a number}; shift ;;
	--rounds=*) rounds=${1#*=} ;;
	--only) only=${2:?--only needs a name}; shift ;;
	--only=*) only=${1#*=} ;;
	--threads) threads_list=${2:?--threads needs a list}; shift ;;
	--threads=*) threads_list=${1#*=} ;;
	--alloc) alloc_filter=${2:?--alloc needs a list}; shift ;;
	--alloc=*) alloc_filter=${1#*=} ;;
	--with) extra_allocs+=("${2:?--with needs NAME=LIB.so}"); shift ;;
	--with=*) extra_allocs+=("${1#*=}") ;;
	--callgrind) callgrind=1 ;;
	--update-docs) update_docs=1 ;;
	--no-build) build_hakmem=0 ;;
	-h|--help) usage 0 ;;
	*) echo "run.sh: unknown option '$1'" >&2; usage 2 ;;
	esac
	shift
done
case $rounds in ''|*[!0-9]*|0) echo "run.sh: --rounds needs a positive number" >&2; exit 2 ;; esac
threads_list=${threads_list//,/ }
for t in $threads_list; do
	case $t in ''|*[!0-9]*|0) echo "run.sh: --threads needs positive numbers, got '$t'" >&2; exit 2 ;; esac
done

say() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# Dependencies: installed with apt-get when running as root.

need_pkgs=()
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v gnuplot >/dev/null || need_pkgs+=(gnuplot-nox)
[ -x /usr/bin/python3 ] || need_pkgs+=(python3)
command -v "$CC" >/dev/null || need_pkgs+=(gcc libc6-dev)
[ $callgrind = 1 ] && ! command -v valgrind >/dev/null && need_pkgs+=(valgrind)
for p in libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4 libtbbmalloc2; do
	dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "==> installing ${need_pkgs[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q "${need_pkgs[@]}" >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null 2>&1 &&
			  apt-get install -y -q "${need_pkgs[@]}" >/dev/null; } ||
			say "warning: apt-get install ${need_pkgs[*]} failed"
	else
		say "warning: missing ${need_pkgs[*]} (run as root to install them)"
	fi
fi
[ -x /usr/bin/time ] || { say "run.sh: /usr/bin/time is required"; exit 1; }
[ -x /usr/bin/python3 ] || { say "run.sh: /usr/bin/python3 is required"; exit 1; }

# Shared object of a Debian package whose name matches a pattern.
pkg_lib() {
	local f
	f=$(dpkg -L "$1" 2>/dev/null | grep -E "$2" | head -n1)
	if [ -z "$f" ] && [ -e "$libdir/${3:-}" ]; then
		f=$libdir/$3
	fi
	printf '%s' "$f"
}

# ---------------------------------------------------------------------------
# Build the benchmark programs.

mkdir -p "$bindir"
say "==> building benchmark programs into ${bindir#"$srctree"/}/"
for src in "$benchsrc"/*.c; do
	prog=$(basename "$src" .c)
	if ! $CC -O2 -std=gnu11 -Wall -Wextra -pthread -o "$bindir/$prog" "$src"; then
		say "run.sh: building $prog failed"
		exit 1
	fi
done

# ---------------------------------------------------------------------------
# Allocators: name and LD_PRELOAD value (empty for the system malloc).

alloc_names=()
alloc_preload=()
add_alloc() {
	if [ -n "$alloc_filter" ] && [[ ",$alloc_filter," != *",$1,"* ]]; then
		return
	fi
	alloc_names+=("$1")
	alloc_preload+=("$2")
}

build_variant() {	# name target -> prints the .so path or nothing
	local name=$1 target=$2 out=$srctree/build/bench-$1
	local log=$srctree/build/bench-$name.log

	if [ $build_hakmem = 1 ]; then
		if [ ! -f "$srctree/Makefile" ]; then
			say "    hakmem-$name: no Makefile in the tree yet, skipping hakmem"
			return
		fi
		say "    hakmem-$name: make O=build/bench-$name $target all"
		if ! make -C "$srctree" O="$out" "$target" all >"$log" 2>&1; then
			say "    hakmem-$name: build FAILED, skipping (log: ${log#"$srctree"/})"
			tail -n 5 "$log" | sed 's/^/      | /' >&2
			return
		fi
	fi
	if [ -f "$out/libhakmem.so" ]; then
		printf '%s' "$out/libhakmem.so"
	else
		say "    hakmem-$name: $out/libhakmem.so not found, skipping"
	fi
}

say "==> allocators"
if [ -z "$alloc_filter" ] || [[ ",$alloc_filter," == *",hakmem-perf,"* ]]; then
	so=$(build_variant perf perf_defconfig)
	[ -n "$so" ] && add_alloc hakmem-perf "$so"
fi
if [ -z "$alloc_filter" ] || [[ ",$alloc_filter," == *",hakmem-default,"* ]]; then
	so=$(build_variant default defconfig)
	[ -n "$so" ] && add_alloc hakmem-default "$so"
fi
add_alloc glibc ""
peer() {	# name package regexp fallback
	local so
	so=$(pkg_lib "$2" "$3" "$4")
	if [ -n "$so" ] && [ -e "$so" ]; then
		add_alloc "$1" "$so"
	else
		say "    $1: package $2 not installed, skipping"
	fi
}
peer mimalloc libmimalloc2.0 '/libmimalloc\.so\.2$' libmimalloc.so.2
peer jemalloc libjemalloc2 '/libjemalloc\.so\.2$' libjemalloc.so.2
peer tcmalloc libtcmalloc-minimal4 '/libtcmalloc_minimal\.so\.4$' libtcmalloc_minimal.so.4
# tbbmalloc replaces malloc only through its proxy library.
peer tbbmalloc libtbbmalloc2 '/libtbbmalloc_proxy\.so\.2$' libtbbmalloc_proxy.so.2
for e in "${extra_allocs[@]}"; do
	so=${e#*=}
	[ -e "$so" ] || { say "run.sh: --with $e: no such file"; exit 2; }
	alloc_names+=("${e%%=*}")
	alloc_preload+=("$(cd "$(dirname "$so")" && pwd)/$(basename "$so")")
done
for i in "${!alloc_names[@]}"; do
	say "    ${alloc_names[$i]}: ${alloc_preload[$i]:-(system libc)}"
done
[ ${#alloc_names[@]} -gt 0 ] || { say "run.sh: no allocator selected"; exit 1; }

stamp=$(date -u +%Y%m%d-%H%M%S)
out=${BENCH_OUT:-$srctree/bench-results/$stamp}
mkdir -p "$out"
if [ "$(dirname "$out")" = "$srctree/bench-results" ]; then
	ln -sfn "$(basename "$out")" "$srctree/bench-results/latest"
fi
{
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "host=$(uname -srm)"
	echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
	echo "cpus=$(nproc)"
	# shellcheck disable=SC1091
	echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
	echo "commit=$(git -C "$srctree" rev-parse --short HEAD 2>/dev/null)"
	echo "rounds=$rounds"
	for i in "${!alloc_names[@]}"; do
		echo "alloc.${alloc_names[$i]}=${alloc_preload[$i]:-libc}"
	done
} >"$out/machine.txt"

report_args=(--results "$out" --srctree "$srctree")
[ $update_docs = 1 ] && report_args+=(--update-docs)

# ---------------------------------------------------------------------------
# Instruction-count mode.

if [ $callgrind = 1 ]; then
	command -v valgrind >/dev/null || { say "run.sh: valgrind is required for --callgrind"; exit 1; }
	cg_ops=200000
	csv=$out/callgrind.csv
	echo "allocator,max_size,ops,ir_loop_alloc,ir_loop_noop,ir_noop_fns,ir_per_pair" >"$csv"
	cg_run() {	# preload max_size ops mode(''|noop) toggle-fn... -> Ir collected
		local pre=$1 max=$2 ops=$3 mode=$4 f=$out/callgrind.out.tmp t toggles=()
		shift 4
		for t in "$@"; do toggles+=("--toggle-collect=$t"); done
		env LD_PRELOAD="$pre" valgrind --tool=callgrind "${toggles[@]}" \
			--callgrind-out-file="$f" \
			"$bindir/random-mixed" "$max" "$ops" 4096 42 ${mode:+"$mode"} \
			>/dev/null 2>"$f.log" ||
			{ say "    FAILED: LD_PRELOAD=$pre valgrind --tool=callgrind ${toggles[*]} $bindir/random-mixed $max $ops 4096 42 $mode"; return 1; }
		sed -n 's/^==[0-9]*== Collected : \([0-9]*\).*/\1/p' "$f.log" | tail -n1
		rm -f "$f" "$f.log"
	}
	say "==> callgrind: instructions per malloc+free pair, random-mixed, $cg_ops pairs"
	for max in 128 1024; do
		# The loop with no-op functions, and those functions alone (their
		# count per pair from a run with twice the pairs, which cancels
		# the fill and teardown calls): the allocator's count is
		# Ir(loop) - Ir(no-op loop) + Ir(no-op functions), everything from
		# the entry to the return of malloc and free.
		noop=$(cg_run "" "$max" $cg_ops noop bench_loop) || exit 1
		fn1=$(cg_run "" "$max" $cg_ops noop noop_malloc noop_free) || exit 1
		fn2=$(cg_run "" "$max" $((2 * cg_ops)) noop noop_malloc noop_free) || exit 1
		noopfn=$((fn2 - fn1))
		for i in "${!alloc_names[@]}"; do
			name=${alloc_names[$i]}
			say "    random-mixed-$max  $name ..."
			ir=$(cg_run "${alloc_preload[$i]}" "$max" $cg_ops "" bench_loop) || continue
			per=$(awk -v a="$ir" -v b="$noop" -v c="$noopfn" -v n=$cg_ops \
				'BEGIN { printf "%.1f", (a - b + c) / n }')
			echo "$name,$max,$cg_ops,$ir,$noop,$noopfn,$per" >>"$csv"
			say "      $per instructions/pair"
		done
	done
	/usr/bin/python3 "$benchsrc/report.py" "${report_args[@]}" --callgrind
	exit $?
fi

# ---------------------------------------------------------------------------
# The suite.  Each entry: name, threaded (1) or single-thread (0), command
# with @T@ for the thread count and @W:N@ for per-thread work N at 1 and 2
# threads, N * 2 / T past 2 (so 64 threads on 2 cores do the total work of
# 2 and a row stays about a second).  Every run takes ~0.2-1 s, so the
# default suite (16 rows x 7 allocators x 5 rounds) takes ~8 minutes on 2
# cores.
# producer-consumer-mid gives a producer 160,000 blocks: at 8,000 its runs
# had become 7-80 ms, a fifth to half of that thread start and first touch
# (benchmarks.md, random-mixed and producer-consumer at 16 and 64 threads).

suite=(
	"larson|1|larson 0.75 8 1000 5000 100 4141 @T@"
	"random-mixed-128|0|random-mixed 128 15000000 4096 42"
	"random-mixed-1024|0|random-mixed 1024 10000000 4096 42"
	"producer-consumer|1|producer-consumer @T@ @W:1500000@ 8 512 42"
	"producer-consumer-mid|1|producer-consumer @T@ @W:160000@ 8192 524288 42 1 1"
	"cache-scratch|1|cache-scratch @T@ @W:1000@ 8 40000"
	"thread-churn|1|thread-churn @T@ 8000 64 42"
	"mid-size|1|size-mix mid-size @T@ 1000000 1024 262144 256 42 0.75"
	"large-block|1|size-mix large-block @T@ 20000 65536 16777216 16 42 0.75"
	"realloc-chain|1|realloc-chain @T@ 2500000 8 1048576 42 0.75"
	"realloc-large|1|realloc-chain @T@ 1000000 4 33554432 42 0.75 10"
	"large-replace|1|large-replace @T@ 100000 16 5242880 26214400 42 1.5"
	"footprint|1|footprint @T@ 5 @W:200000@ 42"
	"size-chain|1|size-chain @T@ @W:1600@ 2000 0 42"
	"idle-rss|0|idle-rss 2 256 256 1000 42"
	"large-ws|0|large-ws 1 1024 10000000 42"
)
quick_set=",larson,random-mixed-128,producer-consumer,footprint,"

selected() {	# name
	local n=$1 o
	if [ -n "$only" ]; then
		for o in ${only//,/ }; do
			[[ $n == "$o"* ]] && return 0
		done
		return 1
	fi
	[ $quick = 0 ] || [[ $quick_set == *",$n,"* ]]
}

# Command of a suite entry at t threads: @T@ and @W:N@ substituted.
subst() {	# cmd t
	local c=${1//@T@/$2} w n
	while [[ $c =~ @W:([0-9]+)@ ]]; do
		w=${BASH_REMATCH[1]}
		n=$(( $2 > 2 ? w * 2 / $2 : w ))
		c=${c/"${BASH_REMATCH[0]}"/$n}
	done
	printf '%s' "$c"
}

jobs_list=()
for e in "${suite[@]}"; do
	IFS='|' read -r name threaded cmd <<<"$e"
	selected "$name" || continue
	if [ "$threaded" = 1 ]; then
		for t in $threads_list; do jobs_list+=("$name|$t|$(subst "$cmd" "$t")"); done
	else
		jobs_list+=("$name|1|$cmd")
	fi
done
[ ${#jobs_list[@]} -gt 0 ] || { say "run.sh: no benchmark matches '$only'"; exit 2; }

raw=$out/raw.csv
echo "bench,threads,allocator,round,status,ops_per_sec,seconds,maxrss_kb,rss_peak_kb,rss_end_kb" >"$raw"
: >"$out/failures.txt"
total=$(( ${#jobs_list[@]} * rounds * ${#alloc_names[@]} ))
n=0
t_start=$(date +%s)

say "==> running ${#jobs_list[@]} benchmarks x ${#alloc_names[@]} allocators x $rounds rounds = $total runs -> ${out#"$srctree"/}/"
tf=$(mktemp)
trap 'rm -f "$tf" "$tf.out" "$tf.err"' EXIT
jn=0
for j in "${jobs_list[@]}"; do
	IFS='|' read -r name t cmd <<<"$j"
	jn=$((jn + 1))
	for ((r = 1; r <= rounds; r++)); do
		# Round r of job jn starts one allocator later than round r - 1,
		# and each job one later than the last: the first run of a row
		# (the first at 2 threads after its 1-thread runs) read low in
		# the suites, and with a fixed order it was always
		# hakmem-perf's (Documentation/benchmarks.md, "The near-misses
		# of feb5302").
		for ((k = 0; k < ${#alloc_names[@]}; k++)); do
			i=$(( (k + jn + r - 2) % ${#alloc_names[@]} ))
			a=${alloc_names[$i]}
			pre=${alloc_preload[$i]}
			n=$((n + 1))
			read -r -a argv <<<"$cmd"
			argv[0]=$bindir/${argv[0]}
			: >"$tf"
			timeout -k 5 "$timeout_s" /usr/bin/time -f 'MAXRSS %M' -o "$tf" \
				env LD_PRELOAD="$pre" "${argv[@]}" >"$tf.out" 2>"$tf.err"
			rc=$?
			line=$(grep -m1 '^RESULT ' "$tf.out")
			maxrss=$(sed -n 's/^MAXRSS //p' "$tf" | tail -n1)
			if [ $rc -eq 0 ] && [ -n "$line" ]; then
				kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
				ops=$(kv ops_per_sec); secs=$(kv seconds)
				hwm=$(kv rss_peak_kb); end=$(kv rss_end_kb)
				status=ok
			else
				ops=""; secs=""; hwm=""; end=""
				if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
					status=timeout
				elif [ $rc -gt 128 ] && sig=$(kill -l $((rc - 128)) 2>/dev/null); then
					status=SIG$sig
				else
					status=exit$rc
				fi
				{
					echo "$a $name threads=$t round $r: $status"
					echo "  command: LD_PRELOAD=$pre ${argv[*]}"
					sed 's/^/  | /' "$tf.err" "$tf" | tail -n 8
				} >>"$out/failures.txt"
			fi
			echo "$name,$t,$a,$r,$status,$ops,$secs,${maxrss:-},$hwm,$end" >>"$raw"
			el=$(( $(date +%s) - t_start ))
			eta=$(( n > 0 ? el * (total - n) / n : 0 ))
			if [ "$status" = ok ]; then
				msg=$(awk -v o="$ops" -v m="${maxrss:-0}" 'BEGIN {
					u = ""; if (o >= 1e6) { o /= 1e6; u = "M" }
					else if (o >= 1e3) { o /= 1e3; u = "k" }
					printf "%9.3f %1sops/s  %8.1f MiB", o, u, m / 1024 }')
			else
				msg="    $status (see failures.txt)"
			fi
			printf '[%4d/%d %3ds eta %3ds] %-18s t=%s r%d %-15s %s\n' \
				"$n" "$total" "$el" "$eta" "$name" "$t" "$r" "$a" "$msg" >&2
		done
	done
done

say "==> done in $(( $(date +%s) - t_start ))s"
if [ -s "$out/failures.txt" ]; then
	say "==> FAILED runs (exact commands in ${out#"$srctree"/}/failures.txt):"
	sed 's/^/    /' "$out/failures.txt" >&2
fi
/usr/bin/python3 "$benchsrc/report.py" "${report_args[@]}"
exit
}
