// SPDX-License-Identifier: MIT
/*
 * calloc of a large block grown from a shorter cached one: only the cached
 * pages, which hold old data, are cleared; the fresh rest reads as 0 and
 * must stay untouched. Found by gdk-pixbuf's pixbuf-jpeg under LD_PRELOAD:
 * a 39 MiB buffer freed (cached, resident), then a 12 GiB calloc (a JPEG
 * header's claimed size, never written) grew it where it lay and cleared
 * all 12 GiB: 12 GiB resident and 57 s, where glibc maps fresh pages and
 * touches none (50 MB, 0.8 s).
 */
#include <sys/mman.h>
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"
#include "boxes/hardened/hardened.h"

#define MIB		(1u << 20)
#define OLD		(4 * MIB)
#define NEW		(64 * MIB)

int main(void)
{
	size_t sh0, r;
	unsigned char *p, *q;
	volatile uintptr_t x;
	int room;

	tap_plan(0);
	bc_set_max(256 * MIB);
	__hak_bigcache_set_decay(0);
	__hak_bigcache_force_pressure(0);	/* a put must not purge it */
	__hak_large_whole_min = SIZE_MAX;	/* nor make it a whole mapping */
	p = bc_launder(malloc(OLD));
	memset(p, 0xa5, OLD);
	x = (uintptr_t)p;
	free(p);
	room = bc_range_free(x - (NEW - OLD), x) ||
	       (!hak_hd_guard_len() && bc_range_free(x + OLD, x + NEW));
	sh0 = bc_stats().shorter;
	q = bc_launder(calloc(1, NEW));
	if (!room || bc_stats().shorter != sh0 + 1) {
		tap_skip("no free address space next to the cached block (or it was not grown)");
	} else {
		r = bc_resident(q, NEW);
		tap_ok(r <= OLD / BC_PAGE,
		       "calloc(%u MiB) grown from a cached %u MiB block: %zu pages resident (at most %lu)",
		       NEW >> 20, OLD >> 20, r, OLD / BC_PAGE);
	}
	tap_ok(q && bc_nonzero_at(q, NEW) == NEW, "and it reads as 0, the cached part too");
	free(q);
	malloc_trim(0);
	tap_finish();
}
