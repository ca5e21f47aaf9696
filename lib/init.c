// SPDX-License-Identifier: MIT
/*
 * Process start-up, thread exit and fork.
 *
 * __hak_init_slow() runs once. Re-entry from the same thread (a malloc
 * made by pthread_atfork, say) returns at once: the core needs no set-up to
 * work, init only adds options and handlers. Other threads wait for it.
 *
 * Fork: the prepare handler takes every global lock in the documented
 * order (heap -> L2.5 -> BigCache -> large shards -> meta -> superslab;
 * a box's locks come before the core locks it calls into), the parent releases
 * them, the child re-initialises them. The child keeps the forking
 * thread's heap; the heaps of threads that do not exist in the child stay
 * attached to nobody (their memory is a copy the child never uses).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <asm/atomic.h>
#include <asm/processor.h>
#include "heap.h"
#include "init.h"
#include "large.h"
#include "meta.h"
#include "purge.h"
#include "superslab.h"
#include "boxes/bigcache/bigcache.h"
#include "boxes/l25_pool/l25.h"

int __hak_init_done;
static int init_state;			/* 0 none, 1 running, 2 done */
static __thread int init_running;	/* this thread is inside init */
static pthread_key_t exit_key;
static int exit_key_ok;

static void stats_setup(void);

static void thread_exit(void *arg)
{
	(void)arg;
	__hak_heap_detach();
}

static void fork_prepare(void)
{
	__hak_heap_fork_prepare();
	hak_l25_fork_prepare();
	hak_bigcache_fork_prepare();
	__hak_large_fork_prepare();
	__hak_meta_fork_prepare();
	__hak_ss_fork_prepare();
}

static void fork_parent(void)
{
	__hak_ss_fork_parent();
	__hak_meta_fork_parent();
	__hak_large_fork_parent();
	hak_bigcache_fork_parent();
	hak_l25_fork_parent();
	__hak_heap_fork_parent();
}

static void fork_child(void)
{
	__hak_ss_fork_child();
	__hak_meta_fork_child();
	__hak_large_fork_child();
	hak_bigcache_fork_child();
	hak_l25_fork_child();
	__hak_heap_fork_child();
	__hak_purge_fork_child();
}

void __hak_init_slow(void)
{
	if (init_running)
		return;
	if (arch_cmpxchg(&init_state, 0, 1) != 0) {
		while (arch_load_acquire(&init_state) != 2)
			arch_cpu_relax();
		return;
	}
	init_running = 1;
	__hak_options_read();
	stats_setup();
	exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	init_running = 0;
	arch_store_release(&init_state, 2);
	arch_store_release(&__hak_init_done, 1);
}

void __hak_thread_register(struct hak_tcache *tc)
{
	/*
	 * glibc runs key destructors again (up to 4 rounds) when a destructor
	 * of another key allocates after ours ran, so re-arming here covers
	 * memory used late in thread exit.
	 */
	if (exit_key_ok)
		pthread_setspecific(exit_key, tc);
}

void __hak_report(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	memcpy(buf, "hakmem: ", 8);
	va_start(ap, fmt);
	n = vsnprintf(buf + 8, sizeof(buf) - 9, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	n += 8;
	if (n > (int)sizeof(buf) - 1)
		n = sizeof(buf) - 1;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

void __hak_bad_free(const void *p, const char *check)
{
	__hak_report("invalid free of %p: %s", p, check);
	abort();
}

/*
 * HAKMEM_STATS: a private copy of stderr, taken at start-up, because some
 * programs (GNU coreutils) close fd 2 before they exit.
 */
static int stats_fd = -1;

static void stats_setup(void)
{
	if (__hak_opt.stats)
		stats_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
}

__attribute__((destructor)) static void hak_exit_stats(void)
{
	if (__hak_opt.stats)
		__hak_stats_print(stats_fd >= 0 ? stats_fd : STDERR_FILENO);
}
