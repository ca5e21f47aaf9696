// SPDX-License-Identifier: MIT
/*
 * too_large: a request no mapping can serve fails with ENOMEM at once,
 * without the purge of every cache that follows a refused mapping
 * (lib/alloc.c large_alloc, __hak_purge_for_retry).
 *
 * glibc's malloc/tst-malloc-too-large calls malloc(16) and free, then
 * asks for a size of 2^50 or more through every allocation function,
 * about a million times. Each refused mapping used to purge every cache,
 * so the next malloc(16) mapped a superslab again: a purge, a 64 MiB map
 * and its unmap per request, more than 20 s (the test's timeout) where
 * glibc takes 3. Two kinds of request cannot be helped by a purge:
 *  - as large as the address space's window (ARCH_MAP_WINDOW, 2^47 on
 *    x86_64: the glibc test's sizes; 2^ARCH_VA_BITS in the generic port,
 *    2^48 on arm64): refused before any system call;
 *  - larger than a soft RLIMIT_AS by itself: the mapping is tried, the
 *    purge is not;
 *  - larger than a hard memory limit by itself (HAKMEM_MEMORY_LIMIT_HARD):
 *    refused, and neither the retry's purge nor the purge of every cache
 *    that a mapping near the limit asks of the next tick happens (rv30:
 *    both did, each refusal emptied every cache). Hakmem builds only.
 * Hakmem builds count the purges for a retry (__hak_purge_stats): none may
 * happen here. Every call must return NULL (posix_memalign ENOMEM) with
 * errno ENOMEM, and a block passed to realloc stays intact. The limit part
 * runs in a child. Also built against the C library's malloc; it passes
 * there too (without the count).
 */
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "core_test.h"

#if CT_HAKMEM
#include <asm/processor.h>
#include "os.h"
#include "purge.h"
#define WINDOW	ARCH_MAP_WINDOW
#else
#define WINDOW	(1UL << 50)
#endif

static void *(*volatile const v_malloc)(size_t) = malloc;
static void *(*volatile const v_calloc)(size_t, size_t) = calloc;
static void *(*volatile const v_memalign)(size_t, size_t) = memalign;
static void *(*volatile const v_aligned_alloc)(size_t, size_t) = aligned_alloc;
static void *(*volatile const v_valloc)(size_t) = valloc;
static void *(*volatile const v_pvalloc)(size_t) = pvalloc;
static int (*volatile const v_posix_memalign)(void **, size_t, size_t) = posix_memalign;


/* As the glibc test does between requests: a small block comes and goes. */
static void small_churn(void)
{
	void *q = v_malloc(16);

	if (!q)
		tap_bail("malloc(16) failed");
	free(q);
}

/*
 * Every allocation function asked for n bytes: all refused with ENOMEM.
 * Returns how many calls misbehaved.
 */
static int refuse_all(size_t n)
{
	int bad = 0, rc;
	void *p, *q;

	for (int f = 0; f < 10; f++) {
		small_churn();
		q = NULL;
		errno = 0;
		switch (f) {
		case 0: p = v_malloc(n); break;
		case 1: p = v_calloc(1, n); break;
		case 2: p = v_calloc(n / 8, 8); break;
		case 3:
			q = v_malloc(16);
			if (!q)
				tap_bail("malloc(16) failed");
			memset(q, 0x5a, 16);
			p = ct_realloc(q, n);
			break;
		case 4:
			q = v_malloc(16);
			if (!q)
				tap_bail("malloc(16) failed");
			memset(q, 0x5a, 16);
			p = ct_reallocarray(q, n / 8, 8);
			break;
		case 5: p = v_memalign(4096, n); break;
		case 6:
			p = NULL;
			rc = v_posix_memalign(&p, 64, n);
			if (rc != ENOMEM) {
				printf("# posix_memalign(64, %#zx): %d\n", n, rc);
				bad++;
			}
			errno = rc;
			break;
		case 7: p = v_aligned_alloc(4096, n & ~4095UL); break;
		case 8: p = v_valloc(n); break;
		default: p = v_pvalloc(n); break;
		}
		if (p || errno != ENOMEM) {
			printf("# call %d, size %#zx: %p, errno %d\n", f, n, p, errno);
			bad++;
			free(p);
		}
		if (q) {
			for (int i = 0; i < 16; i++)
				if (((unsigned char *)q)[i] != 0x5a) {
					printf("# call %d: the old block changed\n", f);
					bad++;
					break;
				}
			free(q);
		}
	}
	return bad;
}

/* Something cached that a purge could release: half of h freed. false if not. */
static bool cache_some(void *h[8])
{
	for (int i = 0; i < 8; i++) {
		h[i] = v_malloc(3000000);
		if (!h[i])
			return false;
		memset(h[i], 1, 3000000);
	}
	for (int i = 0; i < 8; i += 2)
		free(h[i]);
	return true;
}

/* After the refusals: what fits is still served (1 if not); the rest of h freed. */
static int fits_still(void *h[8])
{
	void *p = v_malloc(8UL << 20);
	int bad = !p;

	if (bad)
		printf("# malloc(8 MiB) under the limit failed, errno %d\n", errno);
	free(p);
	for (int i = 1; i < 8; i += 2)
		free(h[i]);
	return bad;
}

/* In the child: RLIMIT_AS a little above what is mapped; 0 when passed. */
static int under_limit(void)
{
	void *h[8];
	struct rlimit rl;
	size_t r0, lim;
	long vm;
	int bad;

	if (!cache_some(h))
		return 10;
	vm = proc_status_kib("VmSize");
	if (vm <= 0 || getrlimit(RLIMIT_AS, &rl))
		return 10;
	lim = ((size_t)vm << 10) + (64UL << 20);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < lim)
		return 11;
	rl.rlim_cur = lim;
	if (setrlimit(RLIMIT_AS, &rl))
		return 10;
	r0 = ct_purge_retries();
	bad = refuse_all(lim + (1UL << 20));
	if (ct_purge_retries() != r0) {
		printf("# %zu purges for a retry over a request above the limit\n",
		       ct_purge_retries() - r0);
		bad++;
	}
	bad += fits_still(h);
	return bad ? 1 : 0;
}

#if CT_HAKMEM
/*
 * In the child: a hard limit 256 MiB above what is mapped, a request
 * past it by itself through every function; 0 when passed.
 */
static int over_hard_limit(void)
{
	struct hak_purge_stats a, b;
	void *h[8], *p;
	size_t lim;
	int bad;

	if (!cache_some(h))
		return 10;
	lim = __hak_os_mapped() + (256UL << 20);
	__hak_os_set_limit(lim, true);
	__hak_purge_stats(&a);
	bad = refuse_all(lim + (1UL << 20));
	/* a tick with nothing to map: it would run the purge near the limit */
	for (int i = 0; i < 3; i++) {
		p = v_malloc(3000000);
		free(p);
	}
	__hak_purge_stats(&b);
	if (b.retries != a.retries || b.limit_purges != a.limit_purges) {
		printf("# over the hard limit: %zu purges for a retry, %zu near the limit\n",
		       b.retries - a.retries, b.limit_purges - a.limit_purges);
		bad++;
	}
	bad += fits_still(h);
	return bad ? 1 : 0;
}
#endif

/*
 * fn() in a forked child (it sets limits this process must not keep):
 * its exit status, -1 if it was killed.
 */
static int forked(int (*fn)(void))
{
	int st = 0, rc;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		rc = fn();
		fflush(stdout);
		_exit(rc);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		tap_bail("fork/waitpid failed");
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
	static const size_t sizes[] = {
		WINDOW, WINDOW + 1, WINDOW + 4096, 2 * WINDOW - 1, 1UL << 58,
		(size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX - 4095, (size_t)PTRDIFF_MAX + 1,
		SIZE_MAX - 4096, SIZE_MAX,
	};
	size_t r0;
	int rc;

	tap_plan(ARRAY_SIZE_CT(sizes) + 2 + CT_HAKMEM);
	/* A live small block: its superslab is what a purge would not keep. */
	void *keep = v_malloc(16);

	if (!keep)
		tap_bail("malloc(16) failed");
	r0 = ct_purge_retries();
	for (size_t i = 0; i < ARRAY_SIZE_CT(sizes); i++)
		tap_ok(!refuse_all(sizes[i]),
		       "size %#zx: every allocation function refuses it with ENOMEM", sizes[i]);
	tap_ok(ct_purge_retries() == r0, "no purge for a retry over those %zu requests (%zu)",
	       10 * ARRAY_SIZE_CT(sizes), ct_purge_retries() - r0);
	free(keep);

	rc = forked(under_limit);
	if (rc == 11)
		tap_skip("hard RLIMIT_AS too low for the test");
	else
		tap_ok(rc == 0, "a request above RLIMIT_AS by itself: ENOMEM without a purge, "
		       "8 MiB still served%s", rc == 10 ? " (set-up failed)" : rc < 0 ? " (killed)" : "");
#if CT_HAKMEM
	rc = forked(over_hard_limit);
	tap_ok(rc == 0, "a request above a hard memory limit by itself: ENOMEM without a "
	       "purge, none near the limit after it, 8 MiB still served%s",
	       rc == 10 ? " (set-up failed)" : rc < 0 ? " (killed)" : "");
#endif
	tap_finish();
}
