// SPDX-License-Identifier: MIT
/*
 * faults: every way of asking for memory fails cleanly when mmap fails.
 *
 * Each scenario runs in a forked child, which caps its address space with
 * setrlimit(RLIMIT_AS) just above its current VmSize, so every new mapping
 * (a new superslab, a mid-size pool chunk, a large block, an mremap) fails.
 * Under the cap, each caller must eventually get NULL (or ENOMEM from
 * posix_memalign) with errno = ENOMEM - never a crash, never a block from
 * somewhere else; blocks allocated before the cap must survive a failed
 * realloc; a thread whose first allocation (its per-thread setup) comes
 * under the cap must fail cleanly too, and its frees of another thread's
 * blocks must work. Then the child lifts the cap, checks that the
 * allocator works again for the same sizes, frees everything and exits
 * with a code that names the first failed step. The parent turns each
 * child's status into one TAP result, so a crash under the cap is a
 * failure, not a lost run.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "core_test.h"

#define MIB		((size_t)1 << 20)
/*
 * Enough blocks to exhaust what is mapped before the cap: the superslab
 * stock may hold 31 superslabs (62 MiB) of address space mapped then.
 */
#define MAXPTR		(1u << 22)
#define SLACK_KIB	(2 * 1024)

static void **ptrs;	/* mmap'ed before the cap: not from the allocator */
static unsigned nptr;
static struct rlimit saved_as;

static void cap(void)
{
	if (ct_cap_as(&saved_as, (size_t)SLACK_KIB << 10, 0))
		_exit(91);
}

static void uncap(void)
{
	if (setrlimit(RLIMIT_AS, &saved_as))
		_exit(92);
}

/* Allocate with 'fn' until it fails; 0 when it failed with ENOMEM. */
enum kind { K_MALLOC, K_CALLOC, K_POSIX, K_ALIGNED, K_MEMALIGN, K_VALLOC };

static void *one(enum kind k, size_t n, size_t a, int *err)
{
	void *p = NULL;
	int rc;

	errno = 0;
	switch (k) {
	case K_MALLOC:
		p = malloc(n);
		break;
	case K_CALLOC:
		p = calloc(n / 8 + 1, 8);
		break;
	case K_POSIX:
		rc = posix_memalign(&p, a, n);
		if (rc) {
			*err = rc;
			return NULL;
		}
		break;
	case K_ALIGNED:
		p = aligned_alloc(a, n);
		break;
	case K_MEMALIGN:
		p = memalign(a, n);
		break;
	case K_VALLOC:
		p = valloc(n);
		break;
	}
	*err = errno;
	if (p && a && !ct_is_aligned(p, a))
		_exit(80);
	return p;
}

static int exhaust(enum kind k, size_t n, size_t a, unsigned max)
{
	for (unsigned i = 0; i < max; i++) {
		int err;
		void *p = one(k, n, a, &err);

		if (!p)
			return err == ENOMEM ? 0 : 1;
		/* touch the first and last byte: must be real, writable memory */
		((volatile char *)p)[0] = 1;
		((volatile char *)p)[n ? n - 1 : 0] = 2;
		if (nptr < MAXPTR)
			ptrs[nptr++] = p;
	}
	return 2;	/* never failed: the cap did not bite */
}

static void release_all(void)
{
	for (unsigned i = 0; i < nptr; i++)
		free(ptrs[i]);
	nptr = 0;
}

/* After the cap is lifted, the same request must work again. */
static int works_again(enum kind k, size_t n, size_t a)
{
	for (int i = 0; i < 8; i++) {
		int err;
		void *p = one(k, n, a, &err);

		if (!p)
			return 0;
		memset(p, 0x77, n < 4096 ? n : 4096);
		if (nptr < MAXPTR)
			ptrs[nptr++] = p;
	}
	return 1;
}

struct scenario {
	const char *what;
	enum kind k;
	size_t n, a;
	unsigned max;
};

static const struct scenario scen[] = {
	{ "malloc(16) until a new superslab is needed", K_MALLOC, 16, 0, MAXPTR },
	{ "malloc(200) until a new superslab is needed", K_MALLOC, 200, 0, MAXPTR },
	{ "malloc(2000) until a new superslab is needed", K_MALLOC, 2000, 0, 200000 },
	{ "malloc(100 KiB) (mid size)", K_MALLOC, 100 * 1024, 0, 100000 },
	{ "malloc(64 MiB) (large)", K_MALLOC, 64 * MIB, 0, 4096 },
	{ "calloc(~1000 B)", K_CALLOC, 1000, 0, 400000 },
	{ "calloc(64 MiB)", K_CALLOC, 64 * MIB, 0, 4096 },
	{ "posix_memalign(1 MiB, 1 MiB)", K_POSIX, MIB, MIB, 100000 },
	{ "posix_memalign(64, 100)", K_POSIX, 100, 64, MAXPTR },
	{ "aligned_alloc(4096, 5000)", K_ALIGNED, 5000, 4096, 200000 },
	{ "memalign(1 MiB, 100)", K_MEMALIGN, 100, MIB, 100000 },
	{ "valloc(100 KiB)", K_VALLOC, 100 * 1024, 0, 100000 },
};

static int run_scenario(const struct scenario *s)
{
	int rc;

	cap();
	rc = exhaust(s->k, s->n, s->a, s->max);
	uncap();
	if (rc)
		return 10 + rc;		/* 11: wrong errno, 12: never failed */
	if (!works_again(s->k, s->n, s->a))
		return 20;
	release_all();
	if (!works_again(s->k, s->n, s->a) || !works_again(K_MALLOC, 64 * MIB, 0))
		return 21;
	release_all();
	return 0;
}

/* realloc growth under the cap: NULL + ENOMEM, old block intact. */
static int run_realloc(void)
{
	static const size_t from[] = { 100, 3000, 200 * 1024, 8 * MIB };
	void *blk[ARRAY_SIZE_CT(from)];

	for (size_t i = 0; i < ARRAY_SIZE_CT(from); i++) {
		blk[i] = malloc(from[i]);
		if (!blk[i])
			return 30;
		ct_fill(blk[i], from[i]);
	}
	cap();
	/* eat whatever address space is left, so growth really needs a new mapping */
	exhaust(K_MALLOC, 64 * MIB, 0, 4096);
	exhaust(K_MALLOC, MIB, 0, 100000);
	for (size_t i = 0; i < ARRAY_SIZE_CT(from); i++) {
		void *q;

		errno = 0;
		q = ct_realloc(blk[i], 256 * MIB);
		if (q) {
			uncap();
			return 31;
		}
		if (errno != ENOMEM) {
			uncap();
			return 32;
		}
		if (ct_check(blk[i], from[i]) != from[i]) {
			uncap();
			return 33;
		}
	}
	uncap();
	release_all();
	for (size_t i = 0; i < ARRAY_SIZE_CT(from); i++) {
		unsigned char *q = realloc(blk[i], 256 * MIB);

		if (!q)
			return 34;
		q[256 * MIB - 1] = 1;
		free(q);
	}
	return 0;
}

/*
 * A thread created before the cap makes its first allocation under it (so
 * its per-thread state is set up while mmap fails), frees blocks the main
 * thread allocated before the cap, allocates until it gets NULL + ENOMEM,
 * and allocates normally once the cap is lifted.
 */
static int go[2], done[2];
static void *pre[64];

static void *capped_thread(void *arg)
{
	char c;
	int rc = 0;
	void *p;

	(void)arg;
	if (read(go[0], &c, 1) != 1)
		return (void *)(uintptr_t)40;
	/* first allocation of this thread, under the cap */
	errno = 0;
	p = malloc(48);
	if (!p && errno != ENOMEM)
		rc = 41;
	free(p);
	for (int i = 0; i < 64; i++)
		free(pre[i]);			/* cross-thread frees under the cap */
	if (!rc)
		rc = exhaust(K_MALLOC, 48, 0, MAXPTR) ? 42 : 0;
	if (write(done[1], "x", 1) != 1 || read(go[0], &c, 1) != 1)
		return (void *)(uintptr_t)40;
	/* cap lifted */
	if (!rc && (!works_again(K_MALLOC, 48, 0) || !works_again(K_MALLOC, 100 * 1024, 0) ||
		    !works_again(K_MALLOC, 64 * MIB, 0)))
		rc = 43;
	return (void *)(uintptr_t)rc;
}

static int run_thread(const struct scenario *unused)
{
	pthread_t t;
	void *ret;
	char c;

	(void)unused;
	if (pipe(go) || pipe(done))
		return 44;
	for (int i = 0; i < 64; i++) {
		pre[i] = malloc((size_t)i * 1000 + 8);
		if (!pre[i])
			return 44;
	}
	if (pthread_create(&t, NULL, capped_thread, NULL))
		return 44;
	cap();
	if (write(go[1], "x", 1) != 1 || read(done[0], &c, 1) != 1)
		return 40;
	uncap();
	if (write(go[1], "x", 1) != 1)
		return 40;
	pthread_join(t, &ret);
	release_all();
	return (int)(uintptr_t)ret;
}

static int run_realloc_s(const struct scenario *unused)
{
	(void)unused;
	return run_realloc();
}

static int in_child(int (*fn)(const struct scenario *), const struct scenario *s,
		    const char *what)
{
	pid_t pid;
	int st;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		tap_bail("fork failed");
	if (pid == 0) {
		alarm(60);
		_exit(fn(s));
	}
	if (waitpid(pid, &st, 0) != pid)
		tap_bail("waitpid failed");
	if (WIFSIGNALED(st)) {
		tap_ok(0, "%s: child killed by signal %d", what, WTERMSIG(st));
		return 0;
	}
	switch (WEXITSTATUS(st)) {
	case 0:
		tap_ok(1, "%s: NULL + ENOMEM under the cap, works again after", what);
		return 1;
	case 11:
		tap_ok(0, "%s: failed with an errno other than ENOMEM", what);
		break;
	case 12:
		tap_ok(0, "%s: never failed under RLIMIT_AS", what);
		break;
	case 20: case 21:
		tap_ok(0, "%s: allocation still fails after the cap is lifted (%d)", what,
		       WEXITSTATUS(st));
		break;
	case 31: case 32: case 33: case 34:
		tap_ok(0, "%s: code %d (31 grew anyway, 32 errno, 33 old block damaged, 34 no recovery)",
		       what, WEXITSTATUS(st));
		break;
	case 40: case 41: case 42: case 43: case 44:
		tap_ok(0, "%s: code %d (41 wrong errno, 42 never failed, 43 no recovery, 40/44 setup)",
		       what, WEXITSTATUS(st));
		break;
	case 80:
		tap_ok(0, "%s: returned a misaligned block", what);
		break;
	default:
		tap_ok(0, "%s: child exited with %d", what, WEXITSTATUS(st));
		break;
	}
	return 0;
}

int main(void)
{
	if (getrlimit(RLIMIT_AS, &saved_as))
		tap_skip_all("getrlimit(RLIMIT_AS) failed");
	if (proc_status_kib("VmSize") <= 0)
		tap_skip_all("no VmSize in /proc/self/status");
	ptrs = mmap(NULL, MAXPTR * sizeof(void *), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ptrs == MAP_FAILED)
		tap_bail("mmap failed");
	/* warm the allocator and stdio up so the children start from a used heap */
	free(malloc(100));
	tap_plan(ARRAY_SIZE_CT(scen) + 2);
	if (saved_as.rlim_max != RLIM_INFINITY)
		tap_diag("hard RLIMIT_AS is %llu", (unsigned long long)saved_as.rlim_max);
	for (size_t i = 0; i < ARRAY_SIZE_CT(scen); i++)
		in_child(run_scenario, &scen[i], scen[i].what);
	in_child(run_realloc_s, NULL, "realloc growth of small/mid/large blocks to 256 MiB");
	in_child(run_thread, NULL,
		 "a thread's first malloc and cross-thread frees under the cap");
	tap_finish();
}
