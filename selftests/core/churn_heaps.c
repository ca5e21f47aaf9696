// SPDX-License-Identifier: MIT
/*
 * churn_heaps: short threads started by many threads at once adopt the
 * heaps of those that exited; the heaps made stay near the threads alive.
 *
 * P parent threads each start children one after another; a child
 * allocates 100 blocks of 16..1024 B, frees half and hands the other half
 * to its parent, which checks and frees them after the join (so every
 * exited child's heap is pooled with blocks out, and their frees mark the
 * pool for a scavenge at the next refill that needs pages). At most 2P + 1
 * threads hold a heap at once, so the heaps made must stay near that: a
 * scavenge that kept the pooled heaps to itself while it ran made each
 * thread starting meanwhile a new heap with a superslab of its own (33
 * threads at 16 parents: 29-75 heaps; 65 at 32: 54-165, 11 runs in 19
 * over this bound, against 43-55; lib/heap.c, scavenge_pool).
 *
 * Usage: churn_heaps [parents] [children per parent]  (default 32 150;
 * 16 60 with HAKMEM_SELFTEST_QUICK=1).
 */
#include <pthread.h>

#include "core_test.h"

#if CT_HAKMEM
# include <hakmem/hakmem.h>
#endif

#define HANDED	50
#define MAX_PARENTS	256

static unsigned long per_parent;
static unsigned long bad_blocks, create_fail;

static size_t size_for(unsigned long id, unsigned i)
{
	return 16 + (id * 131 + i * 37) % 1009;
}

static void *child(void *arg)
{
	unsigned long id = (unsigned long)(uintptr_t)arg;
	void *blk[2 * HANDED];
	void **out = malloc(HANDED * sizeof(*out));

	if (!out)
		abort();
	for (unsigned i = 0; i < 2 * HANDED; i++) {
		size_t n = size_for(id, i);

		blk[i] = malloc(n);
		if (!blk[i])
			abort();
		ct_fill(blk[i], n);
	}
	for (unsigned i = 0; i < HANDED; i++) {
		free(blk[2 * i]);
		out[i] = blk[2 * i + 1];
	}
	return out;
}

static void *parent(void *arg)
{
	unsigned long id = (unsigned long)(uintptr_t)arg, bad = 0, fail = 0;

	for (unsigned long k = 0; k < per_parent; k++) {
		unsigned long cid = id * per_parent + k;
		pthread_t t;
		void *r;
		void **v;

		if (pthread_create(&t, NULL, child, (void *)(uintptr_t)cid)) {
			fail++;
			continue;
		}
		pthread_join(t, &r);
		v = r;
		for (unsigned i = 0; i < HANDED; i++) {
			size_t n = size_for(cid, 2 * i + 1);

			if (ct_check(v[i], n) != n)
				bad++;
			free(v[i]);
		}
		free(v);
	}
	__atomic_fetch_add(&bad_blocks, bad, __ATOMIC_RELAXED);
	__atomic_fetch_add(&create_fail, fail, __ATOMIC_RELAXED);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long np = argc > 1 ? strtoul(argv[1], NULL, 0) : ct_quick() ? 16 : 32;
	pthread_t th[MAX_PARENTS];
	unsigned long made = 0;

	per_parent = argc > 2 ? strtoul(argv[2], NULL, 0) : ct_quick() ? 60 : 150;
	if (np < 1 || np > MAX_PARENTS)
		np = np < 1 ? 1 : MAX_PARENTS;
	tap_plan(CT_HAKMEM ? 3 : 2);
	tap_diag("%lu parents, %lu children each", np, per_parent);
	for (unsigned long i = 0; i < np; i++) {
		if (pthread_create(&th[made], NULL, parent, (void *)(uintptr_t)i))
			create_fail++;
		else
			made++;
	}
	for (unsigned long i = 0; i < made; i++)
		pthread_join(th[i], NULL);
	tap_ok(create_fail == 0, "%lu threads created (%lu pthread_create failures)",
	       np * (per_parent + 1), create_fail);
	tap_ok(bad_blocks == 0, "%lu blocks handed from exited children intact (%lu bad)",
	       np * per_parent * HANDED, bad_blocks);
#if CT_HAKMEM
	{
		struct hak_stats st;
		/* and one in flight per scavenge or hand-over */
		unsigned long live = 2 * np + 1;

		hak_stats_get(&st);
		unsigned long bound = live + live / 8 + 2;

		tap_ok(st.heaps <= bound,
		       "%zu heaps made for at most %lu threads at once (bound %lu)", st.heaps,
		       live, bound);
	}
#endif
	tap_finish();
}
