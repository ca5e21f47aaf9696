// SPDX-License-Identifier: MIT
/*
 * l25_fit: within a class, a request takes the newest free resident block
 * when that block's span (the most pages its requests asked for since it
 * was last clean) covers it, and otherwise the free block whose span covers
 * it most tightly, not the newest one (whose tail pages were never written).
 *
 * Three blocks of the pool's largest class, for the longest (A), a middle
 * (M) and the shortest (B) request of the class, every page written, are
 * freed by a thread that never allocated a pool block (the lock-free
 * remote path, so the allocating thread's cache is not involved; its next
 * miss collects them in index order, B last, on top of the stack):
 *  - a middle request gets M (B is newest but too short, A covers too
 *    but more loosely), every page of it resident;
 *  - a longest request then gets A, every page resident;
 *  - with A free again, a shortest request gets A (the newest, and it
 *    covers).
 * Taking the newest block, as before, failed the first two.
 */
#include <pthread.h>
#include <sys/mman.h>
#include "l25_test.h"

static void *to_free[2];

static void *remote_free(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2; i++)
		if (to_free[i])
			free(to_free[i]);
	return NULL;
}

static int free_remote(void *a, void *b)
{
	pthread_t t;

	to_free[0] = a;
	to_free[1] = b;
	if (pthread_create(&t, NULL, remote_free, NULL))
		return -1;
	return pthread_join(t, NULL) ? -1 : 0;
}

/* Pages of [p, p + n) resident, or -1. */
static long resident_pages(void *p, size_t n)
{
	unsigned char vec[512];
	size_t pages = (n + 4095) / 4096;
	long r = 0;

	if (pages > sizeof(vec) || mincore(p, n, vec))
		return -1;
	for (size_t i = 0; i < pages; i++)
		r += vec[i] & 1;
	return r;
}

static void check_resident(void *p, size_t n)
{
	long res = resident_pages(p, n);

	tap_ok(res == (long)((n + 4095) / 4096), "all %zu pages of it resident (%ld)",
	       (n + 4095) / 4096, res);
}

int main(void)
{
	size_t top = 0, prev = 0, lo, mid, hi;
	struct hak_l25_stats st0, st1;
	unsigned c;
	char *a, *m, *b, *p, *p1, *p2, *p3;

	/* the largest class within the pool's range, and the one below it */
	for (c = 0; ; c++) {
		size_t s = ((size_t)(c & 3) + 5) << ((c >> 2) + 13);

		if (s > L25_TEST_MAX)
			break;
		prev = top;
		top = s;
	}
	if (!prev)
		prev = 32768;
	hi = top;
	lo = prev + 1;
	mid = (prev + hi) / 2 & ~(size_t)4095;

	tap_plan(6);
	a = malloc(lt_opaque(hi));
	m = malloc(lt_opaque(mid));
	b = malloc(lt_opaque(lo));
	if (!a || !m || !b || __hak_ssmap_kind((uintptr_t)a) != HAK_SSMAP_L25 ||
	    __hak_ssmap_kind((uintptr_t)m) != HAK_SSMAP_L25 ||
	    __hak_ssmap_kind((uintptr_t)b) != HAK_SSMAP_L25)
		tap_bail("blocks of %zu, %zu and %zu bytes are not pool blocks", hi, mid, lo);
	memset(a, 1, hi);
	memset(m, 2, mid);
	memset(b, 3, lo);
	hak_l25_stats(&st0);
	if (free_remote(a, m) || free_remote(b, NULL))
		tap_bail("pthread_create failed");

	p = p1 = malloc(lt_opaque(mid));
	tap_ok(p == m, "a %zu-byte request takes the block whose span fits it (%p), not the newest (%p) nor the longest (%p): %p",
	       mid, (void *)m, (void *)b, (void *)a, (void *)p);
	hak_l25_stats(&st1);
	if (st1.purged_bytes != st0.purged_bytes)
		tap_skip("the pool purged in between (loaded machine)");
	else
		check_resident(p, mid);
	p = p2 = malloc(lt_opaque(hi));
	tap_ok(p == a, "a %zu-byte request takes the block that held one (%p), not the newest (%p): %p",
	       hi, (void *)a, (void *)b, (void *)p);
	hak_l25_stats(&st1);
	if (st1.purged_bytes != st0.purged_bytes)
		tap_skip("the pool purged in between (loaded machine)");
	else
		check_resident(p, hi);

	if (free_remote(p2, NULL))
		tap_bail("pthread_create failed");
	p = p3 = malloc(lt_opaque(lo));
	tap_ok(p == a, "a %zu-byte request takes the newest block when it covers it (%p): %p",
	       lo, (void *)a, (void *)p);
	p = malloc(lt_opaque(lo));
	tap_ok(p == b, "and the next one the block of its own length (%p): %p", (void *)b, (void *)p);
	free(p);
	free(p3);
	free(p1);
	tap_finish();
}
