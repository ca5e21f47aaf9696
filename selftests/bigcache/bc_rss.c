// SPDX-License-Identifier: MIT
/*
 * BigCache and memory: a freed burst of large blocks stays cached (and
 * resident) up to the bound; under memory pressure (forced here) every
 * cached block is purged with madvise, the RSS falls and reused purged
 * blocks read as zero; malloc_trim gives everything back: the RSS falls to
 * near where it was before the burst.
 */
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"

#define NB	64

static size_t mib(size_t b)
{
	return b >> 20;
}

int main(void)
{
	size_t base, peak, cached, trimmed, n = 1u << 20, i, nz = 0;
	struct hak_bigcache_stats st;
	unsigned char *v[NB];

	tap_plan(0);
	/* Residency by bound and pressure only: no purging of idle blocks. */
	__hak_bigcache_set_decay(0);
	/* The pressure set here, not the machine's (MemAvailable under 1/16 of RAM) */
	__hak_bigcache_force_pressure(0);
	if (bc_page_up(bc_large_min()) > n)
		n = bc_page_up(bc_large_min());

	/* 1. Bound 2 * NB blocks: the whole burst stays cached and resident. */
	bc_set_max(2 * NB * n);
	base = bc_rss();
	for (i = 0; i < NB; i++) {
		v[i] = malloc(n);
		memset(v[i], 0x77, n);
	}
	peak = bc_rss();
	for (i = 0; i < NB; i++)
		free(v[i]);
	cached = bc_rss();
	st = bc_stats();
	/* hardened: merged neighbours take in the guard pages between them */
	tap_ok(st.cached_bytes >= NB * n &&
	       st.cached_bytes <= NB * (n + (IS_ENABLED(CONFIG_HAK_HARDENED) ? BC_PAGE : 0)) &&
	       cached + NB * n / 8 > peak,
	       "burst of %d x %zu KiB cached: RSS %zu -> %zu -> %zu MiB",
	       NB, n >> 10, mib(base), mib(peak), mib(cached));
	malloc_trim(0);
	trimmed = bc_rss();
	tap_ok(bc_stats().cached_bytes == 0 && trimmed < base + NB * n / 8,
	       "malloc_trim: RSS back to %zu MiB (base %zu)", mib(trimmed), mib(base));

	/* 2. Bound NB / 2 blocks, memory tight: the cache keeps nothing resident. */
	bc_set_max(NB / 2 * n);
	__hak_bigcache_force_pressure(1);
	base = bc_rss();
	for (i = 0; i < NB; i++) {
		v[i] = malloc(n);
		memset(v[i], 0x77, n);
	}
	for (i = 0; i < NB; i++)
		free(v[i]);
	cached = bc_rss();
	st = bc_stats();
	tap_ok(st.cached_bytes <= NB / 2 * n && st.resident_bytes == 0 &&
	       cached < base + NB / 8 * n,
	       "bound %zu MiB: %zu MiB cached, %zu MiB resident, RSS %zu -> %zu MiB",
	       mib(NB / 2 * n), mib(st.cached_bytes), mib(st.resident_bytes),
	       mib(base), mib(cached));
	tap_ok(st.purges > 0, "%zu blocks purged", st.purges);
	/* Purged blocks come back zeroed: calloc needs no memset, malloc sees 0. */
	for (i = 0; i < NB / 2; i++) {
		v[i] = calloc(1, n);
		for (size_t j = 0; j < n; j += 512)
			nz += v[i][j] != 0;
	}
	tap_ok(nz == 0, "calloc'ed reused blocks read as zero");
	__hak_bigcache_force_pressure(0);
	for (i = 0; i < NB / 2; i++)
		free(v[i]);
	malloc_trim(0);
	trimmed = bc_rss();
	tap_ok(trimmed < base + NB * n / 8, "malloc_trim: RSS %zu MiB (base %zu)",
	       mib(trimmed), mib(base));
	tap_finish();
}
