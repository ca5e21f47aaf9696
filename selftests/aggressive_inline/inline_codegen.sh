#!/bin/bash
# SPDX-License-Identifier: MIT
#
# inline_codegen: the aggressive-inline box decides whether the malloc and
# free fast paths live inside the exported entry points. Disassemble
# lib/interpose.o of this build ($O) and check the fast path of `malloc` and
# `free` up to their first return:
#   box on:  no call or jump to __hak_alloc / __hak_free (inlined);
#   box off: the entry point reaches __hak_alloc / __hak_free out of line.
# Prints each entry point's size for the box's documentation.
set -u
obj="$O/lib/interpose.o"
conf="$O/.config"

echo "TAP version 13"
if ! command -v objdump >/dev/null || [ ! -f "$obj" ]; then
	echo "1..0 # SKIP objdump or $obj missing"
	exit 4
fi
if [ ! -f "$O/lib/interpose.o" ] || ! grep -q '^CONFIG_HAK_INTERPOSE=y' "$conf"; then
	echo "1..0 # SKIP built without the libc names (CONFIG_HAK_INTERPOSE)"
	exit 4
fi
on=0
grep -q '^CONFIG_HAK_AGGRESSIVE_INLINE=y' "$conf" && on=1
echo "1..4"

# Disassembly of symbol $1 (by address: aliases share it).
disasm() {
	local addr size
	read -r addr size < <(nm -S --defined-only "$obj" | awk -v s="$1" '$4 == s { print $1, $2 }')
	[ -n "$addr" ] || return
	objdump -d --no-show-raw-insn -r --start-address=$((16#$addr)) \
		--stop-address=$((16#$addr + 16#$size)) "$obj" | sed -n '/>:$/,$p' | tail -n +2
}

n=0
for fn in malloc free; do
	inner=__hak_alloc
	[ "$fn" = free ] && inner=__hak_free
	all=$(disasm "$fn")
	hit=$(printf '%s\n' "$all" | awk '{ print } /\tret/ { exit }')
	insns=$(printf '%s\n' "$hit" | grep -c '^ *[0-9a-f]*:')
	size=$(nm -S --defined-only "$obj" | awk -v s="$fn" '$4 == s { print $2 }')
	echo "# $fn: $insns instructions up to the first ret, entry point $((16#${size:-0})) bytes"
	n=$((n + 1))
	if [ $on = 1 ]; then
		if ! printf '%s\n' "$all" | grep -qE "(call|jmp).*$inner" && [ "$insns" -gt 3 ]; then
			echo "ok $n $fn: fast path inlined (no call to $inner)"
		else
			echo "not ok $n $fn: fast path not inlined"; printf '# %s\n' "$all"
		fi
	else
		if printf '%s\n' "$all" | grep -qE "(call|jmp).*$inner"; then
			echo "ok $n $fn: fast path out of line ($inner)"
		else
			echo "not ok $n $fn: no call to $inner"; printf '# %s\n' "$all"
		fi
	fi
	n=$((n + 1))
	if [ $on = 1 ]; then
		# The hit path runs straight to ret: no call on the way.
		if ! printf '%s\n' "$hit" | grep -q 'call'; then
			echo "ok $n $fn: no call before the first ret"
		else
			echo "not ok $n $fn: a call on the hit path"; printf '# %s\n' "$hit"
		fi
	else
		# Off: the entry point is a small stub around the call.
		if [ "$insns" -le 8 ]; then
			echo "ok $n $fn: entry point is a stub ($insns instructions to ret)"
		else
			echo "not ok $n $fn: entry point has $insns instructions"
		fi
	fi
done
exit 0
