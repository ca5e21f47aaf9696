// SPDX-License-Identifier: MIT
/*
 * api_static: a program linked with -static that calls mallopt, and the
 * other names of glibc's malloc object a program can reach (__libc_mallopt,
 * __libc_mallinfo).
 *
 * In libc.a these live in malloc.o with glibc's malloc, free, calloc and
 * the rest: a reference to any of them that hakmem does not define pulls
 * that object in, and the link failed ("multiple definition of `malloc'";
 * rv31). The test is that this program links at all, and then that
 *  - malloc is hakmem's (the statistics count its block);
 *  - mallopt gives glibc's answers: 1 for what it accepts (hakmem ignores
 *    glibc's tunables), 0 for an M_MXFAST glibc refuses;
 *  - __libc_mallinfo is mallinfo (hakmem's figures).
 *
 * Also built against glibc alone (core_test.h): the same answers there.
 */
#include "core_test.h"
#if CT_HAKMEM
# include <hakmem/hakmem.h>
#endif

/* glibc exports these (GLIBC_2.2.5) without declaring them. */
int __libc_mallopt(int param, int value);
struct mallinfo __libc_mallinfo(void);

/* glibc's largest M_MXFAST: 80 * sizeof(size_t) / 4 */
#define MXFAST_MAX	((int)(80 * sizeof(size_t) / 4))

int main(void)
{
	void *p;
	struct mallinfo a, b;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	tap_plan(5);
	p = ct_launder(malloc(ct_opaque(1000)));
#if CT_HAKMEM
	{
		struct hak_stats st;

		hak_stats_get(&st);
		tap_ok(p && st.small_in_use >= 1000,
		       "linked -static: malloc is hakmem's (%zu bytes of small blocks out)",
		       st.small_in_use);
	}
#else
	tap_ok(p != NULL, "linked -static: malloc");
#endif
	tap_ok(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1 && mallopt(M_ARENA_MAX, 1) == 1 &&
	       mallopt(M_PERTURB, 0x5a) == 1 && mallopt(M_TOP_PAD, -1) == 1 &&
	       mallopt(-100, 1) == 1,
	       "mallopt accepts glibc's tunables and unknown ones (1)");
	tap_ok(mallopt(M_MXFAST, 0) == 1 && mallopt(M_MXFAST, MXFAST_MAX) == 1 &&
	       mallopt(M_MXFAST, -1) == 0 && mallopt(M_MXFAST, MXFAST_MAX + 1) == 0,
	       "mallopt(M_MXFAST): 1 within 0..%d, 0 outside, as glibc", MXFAST_MAX);
	tap_ok(__libc_mallopt(M_MXFAST, MXFAST_MAX + 1) == 0 &&
	       __libc_mallopt(M_MMAP_THRESHOLD, 4096) == 1,
	       "__libc_mallopt is mallopt");
	/* nothing allocates between the calls; the purge thread may move one */
	for (int i = 0; i < 10; i++) {
		a = mallinfo();
		b = __libc_mallinfo();
		if (!memcmp(&a, &b, sizeof(a)))
			break;
	}
	tap_ok(!memcmp(&a, &b, sizeof(a)) && (!CT_HAKMEM || b.uordblks >= 1000),
	       "__libc_mallinfo is mallinfo (uordblks %d)", b.uordblks);
#pragma GCC diagnostic pop
	free(p);
	tap_finish();
}
