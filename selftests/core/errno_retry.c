// SPDX-License-Identifier: MIT
/*
 * errno_retry: near the end of the address space (RLIMIT_AS), every
 * allocation that succeeds keeps errno, one that fails is NULL + ENOMEM,
 * and after the blocks are freed allocation works again. In every size
 * range: small (64 B, 2000 B), mid (100 KB, 300 KB, 700 KB: 256 KiB to
 * 1 MiB), large (2 MiB, 8 MiB) and 40 MiB (above 32 MiB), and calloc.
 * runner: long (8-13 s: the runner starts it first, so it does not end the run alone)
 *
 * Each size in a child: 32 blocks of 3 MB are written and every other one
 * freed (48 MB an allocator may keep cached; the live ones between keep
 * them from being joined into a larger block), the address space is then
 * limited to what the child uses plus 4 MiB, and the size is allocated
 * until it fails (errno = EDOM before each call). When a mapping is
 * refused hakmem releases what it caches (__hak_purge_for_retry) and
 * tries once more: that second try used to succeed with errno ENOMEM from
 * the first (lib/alloc.c large_alloc and __hak_alloc_big, lib/heap.c
 * __hak_tcache_refill). Hakmem builds also count the retries: at least
 * one per size, or the test did not reach the path.
 * Also built against the C library's malloc; it passes there too.
 */
#include <sys/resource.h>
#include <sys/wait.h>

#include "core_test.h"

#if CT_HAKMEM
#include "purge.h"
#endif

#define SENTINEL	EDOM
#define NHOLD		(1u << 21)

static void *(*volatile const v_malloc)(size_t) = malloc;
static void *(*volatile const v_calloc)(size_t, size_t) = calloc;

static void *hold[NHOLD];

static const struct {
	size_t size;
	int zero;
	const char *what;
} rows[] = {
	{ 64, 0, "malloc(64)" },
	{ 2000, 0, "malloc(2000)" },
	{ 100000, 0, "malloc(100000)" },
	{ 300000, 0, "malloc(300000)" },
	{ 700000, 0, "malloc(700000)" },
	{ 2 << 20, 0, "malloc(2 MiB)" },
	{ 8 << 20, 0, "malloc(8 MiB)" },
	{ 40 << 20, 0, "malloc(40 MiB)" },
	{ 100000, 1, "calloc(1, 100000)" },
	{ 8 << 20, 1, "calloc(1, 8 MiB)" },
};


static void *get(size_t n, int zero)
{
	return zero ? v_calloc(1, n) : v_malloc(n);
}

/*
 * In the child. Exit status: 0 passed, 1 a success changed errno, 2 a
 * failure was not ENOMEM, 3 no allocation after the frees, 4 no retry
 * (hakmem), 5 set-up failed.
 */
static int child(size_t n, int zero)
{
	const size_t hole = 3000000;
	void *h[32];
	struct rlimit rl;
	size_t got = 0, r0;
	void *p;
	int e;

	for (int i = 0; i < 32; i++) {
		h[i] = v_malloc(hole);
		if (!h[i])
			return 5;
		memset(h[i], 1, hole);
	}
	for (int i = 0; i < 32; i += 2)
		free(h[i]);
	if (getrlimit(RLIMIT_AS, &rl) || ct_cap_as(&rl, 4u << 20, 1))
		return 5;
	r0 = ct_purge_retries();
	for (; got < NHOLD; got++) {
		errno = SENTINEL;
		p = get(n, zero);
		e = errno;
		if (!p) {
			if (e != ENOMEM) {
				printf("# block %zu: NULL with errno %d\n", got, e);
				return 2;
			}
			break;
		}
		hold[got] = p;
		if (e != SENTINEL) {
			printf("# block %zu: a success with errno %d\n", got, e);
			return 1;
		}
	}
	if (CT_HAKMEM && ct_purge_retries() == r0)
		return 4;
	for (size_t i = 0; i < got; i++)
		free(hold[i]);
	if (got) {
		errno = SENTINEL;
		p = get(n, zero);
		e = errno;
		if (!p || e != SENTINEL) {
			printf("# after the frees: %p, errno %d\n", p, e);
			return 3;
		}
		free(p);
	}
	printf("# %zu blocks, then ENOMEM\n", got);
	return 0;
}

int main(void)
{
	static const char *const why[] = {
		"", ": a success changed errno", ": a failure was not ENOMEM",
		": nothing after the frees", ": no retry after a purge", ": set-up failed",
	};

	tap_plan(ARRAY_SIZE_CT(rows));
	for (size_t i = 0; i < ARRAY_SIZE_CT(rows); i++) {
		int st = 0, rc;
		pid_t pid;

		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			rc = child(rows[i].size, rows[i].zero);
			fflush(stdout);
			_exit(rc);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid)
			tap_bail("fork/waitpid failed");
		rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		tap_ok(rc == 0, "%s under RLIMIT_AS: successes keep errno, then NULL + ENOMEM, "
		       "then recovery%s", rows[i].what,
		       rc >= 0 && rc <= 5 ? why[rc] : ": killed");
	}
	tap_finish();
}
