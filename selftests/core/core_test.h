/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the selftests/core programs (header-only, not a test).
 *
 * The tests target glibc's semantics: each one also builds with plain
 * gcc against the system malloc, and must pass there. Inside the hakmem
 * tree every TU is compiled with -include include/hak/kconfig.h, so
 * HAK_KCONFIG_H tells us "linked with libhakmem.a": only then do we test
 * the functions glibc 2.36 lacks (free_sized, free_aligned_sized) and the
 * hak_* public API.
 */
#ifndef HAK_SELFTEST_CORE_H
#define HAK_SELFTEST_CORE_H

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "../lib/tap.h"
#include "../lib/proc.h"
#include "../lib/coarse_sleep.h"

#ifdef HAK_KCONFIG_H
# define CT_HAKMEM 1
#else
# define CT_HAKMEM 0
#endif

/*
 * Hide a size from the optimiser, so -Walloc-size-larger-than and friends
 * do not reject deliberately absurd requests at compile time, and calls
 * are not folded away.
 */
#define ARRAY_SIZE_CT(a)	(sizeof(a) / sizeof((a)[0]))

static inline size_t ct_opaque(size_t n)
{
	volatile size_t v = n;

	return v;
}

static inline void *ct_launder(void *p)
{
	__asm__ __volatile__("" : "+r"(p) :: "memory");
	return p;
}

/*
 * realloc through a pointer the compiler cannot see through: for tests of
 * a *failing* realloc, after which the old block is still valid and used
 * (-Wuse-after-free cannot know that the call failed).
 */
static void *(*volatile const ct_realloc)(void *, size_t) = realloc;
static void *(*volatile const ct_reallocarray)(void *, size_t, size_t) = reallocarray;

/* A byte pattern derived from a block's address and an offset in it. */
static inline unsigned char ct_pat(const void *base, size_t i)
{
	uintptr_t a = (uintptr_t)base;

	return (unsigned char)((a >> 4) ^ (a >> 12) ^ (i * 131u) ^ (i >> 8));
}

static inline void ct_fill(void *p, size_t n)
{
	unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		c[i] = ct_pat(p, i);
}

/* Returns the first bad offset, or n when the whole block is intact. */
static inline size_t ct_check(const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		if (c[i] != ct_pat(p, i))
			return i;
	return n;
}

/*
 * Cap RLIMIT_AS at VmSize + slack bytes (the hard limit too when hard;
 * base gives the rest), so that every mapping past the slack fails.
 * Lowering the limit may make the allocator give address space back
 * (hakmem gives up its page map's 4 GiB under a limit below 64 GiB), so
 * VmSize is read again and the cap set again until VmSize stays. 0, or
 * -1 when VmSize or setrlimit failed.
 */
static inline int ct_cap_as(const struct rlimit *base, size_t slack, int hard)
{
	struct rlimit rl = *base;
	long vm = proc_status_kib("VmSize"), was;

	for (int i = 0; i < 4; i++) {
		if (vm <= 0)
			return -1;
		rl.rlim_cur = ((rlim_t)vm << 10) + slack;
		if (hard)
			rl.rlim_max = rl.rlim_cur;
		if (setrlimit(RLIMIT_AS, &rl))
			return -1;
		was = vm;
		vm = proc_status_kib("VmSize");
		if (vm >= was)
			break;
	}
	return 0;
}

/*
 * VmRSS of what the allocator retains: free memory it keeps resident for
 * reuse on purpose (hakmem: up to HAKMEM_DIRTY_MAX of empty slab pages,
 * cached large blocks; glibc: its top chunk) is given back with
 * malloc_trim first, so RSS checks compare retention, not reuse policy.
 */
static inline long ct_retained_kib(void)
{
	malloc_trim(0);
	return proc_status_kib("VmRSS");
}

/*
 * HAKMEM_SELFTEST_QUICK=1 (set by tools/boxmatrix.sh for its many builds)
 * asks the long tests for a shorter run of the same checks.
 */
static inline int ct_quick(void)
{
	static int quick = -1;

	if (quick < 0) {
		const char *q = getenv("HAKMEM_SELFTEST_QUICK");

		quick = q && *q && strcmp(q, "0") != 0;
	}
	return quick;
}

/*
 * One slow path of the calling thread: a large malloc/free, which ticks
 * the decay pass (purge, idle_collect, idle_collect_busy).
 */
static inline void ct_decay_tick(void)
{
	void *p = malloc(4u << 20);

	if (!p)
		tap_bail("a 4 MiB malloc failed");
	((volatile char *)p)[0] = 1;
	free(p);
}

/*
 * Run this program again with the decay passes off (HAKMEM_PURGE_DELAY_MS
 * = 0), once: for a scenario that scripts which lock a thread takes first
 * or what a report counts, since a decay pass due at that moment (the
 * clock runs on under load) takes the superslab lock ahead of it or
 * purges what was counted. fork_two_urgent hung 1 run in 30 at load 12
 * that way: its thread B waited in a decay pass for the superslab lock its
 * scripted partner held, never reaching the lock B was to take.
 */
static inline void ct_no_decay(char **argv)
{
	if (getenv("HAKMEM_PURGE_DELAY_MS"))
		return;
	setenv("HAKMEM_PURGE_DELAY_MS", "0", 1);
	execv("/proc/self/exe", argv);
	tap_bail("execv");
}

/*
 * Let the calling thread's clock pass an owner's idle time: a freer takes
 * an owner for idle only when the owner's last tick is HAK_IDLE_MS (10 ms,
 * lib/heap.c) older than the freer's own, which moves at its slow paths.
 * Call it before the owner's 256th block is freed: sleep three times
 * that, then tick.
 */
static inline void ct_idle_wait(void)
{
	tst_sleep_ms(30);
	ct_decay_tick();
}

/*
 * Free the nb blocks of blk (another thread's, class of bs bytes): they go
 * home as remote frees; this thread's first refill after them sends home
 * the runs it still holds (idle_collect, idle_collect_busy).
 */
static inline void ct_free_home(void **blk, unsigned nb, size_t bs)
{
	unsigned i;

	for (i = 0; i < nb; i++)
		free(blk[i]);
	free(ct_launder(malloc(bs)));
}

/* nb blocks of bs bytes into blk, each filled with its pattern. */
static inline void ct_alloc_fill(void **blk, unsigned nb, size_t bs)
{
	unsigned i;

	for (i = 0; i < nb; i++) {
		blk[i] = malloc(bs);
		if (!blk[i])
			tap_bail("malloc(%zu) failed", bs);
		ct_fill(blk[i], bs);
	}
}

/* Free the nb blocks of ct_alloc_fill(); how many lost their pattern. */
static inline unsigned long ct_check_free(void **blk, unsigned nb, size_t bs)
{
	unsigned long bad = 0;
	unsigned i;

	for (i = 0; i < nb; i++) {
		if (ct_check(blk[i], bs) != bs)
			bad++;
		free(blk[i]);
	}
	return bad;
}

static inline int ct_is_aligned(const void *p, size_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

/*
 * Handle sig with fn (SA_RESTART), then make the allocator initialise, so
 * its fork handlers are registered before the first signal.
 */
static inline void ct_handle(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL))
		tap_bail("sigaction failed");
	free(malloc(1));
}

/*
 * From a signal handler (fork_signal, fork_signal_mt): fork, the child
 * _exit()s at once, reap it; count a failed fork, or a child that did not
 * exit 0.
 */
static inline void ct_fork_reap(volatile long *bad_child, volatile long *fork_failed)
{
	pid_t pid = fork();
	int st;

	if (pid == 0)
		_exit(0);
	if (pid < 0) {
		(*fork_failed)++;
		return;
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			(*bad_child)++;	/* the child is not ours to wait for: lost */
			return;
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		(*bad_child)++;
}

/*
 * One step of the fork-in-handler tests' churn (fork_signal_mt,
 * fork_signal_race): replace or grow one of 16 kept blocks of small, mid,
 * large and whole-block sizes (mallinfo2 walks the heaps under their locks),
 * and now and then trim (purges: system calls under the locks), so a signal
 * often lands inside the allocator holding one of them.
 */
static inline void ct_fork_churn_step(void *keep[16], unsigned *x)
{
	static const size_t sz[] = { 100, 5000, 300000, 2u << 20 };
	struct mallinfo2 mi = mallinfo2();
	unsigned k;

	*x = *x * 1103515245u + 12345u;
	k = (*x >> 8) % 16;
	if (keep[k] && (*x & 1)) {
		void *q = realloc(keep[k], sz[(*x >> 16) % 4] + mi.hblks % 64);

		if (q)
			keep[k] = q;
	} else {
		free(keep[k]);
		keep[k] = malloc(sz[(*x >> 16) % 4]);
	}
	if (!(*x & 0x300))
		malloc_trim(0);
}

/* Milliseconds on the monotonic clock, for the fork scenarios' bounds. */
static inline double ct_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Wait until another thread or process sets *flag, at most ms; the flag. */
static inline int ct_wait_flag(volatile int *flag, double ms)
{
	double t0 = ct_now_ms();

	while (!*flag && ct_now_ms() - t0 < ms)
		usleep(100);
	return *flag;
}

/* Shared anonymous memory for a scenario child's results (ct_scenario_child). */
static inline void *ct_shared(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		tap_bail("mmap: %s", strerror(errno));
	return p;
}

/*
 * Run scenario (which _exit()s) in a child of its own, so a hang its alarm
 * ends or a lock it leaves stays there; the child's wait status.
 */
static inline int ct_scenario_child(void (*scenario)(void))
{
	pid_t pid = fork();
	int st = 0;

	if (pid < 0)
		tap_bail("fork: %s", strerror(errno));
	if (pid == 0)
		scenario();
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

/* ", hung" when a scenario child's alarm ended it (status st), else "": for diagnostics. */
static inline const char *ct_hung(int st)
{
	return WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM ? ", hung" : "";
}

/* Is thread tid (of this process) blocked in futex? (proc_read_raw: a frame may hold a lock) */
static inline int ct_in_futex(pid_t tid)
{
	char path[64], buf[32];

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	return proc_read_raw(path, buf, sizeof(buf)) > 0 && atoi(buf) == SYS_futex;
}

/*
 * Fork a child that runs child (which _exit()s; NULL: exits at once) and
 * wait for it: 1 when it exited 0, 0 when it did not or the fork failed.
 * fork_ms, if not NULL: how long fork() took here, the fork tests' figure.
 */
static inline int ct_fork_run(void (*child)(void), double *fork_ms)
{
	double t0 = fork_ms ? ct_now_ms() : 0;
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		if (child)
			child();
		_exit(0);
	}
	if (fork_ms)
		*fork_ms = ct_now_ms() - t0;
	if (pid < 0)
		return 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(st) && !WEXITSTATUS(st);
}

/* A child that exits at once (the fork tests' handler forks): ct_fork_run. */
static inline int ct_fork_exit0(void)
{
	return ct_fork_run(NULL, NULL);
}

#if CT_HAKMEM
#include "purge.h"

/* Failed allocations hakmem retried after purging every cache. */
static inline size_t ct_purge_retries(void)
{
	struct hak_purge_stats st;

	__hak_purge_stats(&st);
	return st.retries;
}
#else
static inline size_t ct_purge_retries(void)
{
	return 0;
}
#endif

#endif /* HAK_SELFTEST_CORE_H */
