// SPDX-License-Identifier: MIT
/*
 * fi_sites: every OS call site fails in turn, and nothing breaks.
 * runner: long (one of the longest selftests: the runner starts it first)
 *
 * The OS layer (lib/os.c) has three injection sites: HAK_OS_MAP (every
 * mmap: superslabs, metadata arena chunks, large blocks, large-registry
 * table growth, and with their boxes BigCache's table and L2.5 regions),
 * HAK_OS_REMAP (mremap of a large block in realloc) and HAK_OS_PURGE
 * (madvise of free pages). hak_test_os_fail(site, skip, n) lets skip calls
 * through and fails the next n.
 *
 * Sweep: a fixed workload (a new thread's first malloc, small blocks over
 * several superslabs, mid and large blocks, 1 MiB-aligned blocks, calloc,
 * large realloc growth, partial frees and a trim) runs in a fresh child
 * for K = 0, 1, 2, ... with the K-th call at a site failing (once, and in
 * a second pass from the K-th call on), until the workload makes fewer
 * than K + 1 calls there. In every child:
 *   - each call returns a block or NULL with errno ENOMEM (posix_memalign:
 *     ENOMEM); realloc may fall back to moving (the old block intact);
 *   - then the failures stop: every live block still has its pattern, all
 *     are freed, and after hak_malloc_trim the statistics are back to the
 *     child's start: no large block, no small bytes in use, no more memory
 *     mapped (metadata, which is never unmapped, aside);
 *   - the same workload then runs again with no NULL at all (recovery).
 * Targeted runs reach what the sweep cannot in a few calls: the large
 * registry's table growth and metadata chunks (thousands of large blocks,
 * the call after each block's own mapping failing), a realloc whose mremap
 * and fallback both fail, and purging that fails during a trim.
 *
 * Each child is forked, so a crash is one failed test point; the injected
 * failures (hak_test_os_failed) are counted and printed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <hakmem/hakmem.h>

#include "../lib/tap.h"
#include "os.h"

#define MIB		((size_t)1 << 20)
#define MAXBLK		8192
#define SWEEP_MAX	400
#define ALL		(~0UL)

static const char *const site_name[HAK_OS_NSITES] = { "mmap", "mremap", "madvise", "mprotect" };

/* Results a child hands back (MAP_SHARED). */
struct result {
	unsigned long injected[HAK_OS_NSITES];	/* hak_test_os_failed in the child */
	unsigned long nulls;			/* calls that returned NULL + ENOMEM */
	unsigned long fallbacks;		/* realloc that moved after a failed mremap */
	unsigned long extra[4];			/* per-scenario counters */
	char why[160];				/* first problem */
};

static struct result *res;

struct blk {
	unsigned char *p;
	size_t n;
};

static struct blk blk[MAXBLK];
static unsigned nblk;

static unsigned char pat(uintptr_t a, size_t i)
{
	return (unsigned char)((a >> 4) ^ (a >> 20) ^ (i * 97u) ^ 0xa5);
}

/*
 * First and last 64 bytes and a byte every 'step' (a page by default):
 * cheap, and catches a block handed out twice.
 */
static size_t step = 4096;

static size_t next_i(size_t i, size_t n)
{
	if (i < 63 || i + 64 >= n)
		return i + 1;
	return i + step < n - 64 ? i + step : n - 64;
}

static void stamp(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i = next_i(i, n))
		p[i] = pat((uintptr_t)p, i);
}

static int intact(const unsigned char *p, uintptr_t a, size_t n)
{
	for (size_t i = 0; i < n; i = next_i(i, n))
		if (p[i] != pat(a, i))
			return 0;
	return 1;
}

static int problem(const char *fmt, const char *what, unsigned long v)
{
	if (!res->why[0])
		snprintf(res->why, sizeof(res->why), fmt, what, v);
	return 1;
}

/* An allocation that returned NULL with errno err: 1 unless it was ENOMEM. */
static int got_null(int err, const char *what)
{
	if (err != ENOMEM)
		return problem("%s: NULL with errno %lu, not ENOMEM", what, (unsigned long)err);
	res->nulls++;
	return 0;
}

/* Record the outcome of one allocation; 1 when it broke a rule. */
static int got(void *p, size_t n, size_t align, int err, const char *what)
{
	if (!p)
		return got_null(err, what);
	if (align && ((uintptr_t)p & (align - 1)))
		return problem("%s: misaligned block (align %lu)", what, align);
	if (hak_malloc_usable_size(p) < n)
		return problem("%s: usable size below request %lu", what, n);
	stamp(p, n);
	if (nblk < MAXBLK)
		blk[nblk++] = (struct blk){ p, n };
	else
		hak_free(p);
	return 0;
}

/*
 * p (n bytes, stamped here) grown by realloc to m: the grown block with
 * p's contents, or NULL after a failure, which must be ENOMEM with p
 * intact (then kept in blk[] and counted).
 */
static void *grow_checked(void *p, size_t n, size_t m, const char *what, int *bad)
{
	uintptr_t a = (uintptr_t)p;
	void *q;

	stamp(p, n);
	errno = 0;
	q = hak_realloc(p, m);
	if (!q) {
		if (errno != ENOMEM)
			*bad += problem("%s: NULL without ENOMEM%lu", what, 0);
		if (!intact(p, a, n))
			*bad += problem("%s: failed realloc damaged the block%lu", what, 0);
		res->nulls++;
		*bad += got(p, n, 16, ENOMEM, "kept");
		return NULL;
	}
	if (!intact(q, a, n))
		*bad += problem("%s: realloc lost the contents%lu", what, 0);
	return q;
}

static void *thread_first_malloc(void *arg)
{
	void *p;

	(void)arg;
	errno = 0;
	p = hak_malloc(48);
	return p ? p : (void *)(uintptr_t)(errno == ENOMEM ? 1 : 2);
}

/* The sweep's workload; returns the number of rule violations. */
static int workload(void)
{
	int bad = 0, err;
	pthread_t t;
	void *p, *r;

	/* a new thread's first malloc (heap attach) under the fault */
	if (pthread_create(&t, NULL, thread_first_malloc, NULL) == 0) {
		pthread_join(t, &r);
		if ((uintptr_t)r == 2)
			bad += problem("%s: thread's first malloc: NULL without ENOMEM%lu", "",
				       0);
		else if ((uintptr_t)r == 1)
			res->nulls++;
		else
			bad += got(r, 48, 0, ENOMEM, "thread malloc");
	}
	/* small blocks over a few superslabs */
	for (int i = 0; i < 3000; i++) {
		errno = 0;
		p = hak_malloc(1000 + (size_t)i % 24);
		bad += got(p, 1000 + (size_t)i % 24, 16, errno, "malloc(1000)");
	}
	for (int i = 0; i < 12; i++) {
		size_t n = 40000 + (size_t)i * 20000;	/* mid / large */

		errno = 0;
		p = hak_malloc(n);
		bad += got(p, n, 16, errno, "malloc(mid)");
	}
	for (int i = 0; i < 6; i++) {
		errno = 0;
		p = hak_memalign(MIB, 100 + (size_t)i);
		bad += got(p, 100 + (size_t)i, MIB, errno, "memalign(1 MiB)");
	}
	p = NULL;
	err = hak_posix_memalign(&p, 4096, 200000);
	if (err && err != ENOMEM)
		bad += problem("%s: returned %lu", "posix_memalign", (unsigned long)err);
	bad += got(err ? NULL : p, 200000, 4096, ENOMEM, "posix_memalign");
	errno = 0;
	p = hak_calloc(1, 3 * MIB);
	bad += got(p, 3 * MIB, 16, errno, "calloc(3 MiB)");
	/* large realloc growth: mremap, or a move when mremap fails */
	for (int i = 0; i < 4; i++) {
		size_t n = 2 * MIB + (size_t)i * 4096, m = 9 * MIB + (size_t)i * 8192;
		void *q;

		errno = 0;
		p = hak_malloc(n);
		if (!p) {
			bad += got(p, n, 16, errno, "malloc(2 MiB)");
			continue;
		}
		q = grow_checked(p, n, m, "realloc", &bad);
		/*
		 * Grown past 2 MiB the block is a mapping of its own (a
		 * whole block, lib/large.c): growing it past its tail again
		 * is an mremap of that mapping, or a move when it fails.
		 */
		if (q)
			q = grow_checked(q, m, 3 * m, "realloc again", &bad);
		if (q)
			bad += got(q, 3 * m, 16, 0, "realloc");
	}
	/*
	 * Two slabs' worth of 2 KiB blocks, freed: the trim below releases
	 * the emptied slabs beside this heap's live ones and purges their
	 * pages (madvise). The thread's block above did that before, when
	 * its slab shared a superslab with this heap's; now each heap's
	 * slabs are in superslabs of their own, and its superslab goes back
	 * whole (lib/superslab.c, ss_pick).
	 */
	{
		void *e[64];

		for (int i = 0; i < 64; i++) {
			errno = 0;
			e[i] = hak_malloc(2048);
			if (!e[i])
				bad += got_null(errno, "malloc(2048)");
		}
		for (int i = 0; i < 64; i++)
			hak_free(e[i]);
	}
	/* free every other block, give memory back, allocate again */
	for (unsigned i = 0; i < nblk; i += 2) {
		hak_free(blk[i].p);
		blk[i] = blk[--nblk];
	}
	hak_malloc_trim(0);
	for (int i = 0; i < 1500; i++) {
		errno = 0;
		p = hak_malloc(2000);
		bad += got(p, 2000, 16, errno, "malloc(2000)");
	}
	return bad;
}

static int check_and_free_all(void)
{
	int bad = 0;

	for (unsigned i = 0; i < nblk; i++) {
		if (!intact(blk[i].p, (uintptr_t)blk[i].p, blk[i].n) && !bad)
			bad += problem("%s: block of %lu bytes damaged", "after faults", blk[i].n);
		hak_free(blk[i].p);
	}
	nblk = 0;
	return bad;
}

/*
 * Back to the start: nothing in use, nothing more mapped (metadata aside,
 * and slack bytes of structures that only grow).
 */
static int same_as_slack(const struct hak_stats *a, const char *when, size_t slack)
{
	struct hak_stats b;

	hak_malloc_trim(0);
	hak_stats_get(&b);
	if (b.large_blocks != a->large_blocks)
		return problem("%s: %lu large blocks leaked", when, b.large_blocks - a->large_blocks);
	if (b.small_in_use != a->small_in_use)
		return problem("%s: small bytes in use %lu, not back to the start", when,
			       b.small_in_use);
	if (b.mapped_bytes - b.meta_bytes > a->mapped_bytes - a->meta_bytes + slack)
		return problem("%s: %lu bytes more mapped than at the start", when,
			       (b.mapped_bytes - b.meta_bytes) - (a->mapped_bytes - a->meta_bytes));
	return 0;
}

static int same_as(const struct hak_stats *a, const char *when)
{
	return same_as_slack(a, when, 0);
}

static void *noop(void *arg)
{
	return arg;
}

/*
 * A child's starting point: a thread created and joined first (glibc keeps
 * its stack and thread descriptor, which are hakmem blocks when malloc is
 * interposed), then everything free given back.
 */
static void settle(struct hak_stats *start)
{
	pthread_t t;

	if (pthread_create(&t, NULL, noop, NULL) == 0)
		pthread_join(t, NULL);
	hak_malloc_trim(0);
	hak_stats_get(start);
}

static void count_injected(void)
{
	for (int s = 0; s < HAK_OS_NSITES; s++)
		res->injected[s] = hak_test_os_failed((enum hak_os_site)s);
}

/* One sweep child: site fails at call skip (n times). Exit code: 0 ok. */
static int sweep_child(enum hak_os_site site, unsigned long skip, unsigned long n)
{
	struct hak_stats start;
	int bad;

	settle(&start);
	hak_test_os_fail(site, skip, n);
	bad = workload();
	hak_test_os_fail(site, 0, 0);
	count_injected();
	bad += check_and_free_all();
	bad += same_as(&start, "after the faulty run");
	/* recovery: the same workload, no NULL this time */
	res->extra[0] = res->nulls;
	bad += workload();
	if (res->nulls != res->extra[0])
		bad += problem("%s: %lu NULL returns after the faults stopped", "recovery",
			       res->nulls - res->extra[0]);
	bad += check_and_free_all();
	bad += same_as(&start, "after recovery");
	return bad ? 1 : 0;
}

/* Run fn in a forked child with a fresh result block; 0 when it passed. */
static int in_child(int (*fn)(unsigned long, unsigned long, unsigned long),
		    unsigned long a, unsigned long b, unsigned long c)
{
	pid_t pid;
	int st;

	memset(res, 0, sizeof(*res));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		tap_bail("fork failed");
	if (pid == 0) {
		alarm(60);
		_exit(fn(a, b, c));
	}
	if (waitpid(pid, &st, 0) != pid)
		tap_bail("waitpid failed");
	if (WIFSIGNALED(st)) {
		snprintf(res->why, sizeof(res->why), "child killed by signal %d", WTERMSIG(st));
		return 1;
	}
	if (WEXITSTATUS(st) && !res->why[0])
		snprintf(res->why, sizeof(res->why), "child exit status %d", WEXITSTATUS(st));
	return WEXITSTATUS(st) != 0;
}

static int sweep_fn(unsigned long site, unsigned long skip, unsigned long n)
{
	return sweep_child((enum hak_os_site)site, skip, n);
}

static unsigned long total_injected[HAK_OS_NSITES];

/* Sweep one site in one mode; a TAP point. */
static void sweep(enum hak_os_site site, unsigned long n, const char *mode)
{
	unsigned long k, runs = 0, failures = 0, injected = 0, nulls = 0;
	char first[200] = "";

	for (k = 0; k < SWEEP_MAX; k++) {
		int f = in_child(sweep_fn, site, k, n);

		runs++;
		injected += res->injected[site];
		nulls += res->nulls;
		if (f) {
			if (!failures++)
				snprintf(first, sizeof(first), "call %lu: %s", k, res->why);
		}
		if (!res->injected[site])
			break;		/* the workload makes only k calls here */
	}
	total_injected[site] += injected;
	if (failures)
		tap_diag("%s %s: %s", site_name[site], mode, first);
	tap_ok(failures == 0 && k < SWEEP_MAX && injected > 0,
	       "%s fails at each of its %lu calls in turn (%s): %lu runs, %lu faults injected, "
	       "%lu NULL + ENOMEM, %lu failed", site_name[site], k, mode, runs, injected, nulls,
	       failures);
}

/*
 * Large registry: thousands of large blocks; for each, the mmap call after
 * the block's own mapping fails: that is a registry table growth (the
 * block must still be handed out, chains grow longer) or a metadata chunk
 * for its entry (NULL + ENOMEM, and the block's mapping must be released).
 * After a metadata failure the next block runs clean, so the arena gets
 * its next chunk and the tables keep filling.
 */
static int registry_fn(unsigned long unused1, unsigned long unused2, unsigned long unused3)
{
	struct hak_stats start, before, after;
	int bad = 0, last_null = 0;

	(void)unused1, (void)unused2, (void)unused3;
	settle(&start);
	step = 1 << 30;		/* edges only: thousands of blocks */
	for (unsigned i = 0; i < 7000 && nblk < MAXBLK; i++) {
		unsigned long f0 = hak_test_os_failed(HAK_OS_MAP);
		size_t n = 4 * MIB + (size_t)(i % 16) * 4096;	/* large in every config */
		void *p;

		hak_stats_get(&before);
		if (!last_null)
			hak_test_os_fail(HAK_OS_MAP, 1, 1);
		errno = 0;
		p = hak_malloc(n);
		hak_test_os_fail(HAK_OS_MAP, 0, 0);
		last_null = !p;
		if (hak_test_os_failed(HAK_OS_MAP) == f0) {
			bad += got(p, n, 4096, errno, "large");
			continue;		/* one mmap only this time */
		}
		if (p) {
			res->extra[0]++;		/* survived a failed growth */
		} else {
			hak_stats_get(&after);
			if (errno != ENOMEM)
				bad += problem("%s: NULL with errno %lu", "registry", (unsigned long)errno);
			if (after.mapped_bytes - after.meta_bytes != before.mapped_bytes - before.meta_bytes)
				bad += problem("%s: failed call left %lu bytes mapped", "registry",
					       after.mapped_bytes - before.mapped_bytes);
			res->extra[1]++;		/* metadata chunk failed */
		}
		bad += got(p, n, 4096, ENOMEM, "large");
		if (bad)
			break;
	}
	if (!res->extra[0] || !res->extra[1])
		bad += problem("%s: did not reach both sites (%lu metadata failures)", "registry",
			       res->extra[1]);
	count_injected();
	bad += check_and_free_all();
	/* the registry's hash tables stay grown: 16 shards, 8 KiB each at most here */
	bad += same_as_slack(&start, "registry", 16 * 8192);
	return bad ? 1 : 0;
}

/*
 * realloc: mremap fails (the block moves instead), then mremap and mmap
 * both fail: NULL + ENOMEM with the old block intact, unless a cache (the
 * BigCache box) can serve the move without a mapping, which is fine too.
 * The cache is emptied first so the NULL case is reached.
 */
static int remap_fn(unsigned long unused1, unsigned long unused2, unsigned long unused3)
{
	struct hak_stats start;
	int bad = 0;

	(void)unused1, (void)unused2, (void)unused3;
	settle(&start);
	for (int i = 0; i < 8; i++) {
		size_t n = MIB + (size_t)i * 65536, m = 3 * n;
		unsigned char *p = hak_malloc(n), *q;
		uintptr_t a = (uintptr_t)p;

		if (!p)
			return problem("%s: malloc failed%lu", "remap", 0);
		stamp(p, n);
		if (i & 1)
			hak_malloc_trim(0);
		hak_test_os_fail(HAK_OS_REMAP, 0, ALL);
		if (i & 1)
			hak_test_os_fail(HAK_OS_MAP, 0, ALL);
		errno = 0;
		q = hak_realloc(p, m);
		hak_test_os_fail(HAK_OS_REMAP, 0, 0);
		hak_test_os_fail(HAK_OS_MAP, 0, 0);
		if (!q) {
			if (!(i & 1))
				bad += problem("%s: no fallback when only mremap fails%lu", "realloc", 0);
			else if (errno != ENOMEM)
				bad += problem("%s: NULL with errno %lu", "realloc", (unsigned long)errno);
			if (!intact(p, a, n))
				bad += problem("%s: old block damaged%lu", "failed realloc", 0);
			res->nulls++;
			q = hak_realloc(p, m);		/* recovery */
			if (!q) {
				hak_free(p);
				bad += problem("%s: fails after faults stopped%lu", "realloc", 0);
				continue;
			}
		} else {
			res->fallbacks++;
		}
		if (!intact(q, a, n))
			bad += problem("%s: contents lost%lu", "realloc", 0);
		hak_free(q);
	}
	if (!res->nulls || !res->fallbacks)
		bad += problem("%s: %lu NULL returns, expected both outcomes", "remap", res->nulls);
	count_injected();
	bad += same_as(&start, "remap");
	return bad ? 1 : 0;
}

/* Purge fails during trim: pages stay dirty, a later trim purges them. */
static int purge_fn(unsigned long unused1, unsigned long unused2, unsigned long unused3)
{
	struct hak_stats start, mid, a, b;
	int bad = 0;

	(void)unused1, (void)unused2, (void)unused3;
	settle(&start);
	for (int i = 0; i < 6000; i++)
		bad += got(hak_malloc(4000), 4000, 16, ENOMEM, "malloc(4000)");
	/* keep one block in 64 so superslabs stay mapped with free pages */
	for (unsigned i = 0; i < nblk; i++)
		if (i % 64) {
			hak_free(blk[i].p);
			blk[i].p = NULL;
		}
	hak_stats_get(&mid);	/* the frees may have purged already */
	hak_test_os_fail(HAK_OS_PURGE, 0, ALL);
	hak_malloc_trim(0);
	hak_test_os_fail(HAK_OS_PURGE, 0, 0);
	hak_stats_get(&a);
	hak_malloc_trim(0);
	hak_stats_get(&b);
	res->extra[0] = a.dirty_bytes;
	res->extra[1] = b.purged_bytes - a.purged_bytes;
	if (a.purged_bytes != mid.purged_bytes)
		bad += problem("%s: %lu bytes purged while madvise failed", "purge",
			       a.purged_bytes - mid.purged_bytes);
	if (!a.dirty_bytes || b.purged_bytes == a.purged_bytes || b.dirty_bytes >= a.dirty_bytes)
		bad += problem("%s: later trim did not purge (dirty %lu)", "purge", b.dirty_bytes);
	count_injected();
	for (unsigned i = 0; i < nblk; i++)
		if (blk[i].p && !intact(blk[i].p, (uintptr_t)blk[i].p, blk[i].n))
			bad += problem("%s: live block damaged%lu", "purge", 0);
	for (unsigned i = 0; i < nblk; i++)
		hak_free(blk[i].p);
	nblk = 0;
	bad += same_as(&start, "purge");
	return bad ? 1 : 0;
}

static void targeted(int (*fn)(unsigned long, unsigned long, unsigned long), const char *what)
{
	int f = in_child(fn, 0, 0, 0);

	for (int s = 0; s < HAK_OS_NSITES; s++)
		total_injected[s] += res->injected[s];
	if (f)
		tap_diag("%s: %s", what, res->why);
	tap_ok(!f && (res->injected[0] + res->injected[1] + res->injected[2]) > 0,
	       "%s: %lu mmap, %lu mremap, %lu madvise faults injected; %lu NULL + ENOMEM, "
	       "%lu realloc fallbacks; counters %lu, %lu", what, res->injected[0],
	       res->injected[1], res->injected[2], res->nulls, res->fallbacks, res->extra[0],
	       res->extra[1]);
}

int main(void)
{
	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		tap_bail("mmap failed");
	/* the hook must really be there */
	hak_test_os_fail(HAK_OS_PURGE, 0, 1);
	if (in_child(purge_fn, 0, 0, 0), hak_test_os_failed(HAK_OS_PURGE) != 0)
		tap_bail("injection state leaked into the parent");
	hak_test_os_fail(HAK_OS_PURGE, 0, 0);

	tap_plan(9);
	sweep(HAK_OS_MAP, 1, "once");
	sweep(HAK_OS_MAP, ALL, "and every call after");
	sweep(HAK_OS_REMAP, 1, "once");
	sweep(HAK_OS_REMAP, ALL, "and every call after");
	sweep(HAK_OS_PURGE, 1, "once");
	sweep(HAK_OS_PURGE, ALL, "and every call after");
	targeted(registry_fn, "large registry growth and metadata chunks (the mmap after each block's)");
	targeted(remap_fn, "realloc with mremap failing, then mremap and mmap failing");
	targeted(purge_fn, "trim with madvise failing, then a trim that purges");
	tap_diag("injected in all: %lu mmap, %lu mremap, %lu madvise faults",
		 total_injected[HAK_OS_MAP], total_injected[HAK_OS_REMAP],
		 total_injected[HAK_OS_PURGE]);
	tap_finish();
}
