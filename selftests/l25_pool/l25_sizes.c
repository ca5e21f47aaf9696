// SPDX-License-Identifier: MIT
/*
 * l25_sizes: which path each size takes and what the pool hands out.
 *  - every boundary: 32 KiB +/- 1, both sides of each class edge, the
 *    pool's maximum +/- 1: the registry kind, alignment (4 KiB in the
 *    pool, 16 bytes elsewhere), usable size >= request and, in the pool,
 *    a multiple of 8 KiB under 75% waste (25% in the request's own
 *    class; a resident block may come from up to two classes above),
 *    contents kept;
 *  - calloc of a reused (dirty) block is zeroed;
 *  - a request whose class has no resident free block gets a resident
 *    one of a class above (no page fault) rather than a fresh block;
 *  - realloc across small -> mid -> large and back keeps the contents;
 *  - bad frees (interior pointer, double free, region header, usable
 *    size of an interior pointer) abort in a child instead of corrupting;
 *  - ENOMEM when the OS refuses a region (fault-injection builds).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include "l25_test.h"
#include "os.h"

static unsigned kind_of(const void *p)
{
	return __hak_ssmap_kind((uintptr_t)p);
}

static void check_size(size_t n)
{
	void *p = malloc(lt_opaque(n));
	int mid = n > HAK_SMALL_MAX && n <= L25_TEST_MAX;
	unsigned want = mid ? HAK_SSMAP_L25 : n <= HAK_SMALL_MAX ? HAK_SSMAP_SLAB : 0;
	size_t u;
	int ok;

	if (!p) {
		tap_ok(0, "malloc(%zu)", n);
		return;
	}
	u = malloc_usable_size(p);
	lt_fill(p, n, 1);
	ok = kind_of(p) == want && ((uintptr_t)p & 15) == 0 && u >= n &&
	     lt_check_sparse(p, n);
	if (mid)
		ok = ok && ((uintptr_t)p & 4095) == 0 && (u - n) * 4 < n * 3 && u % 8192 == 0;
	tap_ok(ok, "malloc(%zu): %s, usable %zu, %s aligned, contents kept", n,
	       want == HAK_SSMAP_L25 ? "pool" : want ? "small" : "large", u,
	       mid ? "4 KiB" : "16 B");
	free(p);
}

static void test_boundaries(void)
{
	size_t edge;

	check_size(HAK_SMALL_MAX - 1);
	check_size(HAK_SMALL_MAX);
	check_size(HAK_SMALL_MAX + 1);
	/* Class edges: four per doubling, 40 KiB, 48 KiB, ... the maximum. */
	for (edge = 40 << 10; edge <= L25_TEST_MAX; ) {
		size_t step = (size_t)1 << (63 - __builtin_clzl(edge) - 2);

		check_size(edge);
		check_size(edge + 1);
		edge += step;
	}
	check_size(L25_TEST_MAX - 1);
	check_size(L25_TEST_MAX);
	check_size(L25_TEST_MAX + 1);
	check_size(4UL << 20);
}

static void test_calloc_reuse(void)
{
	size_t n = 100 << 10;
	unsigned char *p = malloc(lt_opaque(n)), *q;
	size_t i, bad = 0;

	memset(p, 0xa5, n);
	free(p);
	q = calloc(1, n);
	for (i = 0; q && i < n; i++)
		bad += q[i] != 0;
	tap_ok(q && kind_of(q) == HAK_SSMAP_L25 && bad == 0,
	       "calloc(%zu) after a dirty free: pool block, all zero (%s block)",
	       n, q == p ? "same" : "another");
	free(q);
}

/* One realloc step: contents up to min(old, new) survive. */
static int realloc_step(unsigned char **pp, const void **orig, size_t *len, size_t n)
{
	unsigned char *q = realloc(*pp, lt_opaque(n));
	size_t keep = *len < n ? *len : n;
	int ok;

	if (!q)
		return 0;
	ok = lt_check(q, *orig, keep);
	*pp = q;
	*len = keep;
	return ok;
}

static void test_realloc_borders(void)
{
	static const size_t up[] = {
		100, 20000, 32768, 32769, 40960, 40961, 100000,
		0 /* max */, 1 /* max + 1 */, 1 << 20, 3 << 20,
	};
	static const size_t down[] = {
		1 << 20, 0 /* max + 1 */, 1 /* max */, 200000, 65536, 40000,
		32769, 32768, 30000, 4000, 100,
	};
	unsigned char *p = malloc(16);
	const void *orig = NULL;
	size_t len, i;
	int ok = 1;
	char where[64] = "";

	/* The pattern is keyed to a fixed base, so moves do not change it. */
	static unsigned char key;
	orig = &key;
	len = 3 << 20;
	p = realloc(p, len);
	for (i = 0; i < len; i++)
		p[i] = lt_pat(orig, i);
	/* First shrink to the start of the chain, then walk it. */
	len = 100;
	p = realloc(p, len);
	for (i = 0; i < ARRAY_SIZE(up) && ok; i++) {
		size_t n = up[i] == 0 ? L25_TEST_MAX : up[i] == 1 ? L25_TEST_MAX + 1 : up[i];
		size_t l = len;

		ok = realloc_step(&p, &orig, &l, n);
		/* refill the grown part so the next step checks all of it */
		for (size_t j = l; j < n; j++)
			p[j] = lt_pat(orig, j);
		len = n;
		if (!ok)
			snprintf(where, sizeof(where), " (lost at grow to %zu)", n);
	}
	tap_ok(ok, "realloc grows 100 B -> small -> pool -> large (%zu) keeping contents%s",
	       len, where);
	for (i = 0; i < ARRAY_SIZE(down) && ok; i++) {
		size_t n = down[i] == 0 ? L25_TEST_MAX + 1 : down[i] == 1 ? L25_TEST_MAX : down[i];
		unsigned k;

		ok = realloc_step(&p, &orig, &len, n);
		k = kind_of(p);
		if (ok && n > HAK_SMALL_MAX && n <= L25_TEST_MAX && n > 65536)
			ok = k == HAK_SSMAP_L25 || malloc_usable_size(p) / 2 < n;
		if (!ok)
			snprintf(where, sizeof(where), " (lost at shrink to %zu)", n);
	}
	tap_ok(ok, "realloc shrinks large -> pool -> small -> 100 B keeping contents%s", where);
	free(p);
}

/* Run fn in a child: 1 when it died of SIGABRT. */
static int aborts(void (*fn)(void *), void *arg)
{
	int st;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		if (devnull >= 0)
			dup2(devnull, 2);
		fn(arg);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 0;
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void free_interior(void *p) { free(lt_opaque(4096) + (char *)p); }
static void free_twice(void *p)
{
	void *volatile again = p;

	free(p);
	free(again);
}
static void free_header(void *p) { free((void *)((uintptr_t)p & ~(HAK_SS_SIZE - 1))); }
static void free_odd(void *p) { free((char *)p + lt_opaque(16)); }
static void usable_interior(void *p) { (void)malloc_usable_size((char *)p + lt_opaque(8192)); }
static void realloc_interior(void *p)
{
	void *q = realloc((char *)p + lt_opaque(4096), 70000);

	free(q);
}

static void test_bad_frees(void)
{
	void *p = malloc(lt_opaque(60000));
	void *q = malloc(lt_opaque(60000));
	struct hak_l25_stats a, b;

	hak_l25_stats(&a);
	tap_ok(aborts(free_interior, p), "free of a pointer 4 KiB into a pool block aborts");
	tap_ok(aborts(free_odd, p), "free of a pointer 16 B into a pool block aborts");
	tap_ok(aborts(free_twice, p), "double free of a pool block aborts");
	tap_ok(aborts(free_header, p), "free of a pool region's header aborts");
	tap_ok(aborts(usable_interior, p), "malloc_usable_size of an interior pointer aborts");
	tap_ok(aborts(realloc_interior, p), "realloc of an interior pointer aborts");
	hak_l25_stats(&b);
	tap_ok(a.blocks_in_use == b.blocks_in_use && malloc_usable_size(p) >= 60000,
	       "the parent's pool is untouched (%zu blocks in use)", b.blocks_in_use);
	free(q);
	free(p);
}

static void test_enomem(void)
{
	void *blocks[512];
	size_t n = 0, i;
	int err = 0;
	size_t sz = L25_TEST_MAX;

	if (!IS_ENABLED(CONFIG_HAK_FAULT_INJECT)) {
		tap_skip("ENOMEM from the pool needs CONFIG_HAK_FAULT_INJECT");
		return;
	}
	malloc_trim(0);
	hak_test_os_fail(HAK_OS_MAP, 0, 100000);
	while (n < ARRAY_SIZE(blocks)) {
		errno = 0;
		blocks[n] = malloc(lt_opaque(sz));
		if (!blocks[n]) {
			err = errno;
			break;
		}
		n++;
	}
	hak_test_os_fail(HAK_OS_MAP, 0, 0);
	tap_ok(n < ARRAY_SIZE(blocks) && err == ENOMEM,
	       "refused region: malloc(%zu) is NULL with ENOMEM after %zu blocks", sz, n);
	for (i = 0; i < n; i++)
		free(blocks[i]);
	blocks[0] = malloc(lt_opaque(sz));
	tap_ok(blocks[0] != NULL, "the pool works again once the OS gives memory");
	free(blocks[0]);
}

static void *free_in_thread(void *p)
{
	free(p);
	return NULL;
}

static void test_borrow(void)
{
	struct hak_l25_stats a, b;
	pthread_t t;
	void *p, *q;

	malloc_trim(0);
	p = malloc(lt_opaque(50000));	/* the 56 KiB class */
	memset(p, 3, 50000);
	/* Freed by a thread that exits: its cache goes back, p is free and resident. */
	pthread_create(&t, NULL, free_in_thread, p);
	pthread_join(t, NULL);
	hak_l25_stats(&a);
	q = malloc(lt_opaque(40000));	/* the 40 KiB class: no region of its own */
	hak_l25_stats(&b);
	tap_ok(q == p && malloc_usable_size(q) >= 50000 && b.region_maps == a.region_maps,
	       "malloc(40000) takes the resident 56 KiB block (%p, was %p; usable %zu, "
	       "%zu regions mapped)", q, p, malloc_usable_size(q), b.region_maps - a.region_maps);
	free(q);
	malloc_trim(0);
}

int main(void)
{
	tap_plan(0);
	test_boundaries();
	test_calloc_reuse();
	test_borrow();
	test_realloc_borders();
	test_bad_frees();
	test_enomem();
	tap_finish();
}
