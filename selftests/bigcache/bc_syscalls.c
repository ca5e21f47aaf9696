// SPDX-License-Identifier: MIT
/*
 * The syscall proof: a large-block churn (16 slots, log-uniform sizes
 * 64 KiB..16 MiB, as tools/bench's large-block) maps and unmaps far less
 * with the cache on. Counted with hak_stats large_maps/large_unmaps (the
 * large path's own mmap/munmap calls) plus the cache's evictions (its
 * munmaps); the same churn runs with the cache off (bound 0) and on (the
 * default bound).
 */
#include "bc_test.h"

#define SLOTS	16
#define OPS	3000

/* Requests up to this size are the L2.5 pool's, not large blocks. */
#ifdef CONFIG_HAK_L25_MAX_KIB
#define POOL_MAX	((size_t)CONFIG_HAK_L25_MAX_KIB << 10)
#else
#define POOL_MAX	0
#endif

struct counts {
	size_t maps, unmaps, large;
};

static struct counts churn(void)
{
	struct hak_stats a = bc_core_stats(), b;
	struct hak_bigcache_stats ca = bc_stats(), cb;
	uint64_t s = 42;
	void *slot[SLOTS] = { 0 };
	size_t i, large = 0;

	for (i = 0; i < OPS; i++) {
		size_t k = bc_rand(&s) % SLOTS;
		size_t n = bc_log_size(&s, 64u << 10, 16u << 20);

		large += n > POOL_MAX;
		free(slot[k]);
		slot[k] = malloc(n);
		((char *)slot[k])[0] = 1;
		((char *)slot[k])[n - 1] = 1;
	}
	for (i = 0; i < SLOTS; i++)
		free(slot[i]);
	b = bc_core_stats();
	cb = bc_stats();
	return (struct counts){
		b.large_maps - a.large_maps,
		b.large_unmaps - a.large_unmaps + cb.evictions - ca.evictions,
		large,
	};
}

int main(void)
{
	struct counts off, on;

	tap_plan(0);
	bc_set_max(0);
	off = churn();
	bc_set_max(HAK_BIGCACHE_DEFAULT_MAX);
	on = churn();
	tap_diag("%d ops: cache off %zu mmap + %zu munmap, on %zu mmap + %zu munmap (%zu hits)",
		 OPS, off.maps, off.unmaps, on.maps, on.unmaps, bc_stats().hits);
	tap_ok(off.maps >= off.large, "cache off: a mapping per large malloc (%zu for %zu)",
	       off.maps, off.large);
	tap_ok(on.maps * 3 < off.maps, "cache on: under a third of the mmaps (%zu vs %zu)",
	       on.maps, off.maps);
	tap_ok(on.unmaps * 3 < off.unmaps, "cache on: under a third of the munmaps (%zu vs %zu)",
	       on.unmaps, off.unmaps);
	tap_finish();
}
