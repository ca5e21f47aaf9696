// SPDX-License-Identifier: MIT
/*
 * arch/<ARCH>/include/asm: every operation on 1, 2, 4 and 8 byte objects
 * and pointers in one thread, then the ones that synchronise under two
 * threads: fetch_add and cmpxchg counters, an xchg spinlock guarding a
 * plain counter, release/acquire message passing, and the store-buffer
 * litmus test that only arch_smp_mb() makes pass on x86.
 */
#include <hak/compiler.h>
#include <asm/atomic.h>
#include <asm/prefetch.h>
#include <asm/processor.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "tap.h"

#define ITERS		200000UL
#define MP_ROUNDS	100000UL
#define SB_ROUNDS	200000UL

/* ---------------------------------------------------------------- one thread */

#define CHECK_SIZE(type, a, b)						\
do {									\
	type __o = (a);							\
	int __ok = 1;							\
	arch_store_relaxed(&__o, (type)(a));				\
	__ok &= arch_load_relaxed(&__o) == (type)(a);			\
	arch_store_release(&__o, (type)(b));				\
	__ok &= arch_load_acquire(&__o) == (type)(b);			\
	__ok &= arch_xchg(&__o, (type)(a)) == (type)(b);		\
	__ok &= __o == (type)(a);					\
	__ok &= arch_cmpxchg(&__o, (type)(b), (type)(b)) == (type)(a);	\
	__ok &= __o == (type)(a);	/* failed: unchanged */		\
	__ok &= arch_cmpxchg(&__o, (type)(a), (type)(b)) == (type)(a);	\
	__ok &= __o == (type)(b);	/* succeeded */			\
	__o = (type)(a);						\
	__ok &= arch_fetch_add(&__o, (type)3) == (type)(a);		\
	__ok &= __o == (type)((type)(a) + 3);				\
	__ok &= arch_fetch_add(&__o, (type)-3) == (type)((type)(a) + 3); \
	__ok &= __o == (type)(a);					\
	tap_ok(__ok, "single thread: %zu-byte %s", sizeof(type), #type); \
} while (0)

static void single_thread(void)
{
	static int x, y;
	int *p = &x;

	CHECK_SIZE(uint8_t, 0xf0, 0x0f);
	CHECK_SIZE(uint16_t, 0xfff0, 0x1234);
	CHECK_SIZE(uint32_t, 0xfffffff0u, 0x12345678u);
	CHECK_SIZE(uint64_t, 0xfffffffffffffff0ull, 0x123456789abcdef0ull);
	/* wrap-around of fetch_add on a narrow type */
	{
		uint8_t b = 0xff;

		tap_ok(arch_fetch_add(&b, 1) == 0xff && b == 0,
		       "fetch_add wraps a uint8_t");
	}
	tap_ok(arch_xchg(&p, &y) == &x && p == &y &&
	       arch_cmpxchg(&p, &y, &x) == &y && p == &x &&
	       arch_load_acquire(&p) == &x,
	       "pointers: xchg, cmpxchg, load_acquire");

	arch_prefetch(&x);
	arch_prefetchw(&y);
	arch_prefetch(NULL);		/* hints never fault */
	arch_cpu_relax();
	arch_smp_mb();
	tap_ok(1, "prefetch, prefetchw, cpu_relax, smp_mb run");
	tap_ok(ARCH_CACHE_LINE >= 32 && (ARCH_CACHE_LINE & (ARCH_CACHE_LINE - 1)) == 0,
	       "ARCH_CACHE_LINE %d is a power of two", ARCH_CACHE_LINE);
	tap_ok(strcmp(ARCH_NAME, CONFIG_HAK_ARCH) == 0,
	       "ARCH_NAME \"%s\" matches CONFIG_HAK_ARCH \"%s\"", ARCH_NAME, CONFIG_HAK_ARCH);
}

/* ---------------------------------------------------------------- two threads */

/*
 * The message-passing and store-buffer tests hand over between the two
 * threads every round: when they share one CPU (taskset, a cpuset, or a
 * loaded machine) each handover waits for the scheduler, and on a loaded
 * single CPU the full counts took past the runner's 300 s. Each test
 * stops after PAIR_MS of wall time (its leader tells the other through
 * the variable that it waits on, set to STOP) and checks the rounds run;
 * on two free CPUs every round runs in well under a second.
 */
#define PAIR_MS		20000UL
#define STOP		(~0UL)

static unsigned long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000 + (unsigned long)ts.tv_nsec / 1000000;
}

/* Spin until *p >= v, yielding now and then: on a busy 2-core box the
 * other thread may be off the CPU. */
static void wait_for(unsigned long *p, unsigned long v)
{
	unsigned int spins = 0;

	while (arch_load_acquire(p) < v) {
		arch_cpu_relax();
		if (++spins > 1000) {	/* the other thread may be preempted */
			spins = 0;
			sched_yield();
		}
	}
}


static struct {
	unsigned long add __aligned(ARCH_CACHE_LINE);
	unsigned long cas __aligned(ARCH_CACHE_LINE);
	unsigned int lock __aligned(ARCH_CACHE_LINE);
	unsigned long locked;		/* plain, guarded by lock */
	uint32_t narrow __aligned(ARCH_CACHE_LINE);
	unsigned long start __aligned(ARCH_CACHE_LINE);
} shared;

/*
 * The holder may be off the CPU (one CPU, or a loaded machine): spinning
 * on until the scheduler preempts the waiter cost a whole time slice per
 * such wait.
 */
static void spin_lock(unsigned int *l)
{
	unsigned int spins = 0;

	while (arch_xchg(l, 1u))
		while (arch_load_relaxed(l)) {
			arch_cpu_relax();
			if (++spins > 1000) {
				spins = 0;
				sched_yield();
			}
		}
}

static void spin_unlock(unsigned int *l)
{
	arch_store_release(l, 0u);
}

static void *counters(void *arg)
{
	unsigned long i;

	(void)arg;
	arch_fetch_add(&shared.start, 1UL);
	wait_for(&shared.start, 2);
	for (i = 0; i < ITERS; i++) {
		unsigned long seen, old;

		arch_fetch_add(&shared.add, 1UL);
		arch_fetch_add(&shared.narrow, 1u);

		old = arch_load_relaxed(&shared.cas);
		while ((seen = arch_cmpxchg(&shared.cas, old, old + 1)) != old)
			old = seen;

		spin_lock(&shared.lock);
		shared.locked++;
		spin_unlock(&shared.lock);
	}
	return NULL;
}

/* Message passing: data written before a release store is seen after the
 * acquire load that reads it. */
static struct {
	unsigned long data[4] __aligned(ARCH_CACHE_LINE);
	unsigned long seq __aligned(ARCH_CACHE_LINE);
	unsigned long ack __aligned(ARCH_CACHE_LINE);
	unsigned long errors;
	unsigned long rounds;		/* run by the producer */
} mp;

static void *mp_producer(void *arg)
{
	unsigned long r;
	int k;

	unsigned long end = now_ms() + PAIR_MS;

	(void)arg;
	for (r = 1; r <= MP_ROUNDS; r++) {
		wait_for(&mp.ack, r - 1);
		if ((r & 255) == 0 && now_ms() > end) {
			arch_store_release(&mp.seq, STOP);
			break;
		}
		for (k = 0; k < 4; k++)
			arch_store_relaxed(&mp.data[k], r * 4 + (unsigned long)k);
		arch_store_release(&mp.seq, r);
	}
	mp.rounds = r - 1;
	return NULL;
}

static void *mp_consumer(void *arg)
{
	unsigned long r;
	int k;

	(void)arg;
	for (r = 1; r <= MP_ROUNDS; r++) {
		wait_for(&mp.seq, r);
		if (arch_load_acquire(&mp.seq) == STOP)
			break;
		for (k = 0; k < 4; k++)
			if (arch_load_relaxed(&mp.data[k]) != r * 4 + (unsigned long)k)
				mp.errors++;
		arch_store_release(&mp.ack, r);
	}
	return NULL;
}

/*
 * Store buffering: each thread stores its flag, fences, loads the other's.
 * Without a full barrier both may read 0 (x86 lets a load pass an earlier
 * store; with a compiler barrier only, this loop sees thousands of such
 * rounds); with arch_smp_mb() at least one must see the other's store.
 * The threads meet before every round on a symmetric barrier (each spins
 * on the other's counter) so that their stores really overlap; every round
 * uses fresh flags.
 */
static int sb_x[SB_ROUNDS], sb_y[SB_ROUNDS], sb_r0[SB_ROUNDS], sb_r1[SB_ROUNDS];
static struct {
	unsigned long round __aligned(ARCH_CACHE_LINE);
} sb_me[2];
static unsigned long sb_rounds = SB_ROUNDS;	/* run by both */

static void *sb_thread(void *arg)
{
	long me = (long)arg;
	unsigned long i, end = now_ms() + PAIR_MS;

	for (i = 0; i < SB_ROUNDS; i++) {
		unsigned long spins = 0;

		if (me == 0 && (i & 1023) == 0 && now_ms() > end) {
			arch_store_relaxed(&sb_rounds, i);
			arch_store_release(&sb_me[0].round, STOP);
			break;
		}
		arch_store_relaxed(&sb_me[me].round, i + 1);
		/*
		 * The other one, when running, arrives within a few hundred
		 * loads; past that it is off the CPU (a million loads before
		 * each yield, two waits a round, when both share one CPU).
		 */
		while (arch_load_relaxed(&sb_me[!me].round) < i + 1)
			if (++spins > 4000) {
				spins = 0;
				sched_yield();
			}
		/* STOP may come while 1 is still in round i - 1: run that one */
		if (me == 1 && arch_load_acquire(&sb_me[0].round) == STOP &&
		    i >= arch_load_relaxed(&sb_rounds))
			break;
		if (me == 0) {
			arch_store_relaxed(&sb_x[i], 1);
			arch_smp_mb();
			sb_r0[i] = arch_load_relaxed(&sb_y[i]);
		} else {
			arch_store_relaxed(&sb_y[i], 1);
			arch_smp_mb();
			sb_r1[i] = arch_load_relaxed(&sb_x[i]);
		}
	}
	return NULL;
}

static unsigned long store_buffer_test(void)
{
	pthread_t t[2];
	unsigned long i, both_zero = 0;
	long k;

	for (k = 0; k < 2; k++)
		if (pthread_create(&t[k], NULL, sb_thread, (void *)k))
			tap_bail("pthread_create failed");
	for (k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	for (i = 0; i < sb_rounds; i++)
		if (sb_r0[i] == 0 && sb_r1[i] == 0)
			both_zero++;
	return both_zero;
}

int main(void)
{
	pthread_t t[2];
	unsigned long both_zero;
	int i;

	tap_plan(15);
	tap_diag("ARCH_NAME %s, ARCH_CACHE_LINE %d", ARCH_NAME, ARCH_CACHE_LINE);
	single_thread();

	for (i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, counters, NULL))
			tap_bail("pthread_create failed");
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	tap_ok(shared.add == 2 * ITERS, "two threads: fetch_add counter %lu", shared.add);
	tap_ok(shared.narrow == 2 * ITERS, "two threads: 4-byte fetch_add counter %u",
	       shared.narrow);
	tap_ok(shared.cas == 2 * ITERS, "two threads: cmpxchg counter %lu", shared.cas);
	tap_ok(shared.locked == 2 * ITERS, "two threads: xchg spinlock counter %lu",
	       shared.locked);

	if (pthread_create(&t[0], NULL, mp_producer, NULL) ||
	    pthread_create(&t[1], NULL, mp_consumer, NULL))
		tap_bail("pthread_create failed");
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	tap_ok(mp.errors == 0 && mp.rounds > 0,
	       "two threads: release/acquire message passing, %lu rounds, %lu stale",
	       mp.rounds, mp.errors);

	both_zero = store_buffer_test();
	tap_ok(both_zero == 0 && sb_rounds > 0,
	       "two threads: smp_mb store-buffer litmus, %lu rounds, %lu reorderings",
	       sb_rounds, both_zero);
	tap_finish();
}
