// SPDX-License-Identifier: MIT
/*
 * gcov_flush: linked into every program and the shared library of a
 * COVERAGE=1 build only (Makefile, -Wl,--wrap=abort,--wrap=_exit), so that
 * a process that ends in abort() (every fail-fast diagnostic: lib/init.c
 * __hak_bad_free, boxes/failfast, boxes/hardened) or in _exit() (most
 * forked children of the selftests) writes its gcov counters first, as
 * exit() does. Without it tools/coverage.sh would count every line those
 * processes ran as never run.
 *
 * __gcov_dump writes the .gcda files with stdio, whose fopen calls malloc,
 * here hakmem's. A process whose thread holds an allocator lock (a
 * diagnostic found inside a locked section, the child of a fork from a
 * signal handler whose interrupted frame holds one) would call the
 * allocator again under it and die of the recursion check: it keeps its
 * counts, lost as before. Another thread's lock is only waited for; the
 * alarm bounds that wait, so a dump never turns an exit into a hang: the
 * child of a _Fork (no fork handlers) made while another thread was inside
 * a locked section waits for a lock no thread will give back (core/
 * fork_others); after 2 s it ends as it was going to, its counts lost.
 *
 * libgcov dereferences a failed allocation (a child that lowered
 * RLIMIT_AS to test ENOMEM died of SIGSEGV): the soft limits go back up to
 * the hard ones first, and where memory is still short (the hard limit
 * lowered too) the counts are dropped. After a diagnostic the heap is
 * known broken, and the dump's own malloc and free may meet the same
 * damage and report it again: stderr is closed for the dump, so the test
 * reads the one report it expects (and a second abort ends the process as
 * the first would have), or crash on it: SIGSEGV and SIGBUS end the
 * process as it was going to end (failfast/failfast_abort's corrupted
 * link, now and then).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lock.h"

void __gcov_dump(void);
void __real_abort(void) __attribute__((noreturn));
void __real__exit(int status) __attribute__((noreturn));
void __wrap_abort(void) __attribute__((noreturn));
void __wrap__exit(int status) __attribute__((noreturn));

static __thread int dumping;	/* abort() inside the dump: no second one */
static int aborting, exit_status;	/* how the process was ending */

/*
 * The probe waited too long, or the dump crashed on a heap a diagnostic
 * found broken: end as the process was going to, uncounted.
 */
static void dump_failed(int sig)
{
	(void)sig;
	if (aborting)
		__real_abort();
	__real__exit(exit_status);
}

static void unlimit(int resource)
{
	struct rlimit r;

	if (!getrlimit(resource, &r) && r.rlim_cur != r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(resource, &r);
	}
}

static void dump(bool aborts, int status)
{
	void *probe;
	int null;

	if (dumping++ || __hak_locks_held || __hak_lock_edge || __hak_fork_holder)
		return;
	unlimit(RLIMIT_AS);
	unlimit(RLIMIT_DATA);
	aborting = aborts;
	exit_status = status;
	if (aborts) {
		null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0 && null != 2) {
			dup2(null, 2);
			close(null);
		}
	}
	/*
	 * A small and a large block, as stdio and libgcov ask for: under the
	 * alarm, so that a process killed while it waits for a lock dies here,
	 * before it has written half a .gcda file.
	 */
	signal(SIGALRM, dump_failed);
	signal(SIGSEGV, dump_failed);
	signal(SIGBUS, dump_failed);
	alarm(2);
	probe = malloc(512);
	free(probe);
	if (probe)
		probe = malloc(256 << 10);
	alarm(0);
	if (!probe)
		return;
	free(probe);
	__gcov_dump();
}

void __wrap_abort(void)
{
	dump(true, 0);
	__real_abort();
}

void __wrap__exit(int status)
{
	dump(false, status);
	__real__exit(status);
}
