// SPDX-License-Identifier: MIT
/*
 * Free-list sharding (HAKMEM_SHARD_MIN, lib/heap.c shard_alloc and
 * shard_free): the program re-executes itself with HAKMEM_SHARD_MIN=512
 * and no bin for those classes (HAKMEM_SHARD_CAP and _BYTES 0), then
 *   the 1,200 B class has capacity 0 and the 250 B class a bin;
 *   a block freed and allocated again comes back (its slab's list, LIFO);
 *   a chain of 3,000 blocks freed whole leaves no byte of the class out
 *   of its slabs (no more bytes out than before the chain: a purge tick
 *   may have sent other classes' bins home meanwhile), and gives back all
 *   its slabs but the one kept empty and the heap's spares (HAK_SPARE_PAGES);
 *   the next chain, of the 2,500 B class and as many bytes, takes those
 *   pages: the bytes in slabs do not grow past the first chain's;
 *   a second thread frees half of a chain (remote frees), the first
 *   allocates again and finds every byte it wrote in the other half;
 *   a double free of a block on its slab's list is reported (a child,
 *   SIGABRT).
 * Where membarrier(2) is refused no class is sharded, and with fail-fast
 * on the sharded paths are not taken: the program skips.
 */
#include <pthread.h>
#include <linux/membarrier.h>
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "size_class.h"
#include "tcache.h"
#include "heap.h"

#define ENV		"HAKMEM_SHARD_MIN"
#define CHAIN		3000
#define BIG		1200
#define OTHER		2500

static unsigned char *blk[CHAIN];

static void fill(unsigned char *p, size_t n, unsigned k)
{
	memset(p, (int)(k * 7 + 1) & 0xff, n);
}

static bool intact(const unsigned char *p, size_t n, unsigned k)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ((k * 7 + 1) & 0xff))
			return false;
	return true;
}

static void *free_half(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < CHAIN; i += 2)
		hak_free(blk[i]);
	return NULL;
}

/* A double free of a sharded block in a child: true when it aborted. */
static bool double_free_aborts(void)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return false;
	if (!pid) {
		void *keep = hak_malloc(BIG), *p = hak_malloc(BIG);

		(void)keep;
		freopen("/dev/null", "w", stderr);
		hak_free(p);
		hak_free(ct_launder(p));
		_exit(0);
	}
	return waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
	       WTERMSIG(status) == SIGABRT;
}

int main(int argc, char **argv)
{
	struct hak_stats a, b, c;
	size_t peak;
	unsigned i;
	bool ok = true;
	void *p, *q;
	pthread_t t;

	(void)argc;
	/* once, whatever the caller's environment says */
	if (!getenv("HAK_SELFTEST_SHARD_CHILD")) {
		setenv("HAK_SELFTEST_SHARD_CHILD", "1", 1);
		setenv(ENV, "512", 1);
		setenv("HAKMEM_SHARD_CAP", "0", 1);
		setenv("HAKMEM_SHARD_BYTES", "0", 1);
		execv("/proc/self/exe", argv);
		return 1;
	}
	tap_plan(0);
	/* the checks' walks of lists need the generic paths (shard_alloc) */
	if (hak_ff_level())
		tap_skip_all("fail-fast is on: the sharded paths are not taken");
	hak_free(hak_malloc(16));	/* attach */
	if (!__hak_sharded_class(__hak_class_of(BIG))) {
		/* the decay pass's fence: without it nothing is sharded */
		if (syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) < 0)
			tap_skip_all("membarrier(2) refused: no class is sharded");
		tap_ok(0, "the %u B class is sharded", BIG);
		tap_finish();
	}
	tap_ok(__hak_tcache_cap_set(__hak_class_of(BIG)) == 0 &&
	       __hak_tcache_cap_set(__hak_class_of(250)) > 0,
	       "the %u B class has no bin, the 250 B class has one", BIG);

	p = hak_malloc(BIG);
	hak_free(p);
	q = hak_malloc(BIG);
	tap_ok(p == q, "a block freed comes back at the next malloc of its class");
	hak_free(q);

	hak_stats_get(&a);
	for (i = 0; i < CHAIN; i++)
		blk[i] = hak_malloc(BIG);
	hak_stats_get(&b);
	peak = b.slab_bytes;
	for (i = 0; i < CHAIN; i++)
		hak_free(blk[i]);
	hak_stats_get(&c);
	/* at most: a purge tick in between may have sent other bins home */
	tap_ok(c.small_in_use <= a.small_in_use,
	       "a chain freed whole: bytes out of slabs %zu, at most as before it (%zu)",
	       c.small_in_use, a.small_in_use);
	/* the heap's spare slabs (one page each here) wait for the next chain */
	tap_ok(c.slabs_released - b.slabs_released + 1 + HAK_SPARE_PAGES >=
	       b.slabs_taken - a.slabs_taken,
	       "its slabs went back or wait as spares: %llu taken, %llu released, %u spare at most",
	       (unsigned long long)(b.slabs_taken - a.slabs_taken),
	       (unsigned long long)(c.slabs_released - b.slabs_released), HAK_SPARE_PAGES);

	for (i = 0; i < CHAIN * BIG / OTHER; i++)
		blk[i] = hak_malloc(OTHER);
	hak_stats_get(&b);
	tap_ok(b.slab_bytes <= peak + (2u << 16),
	       "the next chain (%u B) reuses those pages: %zu bytes in slabs, %zu before",
	       OTHER, b.slab_bytes, peak);
	for (i = 0; i < CHAIN * BIG / OTHER; i++)
		hak_free(blk[i]);

	for (i = 0; i < CHAIN; i++) {
		blk[i] = hak_malloc(BIG);
		fill(blk[i], BIG, i);
	}
	if (pthread_create(&t, NULL, free_half, NULL) == 0) {
		pthread_join(t, NULL);
		for (i = 0; i < CHAIN; i += 2) {
			blk[i] = hak_malloc(BIG);
			fill(blk[i], BIG, i);
		}
		for (i = 0; i < CHAIN; i++)
			ok &= intact(blk[i], BIG, i);
		tap_ok(ok, "remote frees of half a chain, allocated again: every block intact");
	} else {
		tap_skip("no second thread");
	}
	for (i = 0; i < CHAIN; i++)
		hak_free(blk[i]);

	tap_ok(double_free_aborts(), "a double free of a %u B block is reported (SIGABRT)", BIG);
	tap_finish();
}
