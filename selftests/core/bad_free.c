// SPDX-License-Identifier: MIT
/*
 * bad_free: every double free and invalid free of the kinds below, at
 * three sizes (8 B: a small class; 4 KiB: a large small class; 256 KiB: a
 * mid block of the L2.5 pool, or a large block without it), ends in
 * abort() with one line on stderr naming the freed address: in every
 * variant, not only with the fail-fast box. And a clean run of the same
 * calls, minus the bad free, exits normally (no false alarm).
 *
 * The kinds (Documentation/bad-input.md), p a block of the size:
 *   double free:
 *     immediate    free(p); free(p)
 *     delayed      free(p); allocations and frees of other sizes; free(p)
 *     flushed      free(p); 600 more frees of the size (the thread cache
 *                  overflows); free(p)
 *     spilled      600 frees of the size (the cache is full), free(p), 31
 *                  more: the overflow among those 32 frees sends the
 *                  newest blocks, p with them, to the slab; free(p)
 *     reused       free(p); q = malloc(size) (gets p back); free(q);
 *                  free(p): a stale pointer freed while the block is free
 *                  (freeing a reused block once more while the program
 *                  holds it is a legal free of the new owner's block, and
 *                  no allocator without per-owner state can tell it)
 *     interleaved  free(p); free(q); free(p)
 *     thread       free(p); another thread frees p; the owner's next slow
 *                  path (here malloc_trim) settles it
 *     thread-reused the same, the owner's malloc handing p out again
 *                  before that slow path (p live when it is settled)
 *     remote       another thread frees p; free(p)
 *     foreign      another thread frees p, then frees p again: caught
 *                  at once when p waits in that thread's run of blocks
 *                  going home (under 4 KiB), else parked and settled at
 *                  the owner's next slow path (here malloc_trim)
 *     run-owner    another thread frees p and waits, p in its run; free(p)
 *                  (parked: the owner cannot see that run); the other
 *                  thread exits (its run goes home); malloc_trim settles
 *     third        another thread B, which allocates too, frees 300
 *                  blocks of this thread's (which then counts as idle to
 *                  B, so B caches them),
 *                  then p (p now in B's cache); a third thread C frees p;
 *                  B's next slow path (here its exit) settles it
 *     third-owner  the same, with this thread (p's owner) freeing p
 *                  again instead of C
 *     cacher       thread B frees 300 blocks of this thread's (idle to B,
 *                  which then takes the idle owner's blocks by their
 *                  page-map entry, lib/alloc.c), then p, then p again
 *                  (third, third-owner and cacher: B checks that p sits
 *                  in its bin, and says so on stderr if not, which fails
 *                  both runs of the kind; they run beside a crowd of
 *                  parked threads, selftests/lib/crowd.h, so that B still
 *                  caches if that is kept to when threads outnumber the
 *                  CPUs: Documentation/benchmarks.md, "larson 1 thread")
 *     adopted      a thread frees p and exits; a thread on a stack of its
 *                  own (so its thread cache lies elsewhere in TLS) adopts
 *                  the exited thread's heap and frees p
 *     adopted-trim the same with malloc_trim between the two threads (p
 *                  goes from the pooled heap's kept cache to its slab)
 *   invalid free:
 *     interior     free(p + size / 2), or p + 8 for the 8 B block (p + 16
 *                  is the next block there, a block start)
 *     unaligned    free(p + 1)
 *     before       free(p - 8), just before the block
 *     far          free(p + 1 TiB), in no block at all
 *     past 2^47    free(p + 2^47), outside the address space (the fixed
 *                  page map's index wraps it onto p's page, lib/alloc.h)
 *     never        free of a block start the program was never given: the
 *                  next block in the thread cache (mid/large: p + 4 * size)
 *     global       free of a global, never returned by malloc
 *     remote interior, remote past 2^47
 *                  the same as interior and past 2^47, freed by another
 *                  thread that has a heap: the slow path takes another
 *                  heap's block by its page-map entry (lib/alloc.c,
 *                  __hak_free_slow), and the entry of p's page must not
 *                  vouch for a pointer inside a block or one that wraps
 *
 * Pointers go through a volatile stash so the compiler neither drops a
 * pair nor warns about the deliberate misuse.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "tap.h"
#include "child.h"
#include "tcache.h"
#include "crowd.h"

static void *volatile stash;
static uintptr_t *shared;	/* the address freed last, for the parent */
static char global_buf[8192] __attribute__((aligned(4096)));

static const size_t sizes[] = { 8, 4096, 256 << 10 };

struct kind {
	const char *name;
	void (*run)(size_t n, int bad);
};

static void *launder(void *p)
{
	__asm__ __volatile__("" : "+r"(p) :: "memory");
	return p;
}

/* The last free: the bad one (bad) or nothing (the clean twin). */
static void last_free(void *p, int bad)
{
	*shared = (uintptr_t)p;
	if (bad)
		free(launder(p));
}

static void k_immediate(size_t n, int bad)
{
	stash = malloc(n);
	free(stash);
	last_free(stash, bad);
}

static void k_delayed(size_t n, int bad)
{
	void *v[32];
	unsigned i;

	stash = malloc(n);
	free(stash);
	for (i = 0; i < 32; i++)
		v[i] = malloc(n == 8 ? 100 + i : n == 4096 ? 1000 + i : 5000 + i);
	for (i = 0; i < 32; i++)
		free(v[i]);
	last_free(stash, bad);
}

static void k_flushed(size_t n, int bad)
{
	unsigned i, k = n > 65536 ? 24 : 600;
	void **v = mmap(NULL, k * sizeof(void *), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	stash = malloc(n);
	for (i = 0; i < k; i++)
		v[i] = malloc(n);
	free(stash);
	for (i = 0; i < k; i++)
		free(v[i]);
	last_free(stash, bad);
}

/*
 * p freed into a full bin, then the frees that fill it once more: the
 * overflow among them spills the newest blocks, p with them, to the slab.
 */
static void k_spilled(size_t n, int bad)
{
	unsigned i, k = n > 65536 ? 24 : 600, m = n > 65536 ? 8 : 31;
	void **v = mmap(NULL, (k + m) * sizeof(void *), PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	for (i = 0; i < k + m; i++)
		v[i] = malloc(n);
	stash = malloc(n);
	for (i = 0; i < k; i++)
		free(v[i]);
	free(stash);
	for (i = k; i < k + m; i++)
		free(v[i]);
	last_free(stash, bad);
}

static void k_reused(size_t n, int bad)
{
	void *q;

	stash = malloc(n);
	free(stash);
	q = malloc(n);
	if (q != stash)
		fprintf(stdout, "# reused: malloc gave %p, not %p\n", q, stash);
	free(q);
	last_free(stash, bad);
}

static void k_interleaved(size_t n, int bad)
{
	void *q = malloc(n);

	stash = malloc(n);
	free(stash);
	free(q);
	last_free(stash, bad);
}

static void *thread_free(void *arg)
{
	free(launder(arg));
	return NULL;
}

static void free_in_thread(void *p)
{
	pthread_t t;

	if (pthread_create(&t, NULL, thread_free, p) == 0)
		pthread_join(t, NULL);
}

static void k_thread(size_t n, int bad)
{
	stash = malloc(n);
	free(stash);
	*shared = (uintptr_t)stash;
	if (bad)
		free_in_thread(stash);
	malloc_trim(0);
}

/*
 * k_thread with the block handed out again before the owner's slow path:
 * the parked block is live under its new holder when malloc_trim settles
 * it. Taken for a live block that held the key by chance, it was freed
 * there and served twice (rv36).
 */
static void k_thread_reused(size_t n, int bad)
{
	void *q, *r;

	stash = malloc(n);
	free(stash);
	*shared = (uintptr_t)stash;
	if (bad)
		free_in_thread(stash);
	q = launder(malloc(n));
	if (q)
		memset(q, 0x5a, n);
	malloc_trim(0);
	r = launder(malloc(n));
	if (q && r == q) {
		fprintf(stderr, "%p handed out twice\n", q);
		_exit(1);
	}
	free(r);
	free(q);
}

static void k_remote(size_t n, int bad)
{
	stash = malloc(n);
	free_in_thread(stash);
	last_free(stash, bad);
}

static void *thread_free_twice(void *arg)
{
	free(launder(arg));
	*shared = (uintptr_t)arg;
	if (*(volatile int *)&shared[1])
		free(launder(arg));
	return NULL;
}

static void k_foreign(size_t n, int bad)
{
	pthread_t t;

	stash = malloc(n);
	shared[1] = bad;
	if (pthread_create(&t, NULL, thread_free_twice, stash) == 0)
		pthread_join(t, NULL);
	malloc_trim(0);
}

/* k_run_owner's other thread: frees p, waits while the owner frees it. */
static pthread_barrier_t run_bar;

static void *run_holder(void *arg)
{
	free(launder(arg));
	pthread_barrier_wait(&run_bar);	/* p sits in this thread's run */
	pthread_barrier_wait(&run_bar);	/* the owner has freed it again */
	return NULL;			/* the exit sends the run home */
}

static void k_run_owner(size_t n, int bad)
{
	pthread_t t;

	stash = malloc(n);
	if (pthread_barrier_init(&run_bar, NULL, 2) ||
	    pthread_create(&t, NULL, run_holder, stash))
		tap_bail("k_run_owner: %s", strerror(errno));
	pthread_barrier_wait(&run_bar);
	*shared = (uintptr_t)stash;
	if (bad)
		free(launder(stash));
	pthread_barrier_wait(&run_bar);
	pthread_join(t, NULL);
	malloc_trim(0);
}

/* k_third's thread B: caches this thread's blocks, waits for C's free. */
struct third {
	void **v;
	size_t n;
	unsigned k;
	int bad;			/* k_cacher: B frees p twice */
	pthread_barrier_t bar;
};

/*
 * B takes this thread for idle only when this thread's last tick is
 * HAK_IDLE_MS (10 ms, lib/heap.c) older than B's own, which moves at its
 * slow paths: sleep three times that, then tick (a 4 MiB block;
 * core_test.h's ct_idle_wait).
 */
static void idle_wait(void)
{
	void *p;

	usleep(30 * 1000);
	p = malloc(4u << 20);
	if (!p)
		tap_bail("a 4 MiB malloc failed");
	((volatile char *)p)[0] = 1;
	free(p);
}

/* Thread B's start: it allocates (so it caches), then frees the k blocks. */
static void cacher_fill(struct third *t)
{
	unsigned i;

	free(launder(malloc(1000)));
	for (i = 0; i < t->k; i++) {
		free(t->v[i]);
		if (!i)
			idle_wait();	/* the owner's idle time, after the first */
	}
}

/* Thread B, after its free of p: p must be in its bin, or the kind misses the path. */
static void cached_or_say(const struct third *t)
{
	if (t->n <= HAK_SMALL_MAX && __hak_tc.bins[__hak_class_of(t->n)].head != stash)
		fprintf(stderr, "bad_free: %p is not in the caching thread's bin\n", stash);
}

static void *third_cacher(void *arg)
{
	struct third *t = arg;

	cacher_fill(t);
	free(launder(stash));
	cached_or_say(t);
	pthread_barrier_wait(&t->bar);	/* p sits in this thread's cache */
	pthread_barrier_wait(&t->bar);	/* C has freed it again */
	return NULL;			/* the exit is this thread's slow path */
}

static void third(size_t n, int bad, int owner)
{
	struct third t = { .n = n, .k = n > 65536 ? 24 : 300 };
	struct crowd crowd;
	pthread_t b;
	unsigned i;

	if (crowd_start(&crowd))
		tap_bail("k_third: crowd");
	t.v = mmap(NULL, t.k * sizeof(void *), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t.v == MAP_FAILED || pthread_barrier_init(&t.bar, NULL, 2))
		tap_bail("k_third: %s", strerror(errno));
	for (i = 0; i < t.k; i++)
		t.v[i] = malloc(n);
	stash = malloc(n);
	if (pthread_create(&b, NULL, third_cacher, &t))
		tap_bail("k_third: pthread_create");
	pthread_barrier_wait(&t.bar);
	*shared = (uintptr_t)stash;
	if (bad && owner)
		free(launder(stash));
	else if (bad)
		free_in_thread(stash);
	pthread_barrier_wait(&t.bar);
	pthread_join(b, NULL);
	crowd_stop(&crowd);
	malloc_trim(0);
}

/* k_cacher's thread B: finds this thread idle, then frees p (twice). */
static void *cacher_twice(void *arg)
{
	struct third *t = arg;

	cacher_fill(t);
	*shared = (uintptr_t)stash;
	free(launder(stash));
	cached_or_say(t);
	if (t->bad)
		free(launder(stash));
	return NULL;
}

static void k_cacher(size_t n, int bad)
{
	struct third t = { .n = n, .k = n > 65536 ? 24 : 300, .bad = bad };
	struct crowd crowd;
	pthread_t b;
	unsigned i;

	if (crowd_start(&crowd))
		tap_bail("k_cacher: crowd");
	t.v = mmap(NULL, t.k * sizeof(void *), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t.v == MAP_FAILED)
		tap_bail("k_cacher: %s", strerror(errno));
	for (i = 0; i < t.k; i++)
		t.v[i] = malloc(n);
	stash = malloc(n);
	if (pthread_create(&b, NULL, cacher_twice, &t) || pthread_join(b, NULL))
		tap_bail("k_cacher: pthread");
	crowd_stop(&crowd);
	malloc_trim(0);
}

static void k_third(size_t n, int bad)
{
	third(n, bad, 0);
}

static void k_third_owner(size_t n, int bad)
{
	third(n, bad, 1);
}

static void *volatile kept_live;

/* Free a block, keeping its neighbour live (so its slab stays the heap's). */
static void *thread_malloc_free(void *arg)
{
	size_t n = *(size_t *)arg;

	kept_live = malloc(n);
	stash = malloc(n);
	free(stash);
	return NULL;
}

/* Run fn(arg) in a thread whose stack (and so TLS) is a fresh mapping. */
static void run_on_own_stack(void *(*fn)(void *), void *arg)
{
	size_t len = 1 << 20;
	void *stack = mmap(NULL, len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_attr_t at;
	pthread_t t;

	if (stack == MAP_FAILED || pthread_attr_init(&at) ||
	    pthread_attr_setstack(&at, stack, len) || pthread_create(&t, &at, fn, arg))
		tap_bail("thread on its own stack: %s", strerror(errno));
	pthread_join(t, NULL);
	pthread_attr_destroy(&at);
}

static void adopted(size_t n, int bad, int trim)
{
	pthread_t t;

	if (pthread_create(&t, NULL, thread_malloc_free, &n) == 0)
		pthread_join(t, NULL);
	if (trim)
		malloc_trim(0);
	*shared = (uintptr_t)stash;
	if (bad)
		run_on_own_stack(thread_free, stash);
	else
		run_on_own_stack(thread_malloc_free, &n);
}

static void k_adopted(size_t n, int bad)
{
	adopted(n, bad, 0);
}

static void k_adopted_trim(size_t n, int bad)
{
	adopted(n, bad, 1);
}

/*
 * A block freed again after every block of its size was freed and trimmed:
 * its slab (or region) went back, so the block lies in a free page with no
 * class, or in nothing of ours (lib/heap.c free_unclassed, never run by a
 * test before).
 */
static void k_trimmed(size_t n, int bad)
{
	enum { MAXB = 8192 };
	static void *v[MAXB];
	size_t nb = (4u << 20) / n;
	void *p;

	if (nb > MAXB)
		nb = MAXB;
	for (size_t i = 0; i < nb; i++)
		v[i] = malloc(n);
	p = v[nb / 2];
	for (size_t i = 0; i < nb; i++)
		free(v[i]);
	malloc_trim(0);
	last_free(p, bad);
}

static void k_interior(size_t n, int bad)
{
	char *p = malloc(n);

	last_free(p + (n < 64 ? 8 : n / 2), bad);
	free(p);
}

static void k_unaligned(size_t n, int bad)
{
	char *p = malloc(n);

	last_free(p + 1, bad);
	free(p);
}

static void k_before(size_t n, int bad)
{
	char *p = malloc(n);

	last_free(p - 8, bad);
	free(p);
}

static void k_far(size_t n, int bad)
{
	char *p = malloc(n);

	last_free(p + (1UL << 40), bad);
	free(p);
}

static void k_past_va(size_t n, int bad)
{
	char *p = malloc(n);

	last_free(p + (1UL << 47), bad);
	free(p);
}

struct bad_arg {
	char *q;
	int bad;
};

static void *thread_bad_free(void *arg)
{
	const struct bad_arg *a = arg;
	void *mine = malloc(16);	/* a heap: q's page-map entry is another heap's */

	last_free(a->q, a->bad);
	free(mine);
	return NULL;
}

/* The last free, by a thread with a heap of its own. */
static void last_free_in_thread(char *q, int bad)
{
	struct bad_arg a = { q, bad };
	pthread_t t;

	if (pthread_create(&t, NULL, thread_bad_free, &a) == 0)
		pthread_join(t, NULL);
}

static void k_remote_interior(size_t n, int bad)
{
	char *p = malloc(n);

	last_free_in_thread(p + (n < 64 ? 8 : n / 2), bad);
	free(p);
}

static void k_remote_past_va(size_t n, int bad)
{
	char *p = malloc(n);

	last_free_in_thread(p + (1UL << 47), bad);
	free(p);
}

/* Does the L2.5 pool serve mid-size n (its regions hold never-used slots)? */
static int l25_serves(size_t n)
{
#if IS_ENABLED(CONFIG_HAK_L25_POOL)
	return n <= ((size_t)CONFIG_HAK_L25_MAX_KIB << 10);
#else
	(void)n;
	return 0;
#endif
}

static void k_never(size_t n, int bad)
{
	char *p = malloc(n);
	void *q = p + 4 * n;	/* mid or large: a slot of the region, or nothing */

	if (n <= HAK_SMALL_MAX) {
		unsigned c = __hak_class_of(n);
		struct hak_tbin *b = &__hak_tc.bins[c];

		(void)launder(malloc(n));
		/*
		 * A refill of a class under 4 KiB caches more than the block
		 * it hands out; one of a page class carves that one block
		 * only (lib/heap.c, refill_want): cache one as a box does.
		 */
		if (!b->head && !__hak_tcache_fill(c, 1))
			tap_bail("no block of %zu B cached", n);
		q = b->head;	/* carved, cached, never handed out */
	} else if (!l25_serves(n)) {
		/*
		 * A large block is a mapping of its own: p + 4n may be the
		 * start of another live one. Take an address no mapping holds.
		 */
		q = mmap(NULL, 4 * n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (q == MAP_FAILED)
			tap_bail("mmap: %s", strerror(errno));
		munmap(q, 4 * n);
	}
	last_free(q, bad);
	free(p);
}

static void k_global(size_t n, int bad)
{
	(void)n;
	last_free(global_buf + 4096, bad);
}

static const struct kind kinds[] = {
	{ "double free, immediate", k_immediate },
	{ "double free, delayed by other allocations", k_delayed },
	{ "double free, after the cache overflowed to the slab", k_flushed },
	{ "double free, after the overflow spilled it to the slab", k_spilled },
	{ "double free of a stale pointer after reuse", k_reused },
	{ "double free, interleaved with another free", k_interleaved },
	{ "double free from another thread", k_thread },
	{ "double free from another thread, the block reused before the owner's slow path", k_thread_reused },
	{ "double free after another thread's free", k_remote },
	{ "double free by another thread, twice", k_foreign },
	{ "double free by the owner of a block in another thread's run", k_run_owner },
	{ "double free of a block in a third thread's cache", k_third },
	{ "double free by the owner of a block in another thread's cache", k_third_owner },
	{ "double free by a thread caching an idle owner's blocks", k_cacher },
	{ "double free by the thread that adopted the freeing thread's heap", k_adopted },
	{ "double free by an adopting thread, after trim", k_adopted_trim },
	{ "double free after every block of the size was freed and trimmed", k_trimmed },
	{ "invalid free, interior pointer", k_interior },
	{ "invalid free, unaligned pointer", k_unaligned },
	{ "invalid free, just before a block", k_before },
	{ "invalid free, far outside any block", k_far },
	{ "invalid free, past 2^47 (wraps onto the block's page)", k_past_va },
	{ "invalid free, block never handed out", k_never },
	{ "invalid free, global never returned by malloc", k_global },
	{ "invalid free by another thread, interior pointer", k_remote_interior },
	{ "invalid free by another thread, past 2^47", k_remote_past_va },
};

struct job {
	const struct kind *k;
	size_t n;
	int bad;
};

static void run_job(void *arg)
{
	const struct job *j = arg;

	j->k->run(j->n, j->bad);
}

int main(void)
{
	struct child_result r;
	unsigned i, s;

	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		tap_bail("mmap: %s", strerror(errno));
	tap_plan(2 * ARRAY_SIZE(kinds) * ARRAY_SIZE(sizes));
	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		for (s = 0; s < ARRAY_SIZE(sizes); s++) {
			struct job j = { &kinds[i], sizes[s], 1 };
			char addr[32];
			int ok;

			*shared = 0;
			child_run(run_job, &j, &r);
			ok = child_reported(&r, (void *)*shared, addr);
			tap_ok(ok, "%s, %zu B: abort, one line naming %s", kinds[i].name, sizes[s], addr);
			if (!ok)
				tap_diag("status %#x, stderr: %s", r.status, r.err);

			j.bad = 0;
			child_run(run_job, &j, &r);
			tap_ok(child_exited_ok(&r) && !r.err[0], "%s, %zu B: clean twin runs",
			       kinds[i].name, sizes[s]);
			if (!child_exited_ok(&r) || r.err[0])
				tap_diag("status %#x, stderr: %s", r.status, r.err);
		}
	}
	tap_finish();
}
