// SPDX-License-Identifier: MIT
/*
 * larson_sim: a Larson-style server simulation, 4 threads (or up to 64),
 * 20 rounds.
 *
 * Each lane owns a table of live blocks. In a round, one fresh thread
 * per lane replaces random entries of its table (free the old block,
 * allocate a new one of random size), then exits; the next round's threads
 * take the tables over shifted by one lane, so nearly every free is of a
 * block allocated by a thread that has already exited, on another lane.
 * This is the pattern that used to crash hakmem's ancestor in most 4-thread
 * runs. Every block is stamped from its address and size when allocated
 * and checked when freed; all 20 rounds must finish with zero failures,
 * and VmRSS must not keep growing through the second half of the rounds
 * (beyond the highest VmRSS of the first half).
 *
 * Usage: larson_sim [rounds] [ops-per-thread-per-round] [threads]
 * (default 20 250000 4; HAKMEM_SELFTEST_QUICK=1 keeps the 20 rounds with
 * 60000 ops). With more threads than cores (16, 64: tools/stress.sh -t)
 * the threads of a round are preempted in the middle of refills, remote
 * frees and heap adoption, and the 4 x 2000 slots are shared out among
 * the lanes so the live set, and the memory of a run, stay the same.
 */
#include <pthread.h>

#include "core_test.h"

#define MAX_LANES	64
#define ALL_SLOTS	8000	/* live blocks in all, shared out among lanes */

struct lane {
	void *blk[ALL_SLOTS];
	size_t sz[ALL_SLOTS];
};

static int nlanes = 4;			/* threads per round */
static unsigned nslots = ALL_SLOTS / 4;	/* slots per lane */

struct worker {
	struct lane *lane;
	unsigned long ops;
	uint64_t rng;
	unsigned long bad, nulls;
};

static struct lane lanes[MAX_LANES];

static uint64_t xs(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static inline uint64_t tagof(const void *p, size_t n)
{
	return ~((uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull) ^ n;
}

static void stamp(void *p, size_t n)
{
	unsigned char *c = p;
	uint64_t t = tagof(p, n);

	memcpy(c, &t, sizeof(t));
	for (size_t i = 8; i < n && i < 48; i++)
		c[i] = (unsigned char)(t >> (i % 8 * 8)) ^ (unsigned char)i;
	if (n > 48)
		c[n - 1] = (unsigned char)(t >> 3);
}

static int intact(const void *p, size_t n)
{
	const unsigned char *c = p;
	uint64_t t = tagof(p, n), got;

	memcpy(&got, c, sizeof(got));
	if (got != t || (n > 48 && c[n - 1] != (unsigned char)(t >> 3)))
		return 0;
	for (size_t i = 8; i < n && i < 48; i++)
		if (c[i] != ((unsigned char)(t >> (i % 8 * 8)) ^ (unsigned char)i))
			return 0;
	return 1;
}

static size_t rand_size(uint64_t *rng)
{
	uint64_t r = xs(rng);

	if (r % 64 == 0)
		return 8 + (r >> 16) % (32 * 1024);
	return 8 + (r >> 16) % 1017;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct lane *l = w->lane;

	for (unsigned long k = 0; k < w->ops; k++) {
		unsigned s = (unsigned)(xs(&w->rng) % nslots);
		size_t n = rand_size(&w->rng);
		void *p;

		if (l->blk[s]) {
			if (!intact(l->blk[s], l->sz[s]))
				w->bad++;
			free(l->blk[s]);
		}
		p = malloc(n);
		if (!p) {
			w->nulls++;
			l->blk[s] = NULL;
			continue;
		}
		stamp(p, n);
		l->blk[s] = p;
		l->sz[s] = n;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned rounds = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 20;
	unsigned long ops = argc > 2 ? strtoul(argv[2], NULL, 0) : ct_quick() ? 60000 : 250000;
	long nthreads = argc > 3 ? strtol(argv[3], NULL, 0) : 4;
	unsigned long total_bad = 0, total_nulls = 0, failed_rounds = 0, final_bad = 0;
	long rss_mid = 0, rss_end;
	uint64_t seed = 42;

	if (rounds < 2)
		rounds = 2;
	if (nthreads < 1 || nthreads > MAX_LANES)
		nthreads = nthreads < 1 ? 1 : MAX_LANES;
	nlanes = (int)nthreads;
	nslots = ALL_SLOTS / (unsigned)nlanes;
	tap_plan(4);
	tap_diag("%u rounds x %d threads x %lu replacements, %u-slot tables", rounds, nlanes, ops,
		 nslots);
	/* initial fill from the main thread: the first frees are remote too */
	for (int l = 0; l < nlanes; l++)
		for (unsigned s = 0; s < nslots; s++) {
			size_t n = rand_size(&seed);

			lanes[l].blk[s] = malloc(n);
			if (!lanes[l].blk[s])
				tap_bail("initial malloc failed");
			lanes[l].sz[s] = n;
			stamp(lanes[l].blk[s], n);
		}

	for (unsigned r = 0; r < rounds; r++) {
		pthread_t th[MAX_LANES];
		struct worker w[MAX_LANES];
		unsigned long bad = 0, nulls = 0;

		for (int i = 0; i < nlanes; i++) {
			/* thread i of round r takes over the table of lane i + r */
			w[i] = (struct worker){
				.lane = &lanes[(i + r) % nlanes],
				.ops = ops,
				.rng = 0x51ed2701ull * (r + 1) + (uint64_t)i * 7919 + 1,
			};
			if (pthread_create(&th[i], NULL, work, &w[i]))
				tap_bail("pthread_create failed in round %u", r);
		}
		for (int i = 0; i < nlanes; i++) {
			pthread_join(th[i], NULL);
			bad += w[i].bad;
			nulls += w[i].nulls;
		}
		if (bad || nulls) {
			failed_rounds++;
			tap_diag("round %u: %lu damaged blocks, %lu NULL returns", r, bad, nulls);
		}
		total_bad += bad;
		total_nulls += nulls;
		if (r < rounds / 2) {
			long rss = ct_retained_kib();

			if (rss > rss_mid)
				rss_mid = rss;
		}
	}
	rss_end = ct_retained_kib();

	for (int l = 0; l < nlanes; l++)
		for (unsigned s = 0; s < nslots; s++) {
			if (lanes[l].blk[s] && !intact(lanes[l].blk[s], lanes[l].sz[s]))
				final_bad++;
			free(lanes[l].blk[s]);
		}

	tap_ok(failed_rounds == 0, "%u of %u rounds ran with zero failures", rounds - (unsigned)failed_rounds,
	       rounds);
	tap_ok(total_bad == 0 && total_nulls == 0,
	       "%lu block replacements: %lu damaged blocks, %lu NULL returns",
	       (unsigned long)rounds * nlanes * ops, total_bad, total_nulls);
	tap_ok(final_bad == 0, "all %u surviving blocks intact and freed by the main thread",
	       (unsigned)nlanes * nslots);
	/*
	 * Slack: 25% + 8 MiB, and 512 KiB per lane: each of the lanes' heaps
	 * (pooled and adopted round after round) may come to hold a partly
	 * used slab of every class, which takes more rounds to reach with
	 * 64 lanes than with 4 (a plateau, not growth).
	 */
	tap_ok(rss_end <= rss_mid + rss_mid / 4 + 8192 + 512L * nlanes,
	       "VmRSS peak of rounds 1-%u %ld KiB, after round %u %ld KiB (no growth in the second half)",
	       rounds / 2, rss_mid, rounds, rss_end);
	tap_finish();
}
