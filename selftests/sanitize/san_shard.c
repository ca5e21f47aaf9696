// SPDX-License-Identifier: MIT
/*
 * san_shard: free-list sharding (HAKMEM_SHARD_MIN, lib/heap.c shard_alloc
 * and shard_free) under threads. The program re-executes itself with
 * HAKMEM_SHARD_MIN=512, no bin for those classes and a 1 ms purge delay,
 * then runs rounds of 4 fresh threads that
 *   make their first allocation together (each attach sets the sharding
 *   up: under TSan its stores raced the others' reads of the threshold);
 *   build chains of 512-3,583 B blocks, free half and hand the other half
 *   to the next thread (remote frees onto sharded slabs);
 *   pause now and then for a few ms, so the decay pass of a working
 *   thread takes a paused one's heap for idle, fences it and scans it
 *   while its owner may be in a sharded path (the shard_busy / scan_lk
 *   handshake).
 * Every block is stamped from its address and size and checked before
 * its free. Skips where membarrier(2) is refused (no class is sharded).
 *
 * Usage: san_shard [scale]   (chains per thread and round = 40 x scale)
 */
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "san_test.h"

#define NT	4
#define CHAIN	300
#define BIG	1200

struct link {
	struct link *next;
	size_t n;
};

static pthread_barrier_t start;
static pthread_mutex_t box_lock[NT];
static struct link *box[NT];	/* blocks handed to thread i: box_lock[i] */
static unsigned long chains, bad, nulls;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

/* The pattern past the link: the link's words are the hand-over's. */
static void stamp(struct link *l, size_t n)
{
	l->n = n;
	san_fill((char *)l + sizeof(*l), n - sizeof(*l));
}

static bool stamped(const struct link *l)
{
	return san_check((const char *)l + sizeof(*l), l->n - sizeof(*l));
}

static void drain(unsigned me, unsigned long *n_bad)
{
	struct link *l, *next;

	pthread_mutex_lock(&box_lock[me]);
	l = box[me];
	box[me] = NULL;
	pthread_mutex_unlock(&box_lock[me]);
	for (; l; l = next) {
		next = l->next;
		if (!stamped(l))
			(*n_bad)++;
		hak_free(l);
	}
}

static void *worker(void *arg)
{
	unsigned me = (unsigned)(uintptr_t)arg % NT;
	uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	unsigned long per = (unsigned long)(uintptr_t)arg / NT, n_bad = 0, n_null = 0;
	struct link *mine[CHAIN];

	pthread_barrier_wait(&start);
	for (unsigned long r = 0; r < per; r++) {
		unsigned k = 20 + (unsigned)(san_rand(&rng) % (CHAIN - 20));
		struct link *give = NULL, *tail = NULL;

		for (unsigned i = 0; i < k; i++) {
			size_t n = 512 + san_rand(&rng) % 3072;

			mine[i] = hak_malloc(n);
			if (!mine[i]) {
				n_null++;
				k = i;
				break;
			}
			stamp(mine[i], n);
		}
		for (unsigned i = 0; i < k; i++) {
			if (!stamped(mine[i]))
				n_bad++;
			if (i & 1) {
				mine[i]->next = give;
				give = mine[i];
				if (!tail)
					tail = give;
			} else {
				hak_free(mine[i]);
			}
		}
		if (give) {
			unsigned to = (me + 1) % NT;

			pthread_mutex_lock(&box_lock[to]);
			tail->next = box[to];
			box[to] = give;
			pthread_mutex_unlock(&box_lock[to]);
		}
		drain(me, &n_bad);
		if (san_rand(&rng) % 8 == 0)
			usleep(2000 + san_rand(&rng) % 8000);
	}
	pthread_mutex_lock(&count_lock);
	chains += per;
	bad += n_bad;
	nulls += n_null;
	pthread_mutex_unlock(&count_lock);
	return NULL;
}

/* Bytes out of slabs after a chain of BIG-byte blocks freed whole, against before. */
static bool chain_goes_home(void)
{
	static void *blk[CHAIN];
	struct hak_stats a, b;

	hak_free(hak_malloc(BIG));
	hak_stats_get(&a);
	for (unsigned i = 0; i < CHAIN; i++)
		blk[i] = hak_malloc(BIG);
	for (unsigned i = 0; i < CHAIN; i++)
		hak_free(blk[i]);
	hak_stats_get(&b);
	return b.small_in_use <= a.small_in_use;
}

int main(int argc, char **argv)
{
	unsigned long scale = san_scale(argc, argv), rounds = 3, per = 40 * scale;
	bool home;

	/* once, whatever the caller's environment says */
	if (!getenv("HAK_SELFTEST_SHARD_CHILD")) {
		setenv("HAK_SELFTEST_SHARD_CHILD", "1", 1);
		setenv("HAKMEM_SHARD_MIN", "512", 1);
		setenv("HAKMEM_SHARD_CAP", "0", 1);
		setenv("HAKMEM_SHARD_BYTES", "0", 1);
		setenv("HAKMEM_PURGE_DELAY_MS", "1", 1);
		execv("/proc/self/exe", argv);
		return 1;
	}
	tap_plan(3);
	tap_diag("%lu rounds of %d threads, %lu chains each", rounds, NT, per);
	for (unsigned i = 0; i < NT; i++)
		pthread_mutex_init(&box_lock[i], NULL);
	for (unsigned long r = 0; r < rounds; r++) {
		pthread_t th[NT];

		pthread_barrier_init(&start, NULL, NT);
		for (unsigned i = 0; i < NT; i++)
			if (pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(per * NT + i)))
				tap_bail("pthread_create failed");
		for (unsigned i = 0; i < NT; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&start);
	}
	for (unsigned i = 0; i < NT; i++)
		drain(i, &bad);
	tap_ok(bad == 0 && nulls == 0, "%lu chains: %lu blocks damaged, %lu NULL", chains, bad,
	       nulls);
	tap_ok(chains == rounds * per * NT, "every thread ran its chains");
	/* a first chain takes what this thread's first slow paths do (prewarm, hand-over) */
	(void)chain_goes_home();
	home = chain_goes_home();
	if (!home && syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) < 0)
		tap_skip("membarrier(2) refused: no class is sharded");
	else
		tap_ok(home,
		       "the %u B class is sharded: a chain freed whole leaves no byte out", BIG);
	tap_finish();
}
