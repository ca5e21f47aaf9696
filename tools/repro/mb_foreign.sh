#!/bin/bash
# SPDX-License-Identifier: MIT
# The mimalloc-bench programs that need outside software, run from Debian's packages under
# LD_PRELOAD of each allocator, interleaved per round (Documentation/benchmarks.md,
# "mimalloc-bench workloads that need outside software").
#
#   mb_foreign.sh OUTDIR ROUND WORKLOAD...     WORKLOAD: z3 gs gsrender lua rocksdb redis
#
# Packages: z3 ghostscript lua5.4 rocksdb-tools redis-server redis-tools, and the peers.
# ALLOCS="name=lib.so ..." picks the allocators (default: the three hakmem builds under
# build/{def,perf,hard}, glibc, mimalloc, jemalloc, tcmalloc); one line per run is appended to
# OUTDIR/results.tsv: round, workload, allocator, wall, user, sys, peak RSS KiB, the program's
# own figure, md5 of its output (compare across allocators), stderr bytes, exit status.
# z3 reads Z3_INPUT (the suite's bench/z3/test1.smt2: not kept here); without it z3 is skipped.
# Why a shim for redis: Debian's redis-server links jemalloc, so "glibc" means a preload that
# hands malloc & co. to glibc's __libc_* entry points, and "jemalloc" means no preload.
set -u
out=$1 round=$2; shift 2
mkdir -p "$out/runs"
here=$(cd "$(dirname "$0")/../.." && pwd)
ld=/usr/lib/x86_64-linux-gnu
: "${ALLOCS:=def=$here/build/def/libhakmem.so perf=$here/build/perf/libhakmem.so
 hard=$here/build/hard/libhakmem.so glibc= mi=$ld/libmimalloc.so.2 je=$ld/libjemalloc.so.2
 tc=$ld/libtcmalloc_minimal.so.4}"
port=${PORT:-26391}

inputs() {
	[ -f "$out/large.pdf" ] || {
		# 1000 pages of text in seven fonts, Bezier paths and an RGB image every 4th page
		awk 'BEGIN { srand(42); split("slab heap page free list cache remote purge span bin refill", w)
			split("Times-Roman Helvetica Courier Times-Bold Helvetica-Oblique Palatino-Roman Bookman-Light", f)
			print "%!PS-Adobe-3.0"
			for (p = 1; p <= 1000; p++) {
				print "%%Page: " p " " p
				for (l = 0; l < 60; l++) {
					s = ""; n = 6 + int(rand() * 8)
					for (k = 0; k < n; k++) s = s " " w[1 + int(rand() * 11)]
					printf "/%s findfont %d scalefont setfont 40 %d moveto (%s) show\n", f[1 + int(rand() * 7)], 8 + int(rand() * 5), 780 - 12 * l, s
				}
				for (k = 0; k < 40; k++)
					printf "newpath %.1f %.1f moveto %.1f %.1f %.1f %.1f %.1f %.1f rcurveto %.2f %.2f %.2f setrgbcolor %s\n", 40 + rand() * 520, 40 + rand() * 720, rand() * 160 - 80, rand() * 160 - 80, rand() * 160 - 80, rand() * 160 - 80, rand() * 160 - 80, rand() * 160 - 80, rand(), rand(), rand(), k % 2 ? "fill" : "stroke"
				if (p % 4 == 0) {
					printf "gsave 300 300 translate 200 200 scale 64 64 8 [64 0 0 -64 0 64] {<"
					for (k = 0; k < 64 * 64 * 3; k++) printf "%02x", int(rand() * 256)
					print ">} false 3 colorimage grestore"
				}
				print "showpage"
			} }' > "$out/large.ps"
		ps2pdf "$out/large.ps" "$out/large.pdf"
	}
	[ -f "$out/trees.lua" ] || cat > "$out/trees.lua" <<'EOF'
-- binary trees (tables of 56 + 32 bytes), then strings, small tables and growing arrays
local function make(d) if d == 0 then return {} end d = d - 1 return { make(d), make(d) } end
local function check(t) if t[1] then return 1 + check(t[1]) + check(t[2]) end return 1 end
local N = tonumber(arg[1]) or 15
local long, sum = make(N), 0
for d = 4, N, 2 do
  local c = 0
  for i = 1, 1 << (N - d + 4) do c = c + check(make(d)) end
  sum = sum + c
  print(d, c)
end
local acc, h = {}, 0
for i = 1, 300000 do
  local s = string.rep(string.char(65 + i % 26), 1 + i % 200) .. tostring(i)
  acc[i % 5000 + 1] = s
  local t = { s, i, { i * 2 } }
  h = (h * 31 + #t[1] + t[3][1]) % 1000000007
end
local parts = {}
for i = 1, 200000 do parts[#parts + 1] = tostring(i * 7) end
print("long", check(long), "strings", h, #table.concat(parts, ","), sum)
EOF
	[ -f "$out/glibcshim.so" ] || {
		cat > "$out/glibcshim.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
void *malloc(size_t n) { return __libc_malloc(n); }
void free(void *p) { __libc_free(p); }
void *calloc(size_t a, size_t b) { return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { return __libc_memalign(a, n); }
int posix_memalign(void **r, size_t a, size_t n)
{ void *p = __libc_memalign(a, n); if (!p) return ENOMEM; *r = p; return 0; }
size_t malloc_usable_size(void *p)	/* glibc's own, not the linked jemalloc's */
{
	static size_t (*f)(void *);
	if (!f) f = (size_t (*)(void *))dlsym(dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD), "malloc_usable_size");
	return f(p);
}
EOF
		cc -O2 -shared -fPIC -o "$out/glibcshim.so" "$out/glibcshim.c" -ldl
	}
}

run() { # name lib workload
	local a=$1 lib=$2 wl=$3 f="$out/runs/$3-$1-$round" own=- rc pre db
	pre=${lib:+LD_PRELOAD=$lib}
	[ "$wl" = redis ] && case $a in glibc) pre=LD_PRELOAD=$out/glibcshim.so ;; je) pre= ;; esac
	local t=(/usr/bin/time -o "$f.time" -f "%e %U %S %M")
	case $wl in
	z3) [ -n "${Z3_INPUT:-}" ] || return 0
		env $pre "${t[@]}" z3 -smt2 "$Z3_INPUT" >"$f.out" 2>"$f.err"; rc=$? ;;
	gs) env $pre "${t[@]}" gs -dBATCH -dNODISPLAY "$out/large.pdf" >"$f.out" 2>"$f.err"; rc=$? ;;
	gsrender) # the same document rendered at 50 dpi: the pixels are the output to compare
		env $pre "${t[@]}" gs -q -dBATCH -dNOPAUSE -sDEVICE=ppmraw -r50 -o "$f.ppm" "$out/large.pdf" \
			>"$f.out" 2>"$f.err"; rc=$?
		md5sum <"$f.ppm" >>"$f.out"; rm -f "$f.ppm" ;;
	lua) env $pre "${t[@]}" lua5.4 "$out/trees.lua" 15 >"$f.out" 2>"$f.err"; rc=$? ;;
	rocksdb) db=/dev/shm/mb_foreign-db-$a; rm -rf "$db"
		env $pre "${t[@]}" db_bench --benchmarks=fillrandom --db="$db" --seed=42 >"$f.raw" 2>"$f.err"; rc=$?
		own=$(sed -n 's/^fillrandom.* \([0-9]*\) ops\/sec.*/\1/p' "$f.raw")
		ldb --db="$db" scan --hex | md5sum >"$f.out"	# the data written, read back without preload
		# keep what is not its progress meter or banner
		tr '\r' '\n' <"$f.err" | grep -v -e '^\.\.\. finished' -e '^ *$' -e '^Date:' \
			-e '^RocksDB:' -e '^CPU' >"$f.e2"; mv "$f.e2" "$f.err"
		rm -rf "$db" ;;
	redis) db=$out/redis-$a; rm -rf "$db"; mkdir -p "$db"
		env $pre "${t[@]}" redis-server --port "$port" --save '' --appendonly no --dir "$db" \
			--enable-debug-command yes >"$f.srv" 2>"$f.err" &
		for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
		redis-cli -p "$port" flushall >/dev/null
		redis-benchmark -p "$port" -r 1000000 -n 1000000 -q -P 16 lpush a 1 2 3 4 5 lrange a 1 5 >"$f.raw" 2>&1
		own=$(tr '\r' '\n' <"$f.raw" | sed -n 's/^[^:]*: \([0-9.]*\) requests per second.*/\1/p' | paste -sd/)
		{ redis-cli -p "$port" llen a; redis-cli -p "$port" debug digest; } >"$f.out"
		redis-cli -p "$port" shutdown nosave >/dev/null 2>&1; wait; rc=$?
		grep -v 'WARNING Memory overcommit' "$f.srv" | grep -iE 'warn|error|assert' >>"$f.err"
		rm -rf "$db" ;;
	esac
	read -r e u s m <"$f.time"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$wl" "$a" "$e" "$u" "$s" "$m" \
		"$own" "$(md5sum <"$f.out" | cut -c1-12)" "$(wc -c <"$f.err")" "$rc" >>"$out/results.tsv"
}

inputs
read -r -a all <<<"$(echo $ALLOCS)"
n=${#all[@]}
for wl in "$@"; do
	for ((i = 0; i < n; i++)); do	# the order rotated by one per round
		x=${all[(i + round) % n]}
		run "${x%%=*}" "${x#*=}" "$wl"
	done
done
