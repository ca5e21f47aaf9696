// SPDX-License-Identifier: MIT
/*
 * errno_table: every row of the errno table in Documentation/bad-input.md.
 *
 * One test point per row: the call, the failure (or the success that must
 * keep errno), the return value and errno afterwards. errno is set to EDOM
 * before each call, so "unchanged" is seen. The exhaustion rows run in a
 * child whose address space is limited (RLIMIT_AS) to what it uses plus
 * 64 MiB, and call the function until it fails.
 *
 * The same source is built without hakmem and run against the C library's
 * malloc (errno_glibc.sh), which proves the rows the table marks as
 * glibc's behaviour. Rows where hakmem deliberately differs from glibc
 * 2.36 (or that glibc 2.36 lacks) check hakmem's behaviour in a hakmem
 * build and glibc's own in the other, and say so.
 */
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "core_test.h"

#if CT_HAKMEM
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t align, size_t size);
#endif

#define SENTINEL	EDOM

/*
 * Called through a volatile pointer: gcc knows posix_memalign as a builtin
 * that writes only *memptr, and would fold "errno = X; call; read errno"
 * into X.
 */
static int (*volatile const pm)(void **, size_t, size_t) = posix_memalign;

static size_t page;

static void row(int cond, const char *call, const char *fail, const char *got_ret, int err,
		int want_err)
{
	tap_ok(cond && err == want_err, "%-40s %-28s -> %s, errno %s (got errno %d)", call, fail,
	       got_ret, want_err == SENTINEL ? "unchanged" : want_err == ENOMEM ? "ENOMEM" :
	       want_err == EINVAL ? "EINVAL" : "?", err);
}

/* A NULL-returning failure: NULL and errno as wanted. */
#define ROW_NULL(call, fail, want) do {					\
	void *__p;							\
	int __e;							\
	errno = SENTINEL;						\
	__p = (call);							\
	__e = errno;							\
	row(__p == NULL, #call, fail, "NULL", __e, want);		\
	free(__p);							\
} while (0)

/* A success that must leave errno alone. */
#define ROW_OK(call, fail) do {						\
	void *__p;							\
	int __e;							\
	errno = SENTINEL;						\
	__p = (call);							\
	__e = errno;							\
	row(__p != NULL, #call, fail, "a block", __e, SENTINEL);	\
	free(__p);							\
} while (0)

static void size_rows(void)
{
	const size_t max = ct_opaque(SIZE_MAX);
	const size_t pd1 = ct_opaque((size_t)PTRDIFF_MAX + 1);
	const size_t half = ct_opaque(SIZE_MAX / 2);
	const size_t mpage = ct_opaque(SIZE_MAX - page + 2);
	const size_t m100 = ct_opaque(SIZE_MAX - 100);
	const size_t top = ct_opaque(SIZE_MAX / 2 + 1);	/* 2^63 */
	void *p = malloc(100), *q = (void *)&q, *keep;
	int r, e;

	memset(p, 0x5a, 100);
	ROW_NULL(malloc(max), "size > PTRDIFF_MAX", ENOMEM);
	ROW_NULL(malloc(pd1), "size = PTRDIFF_MAX + 1", ENOMEM);
	ROW_NULL(calloc(half, 3), "nmemb * size overflows", ENOMEM);
	ROW_NULL(calloc(1, max), "size > PTRDIFF_MAX", ENOMEM);
	ROW_NULL(realloc(NULL, max), "size > PTRDIFF_MAX", ENOMEM);
	keep = p;
	ROW_NULL(ct_realloc(p, max), "size > PTRDIFF_MAX", ENOMEM);
	ROW_NULL(ct_reallocarray(p, half, 3), "nmemb * size overflows", ENOMEM);
	tap_ok(((unsigned char *)keep)[0] == 0x5a && ((unsigned char *)keep)[99] == 0x5a,
	       "a failed realloc/reallocarray leaves the block intact");

	errno = SENTINEL;
	r = pm(&q, 24, 10);
	e = errno;
	row(r == EINVAL && q == (void *)&q, "posix_memalign(&q, 24, 10)", "align not a power of two",
	    "EINVAL, q untouched", e, SENTINEL);
	errno = SENTINEL;
	r = pm(&q, 0, 10);
	e = errno;
	row(r == EINVAL && q == (void *)&q, "posix_memalign(&q, 0, 10)", "align 0", "EINVAL", e,
	    SENTINEL);
	errno = SENTINEL;
	r = pm(&q, 4, 10);
	e = errno;
	row(r == EINVAL && q == (void *)&q, "posix_memalign(&q, 4, 10)", "align < sizeof(void *)",
	    "EINVAL", e, SENTINEL);
	errno = SENTINEL;
	r = pm(&q, 64, max);
	e = errno;
	row(r == ENOMEM && q == (void *)&q, "posix_memalign(&q, 64, SIZE_MAX)",
	    "size > PTRDIFF_MAX", "ENOMEM, q untouched", e, ENOMEM);
	errno = SENTINEL;
	r = pm(&q, 4096, m100);
	e = errno;
	row(r == ENOMEM && q == (void *)&q, "posix_memalign(&q, 4096, SIZE_MAX - 100)",
	    "overflows when rounded", "ENOMEM", e, ENOMEM);

	ROW_NULL(aligned_alloc(64, max), "size > PTRDIFF_MAX", ENOMEM);
	ROW_NULL(memalign(64, max), "size > PTRDIFF_MAX", ENOMEM);
	ROW_NULL(memalign(4096, m100), "overflows when rounded", ENOMEM);
	ROW_NULL(memalign(top + 1, 10), "align > 2^63", EINVAL);
	ROW_NULL(valloc(max), "size > PTRDIFF_MAX", ENOMEM);
	ROW_NULL(valloc(m100), "overflows when rounded", ENOMEM);
	ROW_NULL(pvalloc(max), "size > PTRDIFF_MAX", ENOMEM);
	ROW_NULL(pvalloc(mpage), "overflows when rounded", ENOMEM);

	/* alignments glibc's memalign accepts and rounds */
	errno = SENTINEL;
	q = memalign(ct_opaque(24), 100);
	e = errno;
	row(q && ct_is_aligned(q, 32), "memalign(24, 100)", "align not a power of two",
	    "a block aligned to 32", e, SENTINEL);
	free(q);
	ROW_OK(memalign(ct_opaque(0), 100), "align 0");

	/* aligned_alloc with a bad alignment: glibc 2.36 is memalign, hakmem (and glibc 2.38+) EINVAL */
	if (CT_HAKMEM) {
		ROW_NULL(aligned_alloc(ct_opaque(24), 100), "align not a power of two [2.38]", EINVAL);
		ROW_NULL(aligned_alloc(ct_opaque(0), 100), "align 0 [2.38]", EINVAL);
	} else {
		ROW_OK(aligned_alloc(ct_opaque(24), 100), "align not a power of two [2.36]");
		ROW_OK(aligned_alloc(ct_opaque(0), 100), "align 0 [2.36]");
	}
	free(p);
}

static void keep_rows(void)
{
	void *p, *q = NULL;
	size_t u;
	int r, e;

	ROW_OK(malloc(0), "size 0");
	ROW_OK(calloc(0, 0), "size 0");
	errno = SENTINEL;
	r = pm(&q, 64, 100);
	e = errno;
	row(r == 0 && ct_is_aligned(q, 64), "posix_memalign(&q, 64, 100)", "success", "0", e,
	    SENTINEL);
	free(q);

	errno = SENTINEL;
	free(NULL);
	row(1, "free(NULL)", "-", "-", errno, SENTINEL);
	p = malloc(100);
	q = malloc(1 << 20);
	errno = SENTINEL;
	free(p);
	free(q);
	row(1, "free(p)", "small and large block", "-", errno, SENTINEL);

	p = malloc(100);
	errno = SENTINEL;
	q = ct_realloc(p, 0);
	row(q == NULL, "realloc(p, 0)", "frees p", "NULL", errno, SENTINEL);

	errno = SENTINEL;
	u = malloc_usable_size(NULL);
	row(u == 0, "malloc_usable_size(NULL)", "-", "0", errno, SENTINEL);
	p = malloc(1000);
	errno = SENTINEL;
	u = malloc_usable_size(p);
	row(u >= 1000, "malloc_usable_size(p)", "-", ">= size", errno, SENTINEL);
	free(p);

	errno = SENTINEL;
	r = malloc_trim(0);
	row(r == 0 || r == 1, "malloc_trim(0)", "-", "0 or 1", errno, SENTINEL);
	{
		struct mallinfo2 mi;

		errno = SENTINEL;
		mi = mallinfo2();
		row(mi.arena < ((size_t)1 << 50), "mallinfo2()", "-", "the figures", errno, SENTINEL);
	}
#if CT_HAKMEM
	p = malloc(100);
	errno = SENTINEL;
	free_sized(p, 100);
	row(1, "free_sized(p, 100) [hakmem]", "-", "-", errno, SENTINEL);
	p = aligned_alloc(256, 512);
	errno = SENTINEL;
	free_aligned_sized(p, 256, 512);
	row(1, "free_aligned_sized(p, 256, 512) [hakmem]", "-", "-", errno, SENTINEL);
#else
	tap_skip("free_sized: glibc 2.36 has none");
	tap_skip("free_aligned_sized: glibc 2.36 has none");
#endif
}

/* ---- exhaustion under RLIMIT_AS ---- */

enum fn { F_MALLOC_S, F_MALLOC_M, F_MALLOC_L, F_CALLOC, F_REALLOC, F_REALLOCARRAY,
	  F_PM_SMALL, F_PM_PAGE, F_ALIGNED, F_MEMALIGN, F_VALLOC, F_PVALLOC, NFN };

static const char *const fn_name[NFN] = {
	"malloc(100)", "malloc(100000)", "malloc(8 MiB)", "calloc(1, 100000)",
	"realloc(p, n + 1 MiB)", "reallocarray(p, n + 1, 1 MiB)",
	"posix_memalign(&q, 64, 100)", "posix_memalign(&q, 4096, 100000)",
	"aligned_alloc(4096, 100000)", "memalign(256, 100000)", "valloc(100000)",
	"pvalloc(100000)",
};

/* In the child: call fn until it fails; exit 0 if it failed as glibc does. */
static int exhaust(enum fn f)
{
	struct rlimit rl;
	void *blk = NULL;
	size_t grow = 0;

	if (getrlimit(RLIMIT_AS, &rl))
		return 5;
	if (ct_cap_as(&rl, 64u << 20, 1))
		return 6;
	for (long i = 0; i < 4000000; i++) {
		void *p = NULL, *q = NULL;
		int r = 0, e;

		errno = SENTINEL;
		switch (f) {
		case F_MALLOC_S: p = malloc(100); break;
		case F_MALLOC_M: p = malloc(100000); break;
		case F_MALLOC_L: p = malloc(8 << 20); break;
		case F_CALLOC: p = calloc(1, 100000); break;
		case F_REALLOC:
			grow += 1 << 20;
			p = realloc(blk, grow);
			break;
		case F_REALLOCARRAY:
			grow++;
			p = reallocarray(blk, grow, 1 << 20);
			break;
		case F_PM_SMALL: r = pm(&q, 64, 100); p = r ? NULL : q; break;
		case F_PM_PAGE: r = pm(&q, 4096, 100000); p = r ? NULL : q; break;
		case F_ALIGNED: p = aligned_alloc(4096, 100000); break;
		case F_MEMALIGN: p = memalign(256, 100000); break;
		case F_VALLOC: p = valloc(100000); break;
		case F_PVALLOC: p = pvalloc(100000); break;
		case NFN: break;
		}
		e = errno;
		if (p) {
			if (f == F_REALLOC || f == F_REALLOCARRAY)
				blk = p;
			/* touch nothing: the address space is what runs out */
			continue;
		}
		if ((f == F_PM_SMALL || f == F_PM_PAGE) && r != ENOMEM)
			return 7;
		if (e != ENOMEM) {
			printf("# %s failed with errno %d\n", fn_name[f], e);
			return 8;
		}
		return 0;
	}
	return 9;	/* never failed */
}

static void exhaustion_rows(void)
{
	static const char *const why[] = {
		[5] = "no VmSize", [6] = "setrlimit failed", [7] = "wrong return code",
		[8] = "wrong errno", [9] = "never failed",
	};

	for (int f = 0; f < NFN; f++) {
		int st = 0, rc;
		pid_t pid;

		fflush(stdout);
		pid = fork();
		if (pid == 0)
			_exit(exhaust((enum fn)f));
		if (pid < 0 || waitpid(pid, &st, 0) != pid)
			tap_bail("fork/waitpid failed");
		rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		tap_ok(rc == 0, "%-40s %-28s -> %s, errno ENOMEM%s%s", fn_name[f],
		       "address space exhausted",
		       f == F_PM_SMALL || f == F_PM_PAGE ? "ENOMEM" : "NULL",
		       rc ? ": " : "", rc > 0 && rc < 10 ? why[rc] : rc ? "killed" : "");
	}
}

int main(void)
{
	page = (size_t)sysconf(_SC_PAGESIZE);
	tap_plan(0);
	tap_diag("allocator: %s", CT_HAKMEM ? "hakmem" : "the C library's");
	size_rows();
	keep_rows();
	exhaustion_rows();
	tap_finish();
}
