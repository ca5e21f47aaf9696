// SPDX-License-Identifier: MIT
/*
 * remote_lift: past the cores, a refill takes a long list of free blocks
 * whole and lifts the bin's capacity for it (lib/heap.c, refill_limit,
 * bin_raise and bin_lower).
 *
 * With more threads live than CPUs, the default capacity of a class
 * shrinks (64 B with a 4 KiB budget: 64 blocks alone, 8 with 8 threads a
 * CPU, 16 with the adaptive box); a producer's
 * consumer then sends back a chain of NB blocks that does not fit the
 * bin. Popped link by link, that chain cost a refill per capacity / 2
 * blocks and a cache miss per block. Checked here:
 *   - the producer allocates NB blocks of 64 B, another thread frees them
 *     all (one remote chain), and the producer's next NB mallocs take at
 *     most 3 refills (without the lift: NB / 4 or NB / 8);
 *   - every block handed out is distinct and writable, and the freed ones
 *     come back (the chain was taken, not lost);
 *   - the lift ends at the class's next refill: fresh blocks then come
 *     the shrunk capacity's half a refill again, not the lifted one's;
 *   - a slab's free list longer than the unshrunk capacity (NB2 blocks of
 *     80 B, a class nobody used before, more than the 51 a thread holds
 *     unshrunk, within the lift of twice the budget: 102) goes over whole
 *     too: the chain is collected onto its slab's list by a refill of
 *     another class, and the next NB2 mallocs take at most 2 refills
 *     (popped link by link, a refill per half capacity: 5 before);
 *   - every block sent home was collected after a trim.
 * Skipped when the CPUs are too many to outnumber with helper threads;
 * the first check is skipped with the fail-fast box, whose checks walk
 * every list a refill takes (no whole takes, so no lift).
 */
#include <pthread.h>
#include <stdbool.h>
#include <hakmem/hakmem.h>
#include "core_test.h"

#define NB	64
#define NB2	80	/* of BS2: > 51 unshrunk, <= 102 lifted */
#define BS2	80
#define BS	64
#define BUDGET	"4096"	/* HAKMEM_TCACHE_BYTES: 64 blocks of 64 B unshrunk */
#define MAX_HELPERS	129

static void *blk[NB], *again[NB], *blk2[NB2];
static int n;
static unsigned nh;
static pthread_barrier_t hold;

static void *helper(void *arg)
{
	void *p = malloc(16);	/* attach a heap: one more thread live */

	(void)arg;
	if (!p)
		tap_bail("malloc failed");
	((volatile char *)p)[0] = 1;	/* keep the pair: the compiler drops it */
	free(p);
	pthread_barrier_wait(&hold);	/* helpers up */
	pthread_barrier_wait(&hold);	/* test done */
	return NULL;
}

struct batch {
	void **v;
	unsigned nb;
};

static void *freer(void *arg)
{
	const struct batch *b = arg;
	unsigned i;

	for (i = 0; i < b->nb; i++)
		free(b->v[i]);
	return NULL;		/* the exit sends the last run home */
}

/* nb blocks of bs bytes into v, written, then freed by another thread. */
static void made_then_freed_remote(void **v, unsigned nb, size_t bs)
{
	struct batch b = { v, nb };
	pthread_t t;
	unsigned i;

	for (i = 0; i < nb; i++) {
		v[i] = malloc(bs);
		if (!v[i])
			tap_bail("malloc failed");
		memset(v[i], 0x5a, bs);
	}
	if (pthread_create(&t, NULL, freer, &b))
		tap_bail("pthread_create: %s", strerror(errno));
	pthread_join(t, NULL);
}

/* The nb blocks of v are distinct, each still ending with its index. */
static bool distinct_intact(void **v, unsigned nb, size_t bs)
{
	unsigned i, j;

	for (i = 0; i < nb; i++) {
		if (((unsigned char *)v[i])[bs - 1] != (unsigned char)i)
			return false;
		for (j = i + 1; j < nb; j++)
			if (v[i] == v[j])
				return false;
	}
	return true;
}

/* Refills this thread took to malloc nb blocks of bs bytes into v. */
static unsigned long long refills_to_take(void **v, unsigned nb, size_t bs)
{
	struct hak_stats s0, s1;
	unsigned i;

	hak_stats_get(&s0);
	for (i = 0; i < nb; i++) {
		v[i] = malloc(bs);
		if (!v[i])
			tap_bail("malloc failed");
	}
	hak_stats_get(&s1);
	return (unsigned long long)(s1.refills - s0.refills);
}

/*
 * The producer: a thread attached after the helpers, so its capacities
 * are the shrunk ones (the main thread's were set when it ran alone).
 */
static void *producer(void *arg)
{
	unsigned long long r;
	unsigned i, j, found = 0;

	(void)arg;
	made_then_freed_remote(blk, NB, BS);

	r = refills_to_take(again, NB, BS);
	if (IS_ENABLED(CONFIG_HAK_FAILFAST))	/* checks walk every list taken */
		tap_skip("fail-fast box: a refill walks the lists it takes, no lift");
	else
		tap_ok(r <= 3,
		       "%u threads on %d CPUs: %u mallocs after a remote chain of %u took %llu refills",
		       nh + 1, n, NB, NB, r);

	for (i = 0; i < NB; i++) {
		memset(again[i], (int)i, BS);
		for (j = 0; j < NB; j++)
			if (again[i] == blk[j])
				found++;
	}
	tap_ok(distinct_intact(again, NB, BS) && found >= NB / 2,
	       "the blocks are distinct and intact, %u of the %u freed came back", found, NB);

	/*
	 * The lift ends at the class's next refill: fresh blocks (carved,
	 * nothing on the way home) come cap / 2 a refill again, the shrunk
	 * capacity's (8 or 4 a refill), not the lifted one's (32).
	 */
	{
		static void *more[4 * NB];

		r = refills_to_take(more, 4 * NB, BS);
		for (i = 0; i < 4 * NB; i++)
			free(more[i]);
		tap_ok(r > 4 * NB / 32 + 2,
		       "the lift ends at the next refill: %u fresh mallocs took %llu refills",
		       4 * NB, r);
	}

	for (i = 0; i < NB; i++)
		free(again[i]);
	return NULL;
}

/*
 * A second producer: its consumer's chain goes onto the slab's free list
 * (collected by a refill of another class), and the refill of this class
 * then finds a slab list longer than the unshrunk capacity.
 */
static void *producer2(void *arg)
{
	unsigned long long r;
	unsigned i;
	void *other;

	(void)arg;
	made_then_freed_remote(blk2, NB2, BS2);
	other = malloc(256);		/* another class's refill collects the chain */
	if (!other)
		tap_bail("malloc failed");
	((volatile char *)other)[0] = 1;

	r = refills_to_take(blk2, NB2, BS2);
	if (IS_ENABLED(CONFIG_HAK_FAILFAST))
		tap_skip("fail-fast box: a refill walks the lists it takes, no lift");
	else
		tap_ok(r <= 2, "%u mallocs after a slab list of about %u took %llu refills",
		       NB2, NB2, r);
	for (i = 0; i < NB2; i++)
		memset(blk2[i], (int)i, BS2);
	tap_ok(distinct_intact(blk2, NB2, BS2), "the %u blocks taken from the slab list are distinct and intact", NB2);
	for (i = 0; i < NB2; i++)
		free(blk2[i]);
	free(other);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t helpers[MAX_HELPERS], t;

	(void)argc;
	struct hak_stats st0, st;
	unsigned i;

	/*
	 * The budget is read once, at the first malloc (which may come before
	 * main): run again with it in the environment.
	 */
	if (!getenv("HAKMEM_TCACHE_BYTES") || strcmp(getenv("HAKMEM_TCACHE_BYTES"), BUDGET)) {
		setenv("HAKMEM_TCACHE_BYTES", BUDGET, 1);
		execv("/proc/self/exe", argv);
		tap_bail("execv: %s", strerror(errno));
	}
	n = proc_cpus();
	tap_plan(6);
	nh = 8u * (unsigned)n + 1;	/* 64 B: 64 * cpus / live <= 8 */
	if (nh > MAX_HELPERS)
		tap_skip_all("%d CPUs: too many to outnumber", n);
	hak_stats_get(&st0);
	if (pthread_barrier_init(&hold, NULL, nh + 1))
		tap_bail("barrier: %s", strerror(errno));
	for (i = 0; i < nh; i++)
		if (pthread_create(&helpers[i], NULL, helper, NULL))
			tap_bail("pthread_create: %s", strerror(errno));
	pthread_barrier_wait(&hold);

	if (pthread_create(&t, NULL, producer, NULL))
		tap_bail("pthread_create: %s", strerror(errno));
	pthread_join(t, NULL);
	if (pthread_create(&t, NULL, producer2, NULL))
		tap_bail("pthread_create: %s", strerror(errno));
	pthread_join(t, NULL);
	pthread_barrier_wait(&hold);
	for (i = 0; i < nh; i++)
		pthread_join(helpers[i], NULL);
	pthread_barrier_destroy(&hold);
	malloc_trim(0);
	malloc_trim(0);
	hak_stats_get(&st);
	tap_ok(st.remote_frees - st0.remote_frees == st.remote_collected - st0.remote_collected,
	       "every block sent home collected (%llu sent, %llu collected)",
	       (unsigned long long)(st.remote_frees - st0.remote_frees),
	       (unsigned long long)(st.remote_collected - st0.remote_collected));
	tap_finish();
}
