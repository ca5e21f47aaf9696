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
 *  - fork: the child keeps the forking thread's cache and can use it.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include "l25_test.h"

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
	tap_finish();
}
