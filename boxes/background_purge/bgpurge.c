// SPDX-License-Identifier: MIT
/*
 * Background purge box (Documentation/boxes/background_purge.md): one
 * detached thread per process that runs the core's decay pass
 * (__hak_purge_idle) while the program does not call the allocator.
 *
 * Start: the core's purge tick calls hak_bgpurge_kick() at a slow path
 * with no allocator lock held. pthread_create maps the stack itself but
 * may call malloc (glibc's TLS bookkeeping), which re-enters the tick:
 * the state moves 0 -> STARTING with a cmpxchg first, so the re-entry
 * (and every other thread) sees a non-zero state and returns. All signals
 * are blocked in the new thread (it must never run the program's
 * handlers); it never allocates. It has the default stack size and the
 * default policy, whatever the starting thread's (bg_create).
 *
 * Fork: the child has no purge thread. An atfork child handler (registered
 * at the first start, for good: __hak_atfork) puts the state back to 0, so
 * the child starts its own at its first slow path, if it has the option on.
 *
 * A thread that cannot be made (RLIMIT_NPROC, a sandbox that refuses
 * clone, no memory for its stack) is reported with one line; the process
 * goes on without it (the purge ticks of its own calls still purge). In a
 * seccomp sandbox (lib/os.c) none is tried: a filter may kill on clone.
 *
 * Exit: the thread is detached and exit() ends it with the process; it
 * holds no lock across its sleep.
 *
 * Pace: it sleeps a quarter of the purge delay (at least BG_MIN_MS). A
 * wake-up that found the program purging on its own (a tick ran a pass
 * recently) or nothing to purge doubles the sleep, up to the delay (at
 * most BG_MAX_MS); one that purged something goes back to the short sleep.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <asm/atomic.h>
#include "box.h"
#include "boxes/background_purge/bgpurge.h"

#define BG_MIN_MS	10
#define BG_MAX_MS	1000

enum { BG_NONE, BG_STARTING, BG_RUNNING, BG_FAILED };

int __hak_bgpurge_state __boot_once;		/* atomic, BG_* */
static int bg_atfork_done;		/* atomic */
static size_t bg_starts, bg_wakeups, bg_passes, bg_bytes;	/* atomic */

/*
 * The kernel's sleep (__hak_os_nap, a system call), not the program's
 * nanosleep: libfaketime's divides or multiplies it by its rate, and the
 * decay clock this thread serves is the kernel's (lib/os.c,
 * __hak_os_clock). At "x0.01" a quarter-delay nap lasted 6 s and an idle
 * program's memory came back 100 times late; at "x100" the thread woke
 * every 0.6 ms (ext34). All signals are blocked here: it sleeps the time
 * through.
 */
static void sleep_ms(unsigned ms)
{
	__hak_os_nap((unsigned long)ms * 1000000ul);
}

static unsigned base_ms(void)
{
	unsigned d = (unsigned)__hak_opt.purge_delay_ms / 4;

	return d < BG_MIN_MS ? BG_MIN_MS : d > BG_MAX_MS ? BG_MAX_MS : d;
}

/* The longest sleep: the delay itself (1 s at most), so what was freed
 * just before the program went idle is purged within two delays. */
static unsigned max_ms(void)
{
	unsigned d = (unsigned)__hak_opt.purge_delay_ms;

	return d < BG_MIN_MS ? BG_MIN_MS : d > BG_MAX_MS ? BG_MAX_MS : d;
}

static void *bg_main(void *arg)
{
	unsigned nap = base_ms();

	(void)arg;
	for (;;) {
		size_t done;
		bool ran;

		sleep_ms(nap);
		arch_fetch_add(&bg_wakeups, 1UL);
		if (!__hak_opt.purge_delay_ms) {
			nap = BG_MAX_MS;
			continue;
		}
		done = __hak_purge_idle(&ran);
		if (ran) {
			arch_fetch_add(&bg_passes, 1UL);
			if (done)
				arch_fetch_add(&bg_bytes, done);
		}
		if (done)
			nap = base_ms();
		else if (nap < max_ms())
			nap = nap * 2 < max_ms() ? nap * 2 : max_ms();
	}
	return NULL;
}

static void bg_fork_child(void)
{
	arch_store_relaxed(&__hak_bgpurge_state, BG_NONE);
}

/*
 * The purge thread, detached, with the default stack size: a stack sized
 * here (64 KiB until 2026-12-06) holds glibc's static TLS too, which glibc
 * checks only against a 2 KiB rest, so a program with 59-62 KiB of
 * __thread data left the passes a few KiB and they ran into the guard page
 * (bgp_tlsfit), and one with more had the thread refused (bgp_bigtls).
 * The size glibc would need is known only to a GLIBC_PRIVATE function,
 * which would tie the library to one glibc release; the default stack is
 * address space, with only the pages a pass touches resident. It runs at
 * the default policy: pthread_create copies the creator's, and the thread
 * whose slow path starts it may be a SCHED_FIFO one (bgp_sched). Asked
 * for only then: a sandbox may refuse sched_setscheduler, which that asks
 * of the kernel.
 */
static int bg_create(pthread_t *t)
{
	struct sched_param none = { 0 };
	pthread_attr_t attr;
	int err = pthread_attr_init(&attr), pol = sched_getscheduler(0);

	if (err)
		return err;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pol == SCHED_FIFO || pol == SCHED_RR) {
		pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
		pthread_attr_setschedpolicy(&attr, SCHED_OTHER);
		pthread_attr_setschedparam(&attr, &none);
	}
	err = pthread_create(t, &attr, bg_main, NULL);
	pthread_attr_destroy(&attr);
	return err;
}

/*
 * The thread's name, hakmem-purge, comes with its clone: a new thread
 * starts with its creator's name, so the creator takes that name for the
 * length of pthread_create and then its own back (PR_SET_NAME, no file).
 * pthread_setname_np on another thread opens /proc/self/task/N/comm,
 * without O_CLOEXEC in glibc 2.36, so a thread of the program that
 * forked and exec'd meanwhile passed the descriptor on, and a program at
 * its descriptor limit had its purge thread unnamed (bgp_name). Every
 * signal is blocked around it (hak_bgpurge_start), so no handler of the
 * program reads the borrowed name; raw system calls, not the interposed
 * prctl, which watches for sandboxes.
 */
static int bg_create_named(pthread_t *t)
{
	char own[16] = "";
	bool named = !syscall(SYS_prctl, PR_GET_NAME, own, 0UL, 0UL, 0UL) &&
		     !syscall(SYS_prctl, PR_SET_NAME, "hakmem-purge", 0UL, 0UL, 0UL);
	int err = bg_create(t);

	if (named)
		syscall(SYS_prctl, PR_SET_NAME, own, 0UL, 0UL, 0UL);
	return err;
}

void hak_bgpurge_start(void)
{
	sigset_t all, old;
	pthread_t t;
	int err;
	bool ok;

	if (arch_cmpxchg(&__hak_bgpurge_state, BG_NONE, BG_STARTING) != BG_NONE)
		return;
	/*
	 * Not in a seccomp sandbox (lib/os.c, "Sandboxes"): clone is not
	 * among malloc's system calls, and OpenSSH's pre-auth child, for one,
	 * is killed by it. Told once when the filter was there at exec (a
	 * unit's setting); a program that sandboxes itself later (each
	 * pre-auth child of sshd) is not told each time.
	 */
	if (__hak_os_sandboxed()) {
		if (!__hak_os_sandboxed_late())
			__hak_report("HAKMEM_BACKGROUND_PURGE=1: no purge thread in a seccomp "
				     "sandbox (HAKMEM_SANDBOX=0 if its filter fails calls "
				     "instead of killing); only the program's own calls purge");
		arch_store_release(&__hak_bgpurge_state, BG_FAILED);
		return;
	}
	if (!arch_load_relaxed(&bg_atfork_done)) {
		arch_store_relaxed(&bg_atfork_done, 1);
		__hak_atfork(NULL, NULL, bg_fork_child);
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = bg_create_named(&t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	ok = !err;
	if (ok) {
		arch_fetch_add(&bg_starts, 1UL);
	} else {
		/* once per process: the state stays FAILED (a fork child tries again) */
		__hak_report("HAKMEM_BACKGROUND_PURGE=1: no purge thread (%s); "
			     "only the program's own calls purge", strerror(err));
	}
	arch_store_release(&__hak_bgpurge_state, ok ? BG_RUNNING : BG_FAILED);
}

void hak_bgpurge_stats(struct hak_bgpurge_stats *st)
{
	st->running = arch_load_relaxed(&__hak_bgpurge_state) == BG_RUNNING;
	st->starts = arch_load_relaxed(&bg_starts);
	st->wakeups = arch_load_relaxed(&bg_wakeups);
	st->passes = arch_load_relaxed(&bg_passes);
	st->purged_bytes = arch_load_relaxed(&bg_bytes);
}
