// SPDX-License-Identifier: MIT
/*
 * exit_late: a thread that frees or allocates after hakmem's thread-exit
 * destructor ran for the last time gives back what that call took.
 *
 * glibc runs the pthread key destructors (up to four rounds), then frees
 * its own per-thread buffers (__libc_thread_freeres: strerror's message
 * of an unknown errno, dlerror's, the resolver's). A free or malloc there,
 * or in another key's destructor in the last round, comes after hakmem's
 * destructor ran for the last time. It used to attach a heap again that
 * nothing detached: one heap (its slabs, 130 KiB and more) and one count
 * in the live-thread total (which shrinks every thread's cache budget)
 * per exited thread, for good: 6000 such threads kept 6001 heaps and
 * 800 MiB mapped. A grow area taken there was never given up either (64
 * at most: then every thread's realloc growth went the slow way).
 *
 * Proves, over many threads started one at a time, that
 *  - threads whose strerror buffer glibc frees at exit,
 *  - threads with a key destructor that re-arms itself every round and
 *    allocates, frees, and frees blocks of the main thread in each,
 *  - threads that grow a large block with realloc in that destructor's
 *    last round,
 * leave the number of heaps and of live threads (and of grow areas) as
 * they were, and that every block such a destructor allocated is intact.
 *
 * Usage: exit_late [threads]   (default 400, 100 with HAKMEM_SELFTEST_QUICK=1)
 */
#include <limits.h>
#include <pthread.h>
#include "core_test.h"
#if CT_HAKMEM
#include <hakmem/hakmem.h>
#include "grow.h"
#include "heap.h"
#endif

#define NMAIN	4096

static pthread_key_t key;
static int rounds_seen;			/* the last thread's destructor rounds */
static void *main_blocks[NMAIN];	/* the main thread's, freed by workers */
static unsigned main_next;
static unsigned long bad;
static bool grow_late;

static void *late_work(unsigned round)
{
	static const size_t sz[] = { 24, 100, 700, 3000, 40000 };
	void *keep[sizeof(sz) / sizeof(sz[0])];
	unsigned i;

	for (i = 0; i < ARRAY_SIZE_CT(sz); i++) {
		keep[i] = malloc(sz[i]);
		if (!keep[i])
			abort();
		ct_fill(keep[i], sz[i]);
	}
	if (main_next < NMAIN)
		free(main_blocks[main_next++]);
	for (i = 0; i < ARRAY_SIZE_CT(sz); i++) {
		if (ct_check(keep[i], sz[i]) != sz[i])
			bad++;
		free(keep[i]);
	}
	if (grow_late && round == PTHREAD_DESTRUCTOR_ITERATIONS) {
		/* past the L2.5 pool: the growth takes a grow area's slot */
		char *p = malloc(300 << 10), *q;

		if (!p)
			abort();
		memset(p, 7, 300 << 10);
		q = realloc(p, 600 << 10);
		if (!q || q[0] != 7 || q[(300 << 10) - 1] != 7)
			bad++;
		free(q ? q : p);
	}
	return NULL;
}

/* Re-arms itself until glibc stops calling it: the last call is past ours. */
static void dtor(void *arg)
{
	unsigned round = (unsigned)(uintptr_t)arg;

	late_work(round);
	rounds_seen = (int)round;
	if (pthread_setspecific(key, (void *)(uintptr_t)(round + 1)))
		abort();
}

static void *worker_strerror(void *arg)
{
	void *p = malloc(64);

	(void)arg;
	free(p);
	/* glibc keeps the message of an unknown errno in a malloc'd buffer */
	if (!strstr(strerror(12345), "12345"))
		bad++;
	return NULL;
}

static void *worker_key(void *arg)
{
	void *p = malloc(64);

	(void)arg;
	free(p);
	if (pthread_setspecific(key, (void *)(uintptr_t)1))
		abort();
	return NULL;
}

static void run(void *(*fn)(void *), unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, fn, NULL) || pthread_join(t, NULL))
			tap_bail("pthread_create/join");
	}
}

struct counts {
	size_t heaps;
	unsigned live;
	size_t areas, refused;
};

static struct counts counts(void)
{
	struct counts c = { 0 };
#if CT_HAKMEM
	struct hak_grow_stats gs;
	struct hak_stats st;

	hak_stats_get(&st);
	__hak_grow_stats(&gs);
	c.heaps = st.heaps;
	c.live = __hak_heap_nr_live();
	c.areas = gs.areas;
	c.refused = gs.refused;
#endif
	return c;
}

static void check(const char *what, struct counts a, struct counts b)
{
	tap_ok(b.heaps <= a.heaps + 2, "%s: heaps %zu -> %zu", what, a.heaps, b.heaps);
	tap_ok(b.live == a.live, "%s: live threads %u -> %u", what, a.live, b.live);
	tap_ok(b.areas <= a.areas + 2 && b.refused == a.refused,
	       "%s: grow areas %zu -> %zu, refused %zu -> %zu", what,
	       a.areas, b.areas, a.refused, b.refused);
}

int main(int argc, char **argv)
{
	const char *quick = getenv("HAKMEM_SELFTEST_QUICK");
	unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : quick && *quick == '1' ? 100 : 400;
	struct counts a;

	tap_plan(10);
	if (pthread_key_create(&key, dtor))
		tap_bail("pthread_key_create");
	for (unsigned i = 0; i < NMAIN; i++)
		if (!(main_blocks[i] = malloc(16 + i % 200)))
			tap_bail("malloc");
	run(worker_strerror, 1);	/* first thread: heap and pool exist */

	a = counts();
	run(worker_strerror, n);
	check("strerror buffer freed by glibc at exit", a, counts());

	a = counts();
	run(worker_key, n);
	check("allocation in every destructor round", a, counts());

	grow_late = true;
	a = counts();
	run(worker_key, n);
	check("realloc growth in the last destructor round", a, counts());

	tap_ok(!bad && rounds_seen == PTHREAD_DESTRUCTOR_ITERATIONS,
	       "blocks intact (%lu bad), destructor ran %d rounds", bad, rounds_seen);
	for (unsigned i = main_next; i < NMAIN; i++)
		free(main_blocks[i]);
	tap_finish();
}
