// SPDX-License-Identifier: MIT
/*
 * Adaptive sizing, the memory bound: in a fresh thread, hot loops (1500
 * blocks allocated, then freed) on large classes, one class after another,
 * would grow each to 2048 blocks (64 MiB for 32 KiB blocks) without a
 * budget. The box must keep the sum of capacity x block size over all
 * classes, and so the bytes actually cached, within
 * max(CONFIG_HAK_ADAPTIVE_BUDGET_KIB, the 16-block floors), while the hot
 * classes still grow (into the capacity the classes gone idle give back).
 * The same holds in a second thread running at the same time.
 */
#include <string.h>
#include "boxes/adaptive_sizing/adaptive.h"
#include "adapt_test.h"

#define N	1500

static const size_t sizes[] = { 32768, 28672, 24576, 20480, 16384, 8192, 4096, 1024 };
#define NSIZES	(sizeof(sizes) / sizeof(sizes[0]))

struct seen {
	size_t max_cap_bytes, max_held_bytes;
	size_t budget;		/* the box's budget for the thread, at the end */
	int sane;
	uint32_t start_cap[NSIZES], peak_cap[NSIZES];
	void *blk[N];
};

static void check(struct seen *s, unsigned k)
{
	size_t cb = at_cap_bytes(), hb = at_held_bytes();
	uint32_t cap = __hak_tc.bins[__hak_class_of(sizes[k])].cap;

	if (cb > s->max_cap_bytes)
		s->max_cap_bytes = cb;
	if (hb > s->max_held_bytes)
		s->max_held_bytes = hb;
	if (!at_bins_sane())
		s->sane = 0;
	if (cap > s->peak_cap[k])
		s->peak_cap[k] = cap;
}

static void *worker(void *arg)
{
	struct seen *s = arg;
	unsigned k, r, i;

	hak_free(hak_malloc(16));	/* attach */
	s->sane = 1;
	for (k = 0; k < NSIZES; k++)
		s->start_cap[k] = __hak_tc.bins[__hak_class_of(sizes[k])].cap;
	check(s, 0);
	for (k = 0; k < NSIZES; k++) {
		for (r = 0; r < 3; r++) {
			for (i = 0; i < N; i++) {
				s->blk[i] = hak_malloc(sizes[k]);
				if (!s->blk[i])
					tap_bail("malloc(%zu) failed", sizes[k]);
				if (i % 64 == 0)
					check(s, k);
			}
			check(s, k);
			for (i = 0; i < N; i++) {
				hak_free(s->blk[i]);
				if (i % 64 == 0)
					check(s, k);
			}
			check(s, k);
		}
	}
	s->budget = hak_adapt_budget();
	return NULL;
}

static void report(const struct seen *s, const char *who)
{
	size_t bound = at_bound();
	unsigned k, grew = 0;

	tap_diag("%s: bound %zu, peak capacity %zu bytes, peak cached %zu bytes", who,
		 bound, s->max_cap_bytes, s->max_held_bytes);
	for (k = 0; k < NSIZES; k++) {
		tap_diag("%s: %zu B class: capacity %u -> peak %u", who, sizes[k],
			 s->start_cap[k], s->peak_cap[k]);
		if (s->peak_cap[k] > s->start_cap[k])
			grew++;
	}
	tap_ok(s->sane, "%s: every capacity in 16..2048, count <= cap, at every check", who);
	tap_ok(s->max_cap_bytes <= bound, "%s: sum of capacity x block size stays <= %zu",
	       who, bound);
	tap_ok(s->max_held_bytes <= bound, "%s: bytes cached stay <= %zu", who, bound);
	tap_ok(grew == NSIZES, "%s: every hot class still grew (%u of %zu)", who, grew,
	       (size_t)NSIZES);
	/* its budget: the whole but on a 1-CPU machine (3 threads) */
	tap_ok(s->max_cap_bytes + sizes[0] + 16 >= s->budget,
	       "%s: growth went up to the budget (%zu of %zu bytes)", who,
	       s->max_cap_bytes, s->budget);
}

int main(void)
{
	static struct seen a, b, c;
	pthread_t t1, t2;

	tap_plan(0);
	tap_diag("budget %zu bytes, floor-sum bound %zu bytes", AT_BUDGET, at_bound());
	at_run(worker, &a);
	report(&a, "one thread");

	if (pthread_create(&t1, NULL, worker, &b) || pthread_create(&t2, NULL, worker, &c) ||
	    pthread_join(t1, NULL) || pthread_join(t2, NULL))
		tap_bail("pthread_create/join failed");
	report(&b, "two threads, first");
	report(&c, "two threads, second");
	tap_finish();
}
