#!/bin/sh
# SPDX-License-Identifier: MIT
# runner: long (13-21 s of make check's defconfig run: started first, not last)
#
# python3 under LD_PRELOAD=$HAKMEM_LIB: an allocation-heavy script (dicts,
# lists, strings, sets, sorting, json, deletions that free in bulk) must
# print exactly what it prints on the system malloc, exit 0, and the
# preloaded interpreter must really run on hakmem.

dir=$(dirname "$0")
[ -f "$dir/preload_lib.sh" ] || dir="$SRCTREE/selftests/preload"
# shellcheck source=selftests/preload/preload_lib.sh
. "$dir/preload_lib.sh"

preload_setup
tap_plan 3

py=
for c in /usr/bin/python3 python3; do
	if command -v "$c" >/dev/null 2>&1; then
		py=$(command -v "$c")
		break
	fi
done
if [ -z "$py" ]; then
	tap_skip_rest "python3 is not installed"
fi

cat >"$workdir/alloc.py" <<'PY'
import hashlib, json, sys

def h(x):
    return hashlib.sha256(repr(x).encode()).hexdigest()[:16]

rng = 12345
def rand():
    global rng
    rng = (rng * 1103515245 + 12345) & 0x7fffffff
    return rng

# many small strings and dicts
d = {}
for i in range(200000):
    k = "key-%d-%x" % (i, rand() % 100000)
    d[k] = [i, str(i) * (i % 7), {"a": i % 13}]
print("dict", len(d), h(sorted(d)[:1000]))

# delete most of it, then regrow (bulk frees and reuse)
for k in list(d)[::3]:
    del d[k]
print("after delete", len(d))
big = [("x" * (rand() % 300)) + str(i) for i in range(150000)]
big.sort(key=lambda s: (len(s), s))
print("strings", len(big), h(big[::997]))

# lists of lists, sets, tuples
grid = [[(rand() % 1000, j) for j in range(50)] for i in range(2000)]
flat = sorted(set(v for row in grid for v in row))
print("grid", len(flat), h(flat[::101]))

# json round trip of a large nested object
obj = {"items": [{"id": i, "name": "n%d" % i, "tags": ["t%d" % (i % 17)] * (i % 5)}
                 for i in range(60000)]}
s = json.dumps(obj, sort_keys=True)
back = json.loads(s)
print("json", len(s), back == obj, hashlib.sha256(s.encode()).hexdigest()[:16])

# bytearrays and big joins (mid and large blocks)
chunks = [bytearray(rand() % 70000) for _ in range(400)]
total = sum(len(c) for c in chunks)
blob = b"".join(bytes(c[:100]) + str(len(c)).encode() for c in chunks)
print("bytes", total, hashlib.sha256(blob).hexdigest()[:16])
del chunks, blob, obj, back, grid, d
print("done")
PY

same_run "python3 allocation-heavy script runs under hakmem" \
	"python3 output identical with and without hakmem" \
	env PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 "$py" "$workdir/alloc.py"
stats_check python3 "$py" -c 'x = [str(i) for i in range(1000)]'
tap_finish
