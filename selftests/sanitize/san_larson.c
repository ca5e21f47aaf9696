// SPDX-License-Identifier: MIT
/*
 * san_larson: Larson-style churn through the hak_* API, 4 threads per
 * round (HAKMEM_SAN_THREADS=T: T), fresh threads every round. Each lane
 * owns a table of live blocks; round r's thread i works on lane
 * (i + r) % T, so nearly every free is of
 * a block allocated by a thread that has exited (its heap pooled, then
 * adopted by a new thread). Replacements use malloc, calloc and realloc
 * over tiny, small, mid and large sizes; every block is checked against
 * its address-derived pattern before it is freed or resized.
 *
 * Usage: san_larson [scale]   (replacements per thread per round =
 * 4000 x scale)
 */
#include <pthread.h>

#include "san_test.h"

#define LANES	SAN_MAX_THREADS	/* the most; san_threads() says how many run */
#define SLOTS	500
#define ROUNDS	4

struct lane {
	void *p[SLOTS];
	size_t n[SLOTS];
};

struct worker {
	struct lane *lane;
	unsigned long ops;
	uint64_t rng;
	unsigned long bad, nulls;
};

static struct lane lanes[LANES];

static void *work(void *arg)
{
	struct worker *w = arg;
	struct lane *l = w->lane;

	for (unsigned long k = 0; k < w->ops; k++) {
		uint64_t r = san_rand(&w->rng);
		unsigned s = (unsigned)(r % SLOTS);
		size_t n = san_size(&w->rng);
		uintptr_t old;
		void *p;

		if (l->p[s] && !san_check(l->p[s], l->n[s]))
			w->bad++;
		switch ((r >> 32) % 8) {
		case 0:		/* realloc keeps the common prefix */
			if (!l->p[s])
				goto fresh;
			old = (uintptr_t)l->p[s];
			p = hak_realloc(l->p[s], n);
			if (!p) {
				w->nulls++;
				continue;
			}
			{
				size_t keep = n < l->n[s] ? n : l->n[s];
				unsigned char *c = p;
				int ok = 1;

				/* the old stamp was made for the old address */
				for (size_t i = 0; i < keep && i < SAN_EDGE; i++)
					if (c[i] != san_pat_at(old, l->n[s], i))
						ok = 0;
				if (!ok)
					w->bad++;
			}
			break;
		case 1:
			hak_free(l->p[s]);
			p = hak_calloc(1, n);
			if (p && (((unsigned char *)p)[0] || ((unsigned char *)p)[n - 1]))
				w->bad++;
			break;
		default:
fresh:
			hak_free(l->p[s]);
			p = hak_malloc(n);
			break;
		}
		l->p[s] = p;
		if (!p) {
			w->nulls++;
			continue;
		}
		san_fill(p, n);
		l->n[s] = n;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long ops = 4000 * san_scale(argc, argv), bad = 0, nulls = 0, final_bad = 0;
	unsigned nthr = san_threads(4);
	struct hak_stats st0, st;

	tap_plan(3);
	tap_diag("%d rounds x %u threads x %lu replacements", ROUNDS, nthr, ops);
	/* interposed, the C library's (and a sanitizer runtime's) blocks count too */
	hak_stats_get(&st0);
	for (unsigned r = 0; r < ROUNDS; r++) {
		pthread_t th[LANES];
		struct worker w[LANES];

		for (unsigned i = 0; i < nthr; i++) {
			w[i] = (struct worker){ .lane = &lanes[(i + r) % nthr], .ops = ops,
						.rng = 0x2545f4914f6cdd1dull * (r + 1) + i * 7919 + 1 };
			if (pthread_create(&th[i], NULL, work, &w[i]))
				tap_bail("pthread_create failed");
		}
		for (unsigned i = 0; i < nthr; i++) {
			pthread_join(th[i], NULL);
			bad += w[i].bad;
			nulls += w[i].nulls;
		}
	}
	for (unsigned l = 0; l < nthr; l++)
		for (unsigned s = 0; s < SLOTS; s++) {
			if (lanes[l].p[s] && !san_check(lanes[l].p[s], lanes[l].n[s]))
				final_bad++;
			hak_free(lanes[l].p[s]);
		}
	hak_malloc_trim(0);
	hak_stats_get(&st);
	tap_ok(bad == 0 && nulls == 0, "%lu replacements: %lu damaged, %lu NULL",
	       (unsigned long)ROUNDS * nthr * ops, bad, nulls);
	tap_ok(final_bad == 0, "all surviving blocks intact, freed by the main thread");
	tap_ok(st.large_blocks == st0.large_blocks,
	       "no large block left after freeing all (%zu before, %zu after)",
	       st0.large_blocks, st.large_blocks);
	tap_finish();
}
