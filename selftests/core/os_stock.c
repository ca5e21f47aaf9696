// SPDX-License-Identifier: MIT
/*
 * os_stock: the OS layer's stock of address space (lib/os.c
 * __hak_os_stock_take), which superslabs come from. Pieces are aligned to
 * their length, distinct, zeroed and writable; the first refill maps one
 * piece and every later one HAK_OS_STOCK_MAX, so 100 superslabs cost 5 mmap
 * calls, not 100; the mapped bytes grow by one piece per take (the untouched rest
 * of a refill is not counted), and so does what a memory limit sees; a
 * piece unmaps alone; a drop unmaps the untouched rest. An RLIMIT_DATA
 * lowered under 64 GiB after the stock grew (rv35: the shift was raised to
 * HAK_OS_STOCK_MAX and never lowered, so every refill after a program's
 * setrlimit still mapped 64 MiB) makes the next refill 4 pieces at most.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include "core_test.h"
#include "os.h"

#define MIB	((size_t)1 << 20)
#define PIECE	(2 * MIB)
#define N	100
/* Takes that leave 3 pieces of the second refill (1 + HAK_OS_STOCK_MAX). */
#define FIRST	(1 + HAK_OS_STOCK_MAX - 3)

/* Is [p, p + len) mapped at all? msync fails with ENOMEM on a hole. */
static int mapped(void *p, size_t len)
{
	return msync(p, len, MS_ASYNC) == 0 || errno != ENOMEM;
}

int main(void)
{
	static unsigned char *v[N];
	struct hak_os_stock st = { 0 }, lst = { 0 };
	size_t m0, lim;
	unsigned k, refills, want = 0, have = 0;
	int ok = 1, counted = 1;
	unsigned char *tail;

	tap_plan(7);

	m0 = __hak_os_mapped();
	for (k = 0; k < N; k++) {
		v[k] = __hak_os_stock_take(&st, PIECE);
		ok &= v[k] && ((uintptr_t)v[k] & (PIECE - 1)) == 0 &&
		      v[k][0] == 0 && v[k][PIECE - 1] == 0;
		if (!v[k])
			break;
		v[k][0] = v[k][PIECE - 1] = (unsigned char)k;
		for (unsigned j = 0; ok && j < k; j++)
			ok = v[j] != v[k];
		counted &= __hak_os_mapped() - m0 == (size_t)(k + 1) * PIECE;
	}
	tap_ok(ok && k == N, "%u pieces of 2 MiB: aligned, distinct, zeroed, writable", N);
	tap_ok(counted, "the mapped bytes grow by one piece per take, not per refill");

	/* 1 + 32 + 32 + 32 + 32 >= 100 */
	for (refills = 0, k = 0; want < N; refills++, k++)
		want += k ? HAK_OS_STOCK_MAX : 1;
	tap_ok(st.refills == refills, "%u pieces took %lu mmap calls (%u expected)",
	       N, st.refills, refills);

	/* A piece goes back alone; its neighbours stay. */
	__hak_os_unmap(v[50], PIECE);
	tap_ok(!mapped(v[50], PIECE) && mapped(v[49], PIECE) && mapped(v[51], PIECE) &&
	       v[49][0] == 49 && v[51][PIECE - 1] == 51,
	       "a piece unmaps alone, its neighbours keep their contents");
	v[50] = NULL;

	/* The drop unmaps what is left of the last refill, and only that. */
	tail = (unsigned char *)st.next;
	have = st.left;
	__hak_os_stock_drop(&st, PIECE);
	tap_ok(have > 0 && st.left == 0 && !mapped(tail, (size_t)have * PIECE) &&
	       mapped(v[N - 1], PIECE) && v[N - 1][0] == (unsigned char)(N - 1),
	       "a drop unmaps the %u untouched pieces, the ones taken stay", have);
	for (k = 0; k < N; k++)
		if (v[k])
			__hak_os_unmap(v[k], PIECE);

	/*
	 * A hard memory limit counts taken pieces only: with room for 2 more,
	 * 2 takes succeed and the 3rd fails with ENOMEM although the stock
	 * still holds a piece; lifted, the same stock goes on.
	 */
	lim = __hak_os_limit();
	for (k = 0; k < FIRST; k++)	/* refills of 1 and 32: 3 left */
		v[k] = __hak_os_stock_take(&lst, PIECE);
	for (ok = 1, k = 0; k < FIRST; k++)
		ok &= v[k] != NULL;
	ok &= lst.left == 3;
	__hak_os_set_limit(__hak_os_mapped() + 2 * PIECE + PIECE / 2, true);
	for (k = FIRST; k < FIRST + 2; k++) {
		v[k] = __hak_os_stock_take(&lst, PIECE);
		ok &= v[k] != NULL;
	}
	errno = 0;
	v[FIRST + 2] = __hak_os_stock_take(&lst, PIECE);
	ok &= !v[FIRST + 2] && errno == ENOMEM && lst.left == 1;
	__hak_os_set_limit(lim, false);
	v[FIRST + 2] = __hak_os_stock_take(&lst, PIECE);
	ok &= v[FIRST + 2] && lst.left == 0 && lst.refills == 2;
	v[FIRST + 3] = NULL;
	tap_ok(ok, "a hard limit counts taken pieces: the 3rd past it fails with ENOMEM "
	       "with a piece still in stock, which a lifted limit hands out");
	for (k = 0; k < FIRST + 4; k++)
		if (v[k])
			__hak_os_unmap(v[k], PIECE);
	__hak_os_stock_drop(&lst, PIECE);

	/*
	 * The limit lowered between two refills: RLIMIT_DATA (RLIMIT_AS would
	 * give up the page map, lib/interpose.c), 32 GiB, far above what this
	 * process uses, under the 64 GiB that count as tight.
	 */
	{
		struct hak_os_stock tst = { 0 };
		struct rlimit old, rl;
		unsigned grown, lowered;

		if (getrlimit(RLIMIT_DATA, &old) || old.rlim_cur < (64ULL << 30) ||
		    old.rlim_max < (32ULL << 30)) {
			tap_skip("RLIMIT_DATA is under 64 GiB already");
			tap_finish();
		}
		ok = __hak_os_stock_fill(&tst, PIECE);	/* 1 piece; the next refill 32 */
		__hak_os_stock_drop(&tst, PIECE);
		ok &= __hak_os_stock_fill(&tst, PIECE);
		grown = tst.left;
		__hak_os_stock_drop(&tst, PIECE);
		rl = old;
		rl.rlim_cur = 32ULL << 30;
		ok &= !setrlimit(RLIMIT_DATA, &rl);
		ok &= __hak_os_stock_fill(&tst, PIECE);
		lowered = tst.left;
		__hak_os_stock_drop(&tst, PIECE);
		setrlimit(RLIMIT_DATA, &old);
		tap_ok(ok && grown == HAK_OS_STOCK_MAX && lowered <= 4,
		       "RLIMIT_DATA lowered to 32 GiB after a refill of %u pieces: the next maps "
		       "%u (at most 4)", grown, lowered);
	}
	tap_finish();
}
