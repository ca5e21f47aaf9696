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
 * a locked section waits for a lock no thread will give back, and dies of
 * SIGALRM (core/fork_others fails so, now and then, in a COVERAGE=1 build).
 *
 * libgcov dereferences a failed allocation (a child that lowered
 * RLIMIT_AS to test ENOMEM died of SIGSEGV): the soft limits go back up to
 * the hard ones first, and where memory is still short (the hard limit
 * lowered too) the counts are dropped. After a diagnostic the heap is known broken, and the
 * dump's own malloc and free may meet the same damage and report it again:
 * stderr is closed for the dump, so the test reads the one report it
 * expects (and a second abort ends the process as the first would have).
 */
#include <fcntl.h>
#include <signal.h>
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

static void unlimit(int resource)
{
	struct rlimit r;

	if (!getrlimit(resource, &r) && r.rlim_cur != r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(resource, &r);
	}
}

static void dump(int quiet)
{
	void *probe;
	int null;

	if (dumping++ || __hak_locks_held || __hak_lock_edge || __hak_fork_holder)
		return;
	alarm(2);
	unlimit(RLIMIT_AS);
	unlimit(RLIMIT_DATA);
	probe = malloc(256 << 10);
	if (!probe)
		return;
	free(probe);
	if (quiet) {
		null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0 && null != 2) {
			dup2(null, 2);
			close(null);
		}
	}
	__gcov_dump();
	alarm(0);
}

void __wrap_abort(void)
{
	dump(1);
	__real_abort();
}

void __wrap__exit(int status)
{
	dump(0);
	__real__exit(status);
}
