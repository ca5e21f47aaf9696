// SPDX-License-Identifier: MIT
/*
 * BigCache under concurrent use: 4 threads free ~34,000 large blocks into
 * the cache at once (the hash table grows 256 -> 65,536 buckets; merging of
 * neighbours is off so that each stays a block of its own), take
 * them back (it shrinks to 256), no block is handed out twice; then 2
 * threads churn against a small bound while a third samples the
 * statistics: the cached bytes never exceed the bound, and blocks were
 * evicted.
 */
#include <pthread.h>
#include "bc_test.h"
#include "boxes/bigcache/bc_internal.h"

#define NTHREAD		4
#define NBLOCK		34000		/* > 32,768: the table reaches 2^16 */
#define PER		(NBLOCK / NTHREAD)

static size_t lmin;
static pthread_barrier_t bar;
static size_t errors[NTHREAD];

static uint64_t tag(unsigned t, size_t i, unsigned round)
{
	return ((uint64_t)round << 48) ^ ((uint64_t)t << 32) ^ i ^ 0x5bd1e995ULL;
}

static void *resize_worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t **v = calloc(PER, sizeof(*v));
	size_t i;

	for (i = 0; i < PER; i++) {
		v[i] = malloc(lmin + (i % 4) * BC_PAGE);
		v[i][0] = tag(t, i, 1);
	}
	pthread_barrier_wait(&bar);
	for (i = 0; i < PER; i++) {
		if (v[i][0] != tag(t, i, 1))
			errors[t]++;
		free(v[i]);
	}
	pthread_barrier_wait(&bar);	/* main looks at the grown table */
	pthread_barrier_wait(&bar);
	for (i = 0; i < PER; i++) {
		v[i] = malloc(lmin + ((i + 1) % 4) * BC_PAGE);
		v[i][0] = tag(t, i, 2);
		/* Some churn while the table shrinks under the others. */
		if (i % 16 == 15) {
			free(v[i - 1]);
			v[i - 1] = malloc(lmin + BC_PAGE);
			v[i - 1][0] = tag(t, i - 1, 2);
		}
	}
	pthread_barrier_wait(&bar);
	for (i = 0; i < PER; i++)
		if (v[i][0] != tag(t, i, 2))
			errors[t]++;
	pthread_barrier_wait(&bar);	/* main looks at the shrunk table */
	for (i = 0; i < PER; i++)
		free(v[i]);
	free(v);
	return NULL;
}

static void test_resize(void)
{
	pthread_t th[NTHREAD];
	struct hak_bigcache_stats st;
	size_t err = 0, hits0;
	unsigned t;

	/*
	 * Room for every block, none purged: a bound far above them, no decay
	 * (a block being purged is off the table: a take would miss it).
	 */
	bc_set_max((size_t)64 << 30);
	__hak_bigcache_set_decay(0);
	__hak_bigcache_set_merge(false);
	pthread_barrier_init(&bar, NULL, NTHREAD + 1);
	for (t = 0; t < NTHREAD; t++)
		pthread_create(&th[t], NULL, resize_worker, (void *)(uintptr_t)t);
	pthread_barrier_wait(&bar);
	pthread_barrier_wait(&bar);
	st = bc_stats();
	tap_ok(st.buckets == 65536 && st.cached_blocks == NBLOCK,
	       "%d blocks freed by %d threads: %zu cached, %zu buckets",
	       NBLOCK, NTHREAD, st.cached_blocks, st.buckets);
	tap_ok(st.grows >= 8, "the table grew %zu times", st.grows);
	hits0 = st.hits;
	pthread_barrier_wait(&bar);
	pthread_barrier_wait(&bar);	/* all taken back */
	st = bc_stats();
	pthread_barrier_wait(&bar);	/* tags checked */
	for (t = 0; t < NTHREAD; t++)
		err += errors[t];
	tap_ok(err == 0, "no block lost or handed out twice (%zu bad tags)", err);
	tap_ok(st.hits - hits0 >= NBLOCK, "%zu hits for %d blocks cached",
	       st.hits - hits0, NBLOCK);
	tap_ok(st.buckets == 256 && st.shrinks >= 8,
	       "taken back: %zu blocks cached, %zu buckets, %zu shrinks",
	       st.cached_blocks, st.buckets, st.shrinks);
	for (t = 0; t < NTHREAD; t++)
		pthread_join(th[t], NULL);
	st = bc_stats();
	tap_ok(st.peak_buckets == 65536, "peak %zu buckets", st.peak_buckets);
	malloc_trim(0);
	st = bc_stats();
	tap_ok(st.cached_bytes == 0 && st.buckets == 256, "trim: %zu bytes, %zu buckets",
	       st.cached_bytes, st.buckets);
	__hak_bigcache_set_merge(true);
	__hak_bigcache_set_decay(CONFIG_HAK_PURGE_DELAY_MS);
}

static size_t bound, hi;
static int stop;
static size_t over, over_resident, samples;

static void *churn_worker(void *arg)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL * ((uintptr_t)arg + 1);
	void *slot[8] = { 0 };
	size_t i;

	for (i = 0; i < 3000; i++) {
		size_t k = bc_rand(&s) % 8, n = bc_log_size(&s, lmin, hi);

		free(slot[k]);
		slot[k] = malloc(n);
		memset(slot[k], 1, BC_PAGE);
		((char *)slot[k])[n - 1] = 1;
	}
	for (i = 0; i < 8; i++)
		free(slot[i]);
	return NULL;
}

static void *monitor(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		struct hak_bigcache_stats st = bc_stats();

		samples++;
		over += st.cached_bytes > bound;
		over_resident += st.resident_bytes > st.cached_bytes;
		usleep(50);
	}
	return NULL;
}

static void test_bound(void)
{
	pthread_t w[2], m;
	struct hak_bigcache_stats st;

	hi = lmin * 8 > (2u << 20) ? lmin * 8 : (2u << 20);
	bound = 4 * hi;
	bc_set_max(bound);
	pthread_create(&m, NULL, monitor, NULL);
	pthread_create(&w[0], NULL, churn_worker, (void *)0);
	pthread_create(&w[1], NULL, churn_worker, (void *)1);
	pthread_join(w[0], NULL);
	pthread_join(w[1], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(m, NULL);
	st = bc_stats();
	tap_ok(over == 0 && st.peak_bytes <= bound,
	       "bound %zu never exceeded: peak %zu, %zu of %zu samples over",
	       bound, st.peak_bytes, over, samples);
	tap_ok(over_resident == 0, "resident bytes never above cached bytes (%zu samples over)",
	       over_resident);
	tap_ok(st.evictions > 0 && st.hits > 0,
	       "churn: %zu hits, %zu misses, %zu evictions, %zu purges",
	       st.hits, st.misses, st.evictions, st.purges);
}

int main(void)
{
	tap_plan(0);
	lmin = bc_page_up(bc_large_min());
	if (IS_ENABLED(CONFIG_HAK_HARDENED))
		tap_skip("table growth to 65,536 buckets: with the hardened box only blocks "
			 "with a guard page are cached, and guards stop at vm.max_map_count / 4");
	else
		test_resize();
	test_bound();
	tap_finish();
}
