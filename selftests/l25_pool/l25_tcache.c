// SPDX-License-Identifier: MIT
/*
 * l25_tcache: the pool's per-thread cache (CONFIG_HAK_L25_TCACHE).
 *  - hit path: a freed block comes back to the same thread's next malloc
 *    of its class without a shard operation (shard alloc/free counters
 *    unchanged), and the cache keeps its per-class and byte limits;
 *  - cross-thread: a block cached and handed out again by one thread,
 *    freed by another (which allocates from another shard), goes back on
 *    the lock-free remote path, not into the freeing thread's cache, and
 *    the owner's next miss of its class collects it and hands it out;
 *  - double free of a block sitting in this thread's cache, or waiting
 *    on the remote path, aborts in a child with the one-line diagnostic;
 *  - thread exit returns the cached blocks (shard blocks in use);
 *  - malloc_trim flushes the calling thread's cache;
 *  - fork: the child keeps the forking thread's cache and can use it;
 *  - the decay purges an idle thread's cached blocks: a thread caches
 *    blocks and sleeps; within the delay they stay resident, a delay
 *    later the passes other threads drive have given their pages back
 *    (mincore) while they stay in its cache, and it gets them again,
 *    zero-filled, without a shard operation;
 *  - malloc_trim from another thread spares a block cached within the
 *    purge delay (resident, handed out again without a fault) and purges
 *    one cached longer (qemu's RCU thread trims while its workers reuse
 *    their blocks);
 *  - a thread that reuses its cached blocks while another purges every
 *    thread's cached blocks (hak_l25_release(0), the memory limit's and a
 *    failed allocation's purge) never loses what it wrote to a live block.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/wait.h>
#include "l25_test.h"
#include "init.h"

#define SZ		100000		/* class 112 KiB */
#define TC_N		CONFIG_HAK_L25_TCACHE
#define TC_BYTES	((size_t)CONFIG_HAK_L25_TCACHE_KIB << 10)

static struct hak_l25_stats stats(void)
{
	struct hak_l25_stats st;

	hak_l25_stats(&st);
	return st;
}

static void test_hit(void)
{
	struct hak_l25_stats a, b;
	void *p, *q;

	malloc_trim(0);
	p = malloc(lt_opaque(SZ));
	memset(p, 3, SZ);
	a = stats();
	free(p);
	b = stats();
	tap_ok(b.cached == a.cached + 1 && b.frees == a.frees &&
	       b.blocks_in_use == a.blocks_in_use,
	       "free puts the block in the thread cache (%zu cached, no shard free)", b.cached);
	q = malloc(lt_opaque(SZ + 5000));	/* same class */
	b = stats();
	tap_ok(q == p && b.cached == a.cached && b.allocs == a.allocs,
	       "malloc of the same class gets it back without a shard operation");
	free(q);
	malloc_trim(0);
}

static void test_limits(void)
{
	void *p[64];
	struct hak_l25_stats st;
	/* half the maximum: with guard pages a slot of the largest class is over the byte cap */
	size_t sz = L25_TEST_MAX / 2, cls = malloc_usable_size(p[0] = malloc(lt_opaque(sz)));
	int i;

	malloc_trim(0);
	for (i = 1; i < 64; i++)
		p[i] = malloc(lt_opaque(sz));
	for (i = 0; i < 64; i++)
		free(p[i]);
	st = stats();
	tap_ok(st.cached >= 1 && st.cached <= TC_N && st.cached * cls <= TC_BYTES,
	       "64 frees of %zu B blocks: %zu cached (at most %d, %zu KiB)", cls,
	       st.cached, TC_N, TC_BYTES >> 10);
	malloc_trim(0);
}

/* ---- cross-thread ---- */

static void *free_it(void *p)
{
	free(p);	/* no stats() here: it would collect the block */
	return NULL;
}

static void test_cross_thread(void)
{
	struct hak_l25_stats a, b;
	void *p, *q, *r;
	pthread_t t;

	malloc_trim(0);
	a = stats();
	p = malloc(lt_opaque(SZ));
	free(p);			/* cached here */
	q = malloc(lt_opaque(SZ));	/* and handed out again */
	lt_fill(q, SZ, 1);
	pthread_create(&t, NULL, free_it, q);
	pthread_join(t, NULL);
	r = malloc(lt_opaque(SZ));	/* a miss: collects q, resident, on top */
	b = stats();
	tap_ok(q == p && r == q && b.cached == 0 && b.blocks_in_use == a.blocks_in_use + 1 &&
	       b.remote_frees == a.remote_frees + 1,
	       "a block freed by another thread goes home on the remote path and the "
	       "owner's next miss hands it out again (%zu -> %zu in use, %zu remote)",
	       a.blocks_in_use, b.blocks_in_use, b.remote_frees - a.remote_frees);
	free(r);
	malloc_trim(0);
}

static void *cache_many(void *arg)
{
	struct hak_l25_stats *out = arg;
	void *p[6];
	int i;

	for (i = 0; i < 6; i++) {
		p[i] = malloc(lt_opaque(40000 + (size_t)i * 10000));
		*(volatile char *)p[i] = 1;
	}
	for (i = 0; i < 6; i++)
		free(p[i]);
	*out = stats();
	return NULL;
}

static void test_thread_exit(void)
{
	struct hak_l25_stats a, in, b;
	pthread_t t;

	a = stats();
	pthread_create(&t, NULL, cache_many, &in);
	pthread_join(t, NULL);
	b = stats();
	tap_ok(in.cached == 6 && in.blocks_in_use == a.blocks_in_use + 6 &&
	       b.blocks_in_use == a.blocks_in_use && b.frees - a.frees == 6,
	       "thread exit returns its %zu cached blocks to the shards (in use %zu -> %zu -> %zu)",
	       in.cached, a.blocks_in_use, in.blocks_in_use, b.blocks_in_use);
}

static void test_trim(void)
{
	struct hak_l25_stats a, b;
	void *p[4];
	int i;

	for (i = 0; i < 4; i++)
		p[i] = malloc(lt_opaque(50000 + (size_t)i * 40000));
	for (i = 0; i < 4; i++)
		free(p[i]);
	a = stats();
	malloc_trim(0);
	b = stats();
	tap_ok(a.cached >= 4 && b.cached == 0 && b.blocks_in_use == a.blocks_in_use - a.cached,
	       "malloc_trim flushes this thread's cache (%zu -> %zu cached, %zu -> %zu in use)",
	       a.cached, b.cached, a.blocks_in_use, b.blocks_in_use);
}

/* ---- double frees of cached blocks, in a child ---- */

/*
 * Run fn in a child with stderr to a pipe: 1 when it died of SIGABRT
 * after writing exactly one line that contains want.
 */
static int aborts_with(void (*fn)(void), const char *want, char *line, size_t len)
{
	int fd[2], st, lines = 0;
	ssize_t n, got = 0;
	pid_t pid;

	if (pipe(fd))
		return 0;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(fd[0]);
		dup2(fd[1], 2);
		fn();
		_exit(0);
	}
	close(fd[1]);
	while (got < (ssize_t)len - 1 && (n = read(fd[0], line + got, len - 1 - got)) > 0)
		got += n;
	close(fd[0]);
	line[got] = 0;
	for (ssize_t i = 0; i < got; i++)
		lines += line[i] == '\n';
	if (got && line[got - 1] == '\n')
		line[got - 1] = 0;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 0;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && lines == 1 &&
	       strstr(line, want) != NULL;
}

static void double_free_here(void)
{
	void *volatile p = malloc(lt_opaque(SZ));

	free(p);
	free(p);	/* p is in this thread's cache */
}

static int freed_other;	/* set by free_one_stay once p is freed */

static void *free_one_stay(void *p)
{
	free(p);
	__atomic_store_n(&freed_other, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();	/* the owner never misses: p stays on the remote path */
	return NULL;
}

static void double_free_other(void)
{
	void *volatile p = malloc(lt_opaque(SZ));
	pthread_t t;

	pthread_create(&t, NULL, free_one_stay, p);
	/* t has freed p (it never exits); a fixed sleep lost the race under load */
	while (!__atomic_load_n(&freed_other, __ATOMIC_ACQUIRE))
		usleep(1000);
	free(p);
}

static void test_double_free(void)
{
	char line[512];
	int ok;

	ok = aborts_with(double_free_here, "not a live L2.5 pool block", line, sizeof(line));
	tap_ok(ok, "double free of a block in this thread's cache aborts: \"%s\"", line);
	ok = aborts_with(double_free_other, "not a live L2.5 pool block", line, sizeof(line));
	tap_ok(ok, "double free of a block another thread freed (on the remote path) aborts: \"%s\"",
	       line);
}

/* ---- fork ---- */

static void test_fork(void)
{
	void *p = malloc(lt_opaque(SZ));
	pid_t pid;
	int st;

	free(p);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct hak_l25_stats a = stats();
		void *q = malloc(lt_opaque(SZ));

		memset(q, 1, SZ);
		free(q);
		_exit(a.cached >= 1 && q == p ? 0 : 1);
	}
	tap_ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st),
	       "the child of fork keeps the forking thread's cache and uses it");
	malloc_trim(0);
}

/* ---- the decay and other threads' caches ---- */

#define NIDLE_BLK	4	/* 4 x 112 KiB (116 with a guard page): under the byte cap */

static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static int idle_step;			/* 1: cached, 2: go on, 3: done */
static void *idle_blk[NIDLE_BLK];
static int idle_again, idle_zero, idle_hits;

static void idle_wait(int step)
{
	pthread_mutex_lock(&idle_mu);
	while (idle_step < step)
		pthread_cond_wait(&idle_cv, &idle_mu);
	pthread_mutex_unlock(&idle_mu);
}

static void idle_set(int step)
{
	pthread_mutex_lock(&idle_mu);
	idle_step = step;
	pthread_cond_broadcast(&idle_cv);
	pthread_mutex_unlock(&idle_mu);
}

static void *idle_cacher(void *arg)
{
	struct hak_l25_stats a, b;
	void *q[NIDLE_BLK];
	int i, j;

	(void)arg;
	for (i = 0; i < NIDLE_BLK; i++) {
		idle_blk[i] = malloc(lt_opaque(SZ));
		memset(idle_blk[i], 7, SZ);
	}
	for (i = 0; i < NIDLE_BLK; i++)
		free(idle_blk[i]);
	idle_set(1);
	idle_wait(2);	/* idle, alive, its blocks in its cache */
	a = stats();
	for (i = 0; i < NIDLE_BLK; i++)
		q[i] = malloc(lt_opaque(SZ));
	b = stats();
	idle_hits = b.allocs == a.allocs;
	for (i = 0; i < NIDLE_BLK; i++) {
		const unsigned char *c = q[i];

		for (j = 0; j < NIDLE_BLK; j++)
			idle_again += q[i] == idle_blk[j];
		for (j = 0; j < SZ && !c[j]; j += 512)
			;
		idle_zero += j >= SZ;
		lt_fill(q[i], SZ, 1);
		idle_zero -= !lt_check_sparse(q[i], SZ);
	}
	for (i = 0; i < NIDLE_BLK; i++)
		free(q[i]);
	return NULL;
}

/* Resident pages of the idle thread's blocks. */
static size_t idle_resident(void)
{
	unsigned char vec[(SZ + 4095) / 4096];
	size_t n = 0, j;
	int i;

	for (i = 0; i < NIDLE_BLK; i++) {
		if (mincore(idle_blk[i], SZ, vec))
			return (size_t)-1;
		for (j = 0; j < sizeof(vec); j++)
			n += vec[j] & 1;
	}
	return n;
}

/* This thread's allocator calls for ms: large blocks, each a purge tick. */
static void ticks_for(unsigned ms)
{
	double end = lt_now() + ms / 1000.0;

	do {
		void *p = malloc(lt_opaque(L25_TEST_MAX + 4096));

		*(volatile char *)p = 1;
		free(p);
		usleep(2000);
	} while (lt_now() < end);
}

static void test_idle_purge(void)
{
	const unsigned delay = CONFIG_HAK_PURGE_DELAY_MS;
	const size_t pages = NIDLE_BLK * ((SZ + 4095) / 4096);
	struct hak_l25_stats a, b, c;
	size_t r0, r1, r2;
	pthread_t t;
	double t0, busy;

	malloc_trim(0);
	pthread_create(&t, NULL, idle_cacher, NULL);
	idle_wait(1);
	a = stats();
	r0 = idle_resident();
	t0 = lt_now();
	ticks_for(delay / 2);
	busy = lt_now() - t0;
	b = stats();
	r1 = idle_resident();
	if (busy * 1000 < delay * 3 / 4)
		tap_ok(r0 == pages && r1 == pages && b.tc_purged_bytes == a.tc_purged_bytes,
		       "an idle thread's cached blocks stay resident within the delay "
		       "(%zu, %zu of %zu pages after %.0f ms)", r0, r1, pages, busy * 1000);
	else
		tap_skip("%.0f ms went by, three quarters of the delay or more", busy * 1000);
	ticks_for(delay * 2 + 100);
	c = stats();
	r2 = idle_resident();
	tap_ok(r2 == 0 && c.tc_purged_bytes - a.tc_purged_bytes >= NIDLE_BLK * SZ &&
	       c.blocks_in_use == a.blocks_in_use,
	       "a delay later other threads' passes purged them in its cache: %zu of %zu "
	       "pages resident, %zu KiB purged from caches, %zu -> %zu blocks in use",
	       r2, pages, (c.tc_purged_bytes - a.tc_purged_bytes) >> 10, a.blocks_in_use,
	       c.blocks_in_use);
	idle_set(2);
	pthread_join(t, NULL);
	tap_ok(idle_hits && idle_again == NIDLE_BLK && idle_zero == NIDLE_BLK,
	       "the thread gets them from its cache again (%d of %d, no shard operation: %d), "
	       "zero-filled and usable (%d)", idle_again, NIDLE_BLK, idle_hits, idle_zero);
	malloc_trim(0);
}

/* ---- a trim from another thread ---- */

static struct {
	void *blk;
	double cached_at;	/* lt_now() at the free that cached blk */
	long faults;		/* this thread's, taking blk again and writing it */
	int again;		/* blk handed out again */
	int step, go;		/* atomic: the worker's step, the main's go */
} sp;

static long thread_faults(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) ? -1 : ru.ru_minflt;
}

static void *spare_worker(void *arg)
{
	void *p = NULL, *q;
	long f;
	int i;

	(void)arg;
	for (i = 0; i < 4; i++) {	/* a few misses and hits: its ticks run */
		p = malloc(lt_opaque(SZ));
		memset(p, i, SZ);
		free(p);
		usleep(2000);
	}
	sp.blk = p;
	sp.cached_at = lt_now();
	__atomic_store_n(&sp.step, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&sp.go, __ATOMIC_ACQUIRE) < 1)
		usleep(1000);
	f = thread_faults();
	q = malloc(lt_opaque(SZ));
	memset(q, 9, SZ);
	sp.faults = thread_faults() - f;
	sp.again = q == p;
	free(q);
	sp.cached_at = lt_now();
	__atomic_store_n(&sp.step, 2, __ATOMIC_RELEASE);
	while (__atomic_load_n(&sp.go, __ATOMIC_ACQUIRE) < 2)
		usleep(1000);
	return NULL;
}

static size_t resident_pages(const void *p, size_t n)
{
	unsigned char vec[(SZ + 4095) / 4096 + 1];
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095;
	size_t len = (uintptr_t)p + n - a, k, got = 0;

	if (mincore((void *)a, len, vec))
		return (size_t)-1;
	for (k = 0; k < (len + 4095) / 4096; k++)
		got += vec[k] & 1;
	return got;
}

static void test_trim_spares(void)
{
	unsigned delay = (unsigned)__hak_opt.purge_delay_ms;
	size_t pages = (SZ + 4095) / 4096, before, after;
	double took;
	pthread_t t;

	if (!delay) {
		tap_skip("HAKMEM_PURGE_DELAY_MS=0: no delay to spare blocks within");
		tap_skip("HAKMEM_PURGE_DELAY_MS=0");
		return;
	}
	malloc_trim(0);
	memset(&sp, 0, sizeof(sp));
	pthread_create(&t, NULL, spare_worker, NULL);
	while (__atomic_load_n(&sp.step, __ATOMIC_ACQUIRE) < 1)
		usleep(1000);
	before = resident_pages(sp.blk, SZ);
	malloc_trim(0);
	after = resident_pages(sp.blk, SZ);
	took = lt_now() - sp.cached_at;
	__atomic_store_n(&sp.go, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&sp.step, __ATOMIC_ACQUIRE) < 2)
		usleep(1000);
	if (took * 1000 >= delay / 2)
		tap_skip("the trim came %.0f ms after the free (delay %u ms): the machine "
			 "is too slow to tell", took * 1000, delay);
	else
		tap_ok(before >= pages - 1 && after == before && sp.again && sp.faults == 0,
		       "malloc_trim in another thread spares a block cached %.1f ms before "
		       "(delay %u ms): %zu -> %zu of %zu pages resident, handed out again "
		       "(%d) with %ld faults", took * 1000, delay, before, after, pages,
		       sp.again, sp.faults);
	usleep((delay * 2 + 50) * 1000);
	malloc_trim(0);
	after = resident_pages(sp.blk, SZ);
	tap_ok(after == 0, "and purges it once it sat cached %u ms and more: %zu pages resident",
	       delay * 2 + 50, after);
	__atomic_store_n(&sp.go, 2, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	malloc_trim(0);
}

static volatile int race_stop;

static void *race_trim(void *arg)
{
	unsigned long *n = arg;

	while (!race_stop) {
		hak_l25_release(0);
		(*n)++;
	}
	return NULL;
}

static void test_purge_race(void)
{
	struct hak_l25_stats a, b;
	unsigned long trims = 0, ops = 0, bad = 0;
	pthread_t t;
	double end;
	void *p[3];
	int i;

	a = stats();
	race_stop = 0;
	pthread_create(&t, NULL, race_trim, &trims);
	end = lt_now() + 0.3;
	while (lt_now() < end || trims < 20) {
		/* taken from the cache while the trim may be purging them */
		for (i = 0; i < 3; i++) {
			p[i] = malloc(lt_opaque(SZ - (size_t)i * 20000));
			lt_fill(p[i], SZ - (size_t)i * 20000, 1);
		}
		sched_yield();	/* live: a trim must leave them alone */
		for (i = 0; i < 3; i++) {
			bad += !lt_check_sparse(p[i], SZ - (size_t)i * 20000);
			free(p[i]);
		}
		sched_yield();	/* cached: a trim purges them */
		ops++;
	}
	race_stop = 1;
	pthread_join(t, NULL);
	b = stats();
	tap_ok(!bad && b.tc_purged_bytes > a.tc_purged_bytes,
	       "another thread purging every cached block while this one reuses them: "
	       "%lu of %lu rounds lost data, %lu trims, %zu KiB purged from caches",
	       bad, ops, trims, (b.tc_purged_bytes - a.tc_purged_bytes) >> 10);
	malloc_trim(0);
}

int main(void)
{
	if (!TC_N)
		tap_skip_all("CONFIG_HAK_L25_TCACHE is 0: no thread cache");
	tap_plan(0);
	test_hit();
	test_limits();
	test_cross_thread();
	test_thread_exit();
	test_trim();
	test_double_free();
	test_fork();
	test_idle_purge();
	test_trim_spares();
	test_purge_race();
	tap_finish();
}
