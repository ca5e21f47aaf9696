// SPDX-License-Identifier: MIT
/*
 * l25_fit: within a class, a request takes the free resident block whose
 * span (the most pages its requests asked for since it was last clean)
 * covers it most tightly, not just the newest free block.
 *
 * Two blocks of the pool's largest class, A for a request of the whole
 * class and B for the shortest request of the class, every page written,
 * are freed by a thread that never allocated a pool block (the lock-free
 * remote path, so the allocating thread's cache is not involved; its next
 * miss collects them, B last, so B is on top of the region's stack):
 *  - a request of the whole class gets A back (B's tail pages were never
 *    written), every page of it still resident;
 *  - with both free again (A now on top), the shortest request gets B
 *    (its span fits exactly), leaving A for the next long one.
 * Taking the newest block, as before, failed both.
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

int main(void)
{
	size_t top = 0, prev = 0, lo, hi;
	struct hak_l25_stats st0, st1;
	unsigned c;
	char *a, *b, *p, *q;
	long res;

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

	tap_plan(4);
	a = malloc(lt_opaque(hi));
	b = malloc(lt_opaque(lo));
	if (!a || !b || __hak_ssmap_kind((uintptr_t)a) != HAK_SSMAP_L25 ||
	    __hak_ssmap_kind((uintptr_t)b) != HAK_SSMAP_L25) {
		tap_bail("blocks of %zu and %zu bytes are not pool blocks", hi, lo);
	}
	memset(a, 1, hi);
	memset(b, 2, lo);
	hak_l25_stats(&st0);
	if (free_remote(a, b)) {
		tap_bail("pthread_create failed");
	}

	p = malloc(lt_opaque(hi));
	res = resident_pages(p, hi);
	hak_l25_stats(&st1);
	tap_ok(p == a, "a %zu KiB request takes the block that held one (%p), not the newest (%p): %p",
	       hi >> 10, (void *)a, (void *)b, (void *)p);
	if (st1.purged_bytes != st0.purged_bytes)
		tap_skip("the pool purged in between (loaded machine)");
	else
		tap_ok(p == a && res == (long)(hi / 4096),
		       "and all %zu of its pages are resident (%ld)", hi / 4096, res);

	if (free_remote(p, NULL)) {
		tap_bail("pthread_create failed");
	}
	q = malloc(lt_opaque(lo));
	tap_ok(q == b, "a %zu-byte request takes the block whose span fits it (%p), not the newest (%p): %p",
	       lo, (void *)b, (void *)a, (void *)q);
	p = malloc(lt_opaque(hi));
	tap_ok(p == a, "and the next %zu KiB request the long one: %p", hi >> 10, (void *)p);
	free(p);
	free(q);
	tap_finish();
}
