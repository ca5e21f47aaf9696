// SPDX-License-Identifier: MIT
/*
 * l25_rss: the pool gives memory back, and costs no system call in steady
 * state.
 *  - burst: 96 MiB of 128 KiB blocks, every page touched, then all freed:
 *    they stay resident within the delay (up to the shard's recent peak
 *    in use, so a program that takes them again faults nothing), RSS
 *    falls to within 16 MiB of the start at the allocator calls
 *    HAK_L25_HOLD delays later (the class was taken within as long: the
 *    re-take rule holds it that long), and malloc_trim gives back the rest and unmaps every region;
 *  - delay: blocks freed (by a thread that exits: its cache goes back)
 *    stay resident while other pool traffic runs within the purge
 *    delay, and are purged by the allocator calls after HAK_L25_HOLD
 *    delays (the re-take rule, as above), while
 *    the blocks in use meanwhile stay;
 *  - delay with cached traffic only: the same purge HAK_L25_HOLD delays later when
 *    every pool call after it is a thread-cache hit (no shard operation);
 *  - steady state: after a warm-up, 200,000 malloc/free pairs of random
 *    mid sizes (a fixed number of slots per class, random order) map and
 *    unmap nothing (region and OS-layer counters unchanged).
 *
 * "l25_rss loop N" runs only N pairs of the steady-state loop, no TAP:
 * l25_syscalls.sh counts its system calls with strace.
 */
#include <pthread.h>
#include "l25_test.h"
#include "../lib/coarse_sleep.h"

#define MiB		(1UL << 20)
#define BURST		(96 * MiB)
#define BURST_BLOCK	(128UL << 10)
#define SLOTS		64

static void *slot[SLOTS];
static uint64_t seed = 0x243f6a8885a308d3ULL;

/*
 * Slot k always holds a block of pool class k mod (number of classes), of
 * a random size in that class: a fixed demand per class, freed and
 * reallocated in random order, as a server reusing its buffers.
 */
static size_t slot_size(unsigned k)
{
	unsigned nclass = 0, c;
	size_t edge, step;

	while ((((size_t)(nclass & 3) + 5) << ((nclass >> 2) + 13)) <= L25_TEST_MAX)
		nclass++;
	c = k % nclass;
	step = (size_t)1 << ((c >> 2) + 13);
	edge = ((size_t)(c & 3) + 5) * step;
	return edge - lt_rand(&seed) % step;
}

/* One free + malloc in a random slot, touching every page of the block. */
static void churn(unsigned long pairs)
{
	for (unsigned long i = 0; i < pairs; i++) {
		unsigned k = (unsigned)(lt_rand(&seed) % SLOTS);
		size_t n = slot_size(k);
		char *p;

		free(slot[k]);
		p = malloc(lt_opaque(n));
		if (!p)
			abort();
		for (size_t off = 0; off < n; off += 4096)
			p[off] = (char)i;
		slot[k] = p;
	}
}

static void churn_end(void)
{
	for (unsigned k = 0; k < SLOTS; k++) {
		free(slot[k]);
		slot[k] = NULL;
	}
}

static void traffic(int rounds);

static void test_burst(void)
{
	static void *blk[BURST / BURST_BLOCK];
	struct hak_l25_stats st;
	long base, peak, freed, after, trimmed;
	size_t i, n = ARRAY_SIZE(blk);

	malloc_trim(0);
	base = proc_status_kib("VmRSS");
	for (i = 0; i < n; i++) {
		blk[i] = malloc(lt_opaque(BURST_BLOCK));
		if (!blk[i])
			abort();
		memset(blk[i], 1, BURST_BLOCK);
	}
	peak = proc_status_kib("VmRSS");
	for (i = 0; i < n; i++)
		free(blk[i]);
	freed = proc_status_kib("VmRSS");
	tap_ok(peak - base >= (long)(BURST / 1024) * 9 / 10,
	       "burst of %zu x 128 KiB: RSS %ld -> %ld KiB", n, base, peak);
	tap_ok(freed - base >= (long)(BURST / 1024) * 3 / 4,
	       "all freed: kept resident within the delay, up to the recent peak "
	       "(RSS %ld KiB, %ld above the start)", freed, freed - base);
	/* The hold later, the next allocator calls give them back. */
	tst_sleep_ms(CONFIG_HAK_PURGE_DELAY_MS * (HAK_L25_HOLD * 2 + 1) / 2 + 30);
	traffic(8);
	after = proc_status_kib("VmRSS");
	hak_l25_stats(&st);
	tap_ok(after - base <= 16 * 1024,
	       "the hold later: RSS %ld KiB (%ld above the start; pool keeps %zu KiB dirty, "
	       "%zu regions)", after, after - base, st.dirty_bytes >> 10, st.regions);
	malloc_trim(0);
	trimmed = proc_status_kib("VmRSS");
	hak_l25_stats(&st);
	tap_ok(trimmed - base <= 2 * 1024 && st.regions == 0 && st.dirty_bytes == 0,
	       "malloc_trim: RSS %ld KiB (%ld above the start), %zu regions left",
	       trimmed, trimmed - base, st.regions);
}

#define NIDLE	32	/* 3.5 MiB of 112 KiB blocks: below the size bound */

static void *free_idle(void *arg)
{
	void **p = arg;

	for (int i = 0; i < NIDLE; i++)
		free(p[i]);
	return NULL;
}

/* 16 blocks of 40 KiB at a time, twice what the thread cache holds. */
static void traffic(int rounds)
{
	for (int i = 0; i < rounds; i++) {
		void *q[16];
		int j;

		for (j = 0; j < 16; j++) {
			q[j] = malloc(lt_opaque(40000));
			*(volatile char *)q[j] = 1;
		}
		for (j = 0; j < 16; j++)
			free(q[j]);
	}
}

static void test_delay(void)
{
	const unsigned delay = CONFIG_HAK_PURGE_DELAY_MS;
	struct hak_l25_stats a, b, c;
	void *keep = malloc(lt_opaque(200000));
	void *p[NIDLE];
	pthread_t t;
	long r0, r1;
	double t0, busy;
	int i;

	malloc_trim(0);
	for (i = 0; i < NIDLE; i++) {
		p[i] = malloc(lt_opaque(100000));
		memset(p[i], 2, 100000);
	}
	/* Freed by a thread that exits: its cache goes back to the shard. */
	pthread_create(&t, NULL, free_idle, p);
	pthread_join(t, NULL);
	hak_l25_stats(&a);
	r0 = proc_status_kib("VmRSS");
	/* Traffic on other blocks within the delay purges nothing. */
	t0 = lt_now();
	traffic(2000);
	busy = lt_now() - t0;
	hak_l25_stats(&b);
	if (busy * 1000 < delay / 2)
		tap_ok(b.purged_bytes == a.purged_bytes,
		       "freed blocks stay resident within the delay (%.0f ms of traffic, "
		       "%zu KiB purged)", busy * 1000, (b.purged_bytes - a.purged_bytes) >> 10);
	else
		tap_skip("the traffic took %.0f ms, half the delay or more", busy * 1000);
	/* The hold later, the next allocator calls purge what stayed unused. */
	tst_sleep_ms(HAK_L25_HOLD * delay + delay / 2 + 30);
	traffic(8);
	hak_l25_stats(&c);
	r1 = proc_status_kib("VmRSS");
	tap_ok(a.dirty_bytes >= NIDLE * 100000 &&
	       c.purged_bytes - a.purged_bytes >= NIDLE * 100000 &&
	       c.dirty_bytes >= 4 * 40000,
	       "freed blocks left alone are purged after the hold, the hot ones stay: "
	       "dirty %zu -> %zu KiB, %zu KiB purged, RSS %ld -> %ld KiB", a.dirty_bytes >> 10,
	       c.dirty_bytes >> 10, (c.purged_bytes - a.purged_bytes) >> 10, r0, r1);
	free(keep);
}

/*
 * Blocks freed to the shard are purged the hold later even when all the
 * pool traffic after it is thread-cache hits (one block freed and taken
 * again): those skip the purge tick but one in 64, which must still run
 * the decay pass.
 */
static void test_delay_cached(void)
{
	const unsigned delay = CONFIG_HAK_PURGE_DELAY_MS;
	struct hak_l25_stats a, b, c;
	void *p[NIDLE], *q;
	int i;

	malloc_trim(0);
	for (i = 0; i < NIDLE; i++) {
		p[i] = malloc(lt_opaque(100000));
		memset(p[i], 2, 100000);
	}
	/* freed here: past the cache's bytes, into this thread's shard */
	for (i = 0; i < NIDLE; i++)
		free(p[i]);
	q = malloc(lt_opaque(40000));
	*(volatile char *)q = 1;
	free(q);
	hak_l25_stats(&a);
	tst_sleep_ms(HAK_L25_HOLD * delay + delay / 2 + 30);
	for (i = 0; i < 1000; i++) {
		q = malloc(lt_opaque(40000));
		*(volatile char *)q = 1;
		free(q);
	}
	hak_l25_stats(&b);
	tap_ok(b.allocs == a.allocs && b.frees == a.frees,
	       "1000 pairs after the hold all served by the thread cache "
	       "(%zu shard allocs, %zu shard frees)", b.allocs - a.allocs, b.frees - a.frees);
	hak_l25_stats(&c);
	tap_ok(a.dirty_bytes >= NIDLE / 2 * 100000 &&
	       c.purged_bytes - a.purged_bytes >= a.dirty_bytes,
	       "and they purge what was freed to the shard the hold before: "
	       "dirty %zu -> %zu KiB, %zu KiB purged", a.dirty_bytes >> 10,
	       c.dirty_bytes >> 10, (c.purged_bytes - a.purged_bytes) >> 10);
}

static void test_steady(void)
{
	struct hak_l25_stats a, b;
	struct hak_stats sa, sb;
	double t0;

	churn(20000);
	hak_l25_stats(&a);
	hak_stats_get(&sa);
	t0 = lt_now();
	churn(200000);
	hak_l25_stats(&b);
	hak_stats_get(&sb);
	tap_ok(b.region_maps == a.region_maps && b.region_unmaps == a.region_unmaps &&
	       sb.mapped_bytes == sa.mapped_bytes,
	       "steady state: 200000 mid-size pairs map/unmap no region "
	       "(%zu regions, mapped %zu KiB before and %zu after, %.2f s)",
	       b.regions, sa.mapped_bytes >> 10, sb.mapped_bytes >> 10, lt_now() - t0);
	tap_diag("madvise in that loop: %zu KiB purged", (b.purged_bytes - a.purged_bytes) >> 10);
	churn_end();
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "loop")) {
		churn(20000);
		churn(strtoul(argv[2], NULL, 0));
		churn_end();
		return 0;
	}
	tap_plan(0);
	test_burst();
	test_delay();
	test_delay_cached();
	test_steady();
	tap_finish();
}
