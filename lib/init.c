// SPDX-License-Identifier: MIT
/*
 * Process start-up, thread exit and fork.
 *
 * __hak_init_slow() runs once. Re-entry from the same thread (a malloc
 * made by pthread_atfork, say) returns at once: the core needs no set-up to
 * work, init only adds options and handlers. Other threads wait for it.
 *
 * Fork: see "Fork" below for the lock order and the argument that it
 * cannot deadlock against the C library's own fork-time locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/single_threaded.h>
#include <asm/atomic.h>
#include <asm/processor.h>
#include "heap.h"
#include "init.h"
#include "os.h"
#include "grow.h"
#include "large.h"
#include "meta.h"
#include "purge.h"
#include "superslab.h"
#include "boxes/bigcache/bigcache.h"
#include "boxes/heapprof/heapprof.h"
#include "boxes/l25_pool/l25.h"

int __hak_init_done __boot_once;
static int init_state __boot_once;			/* 0 none, 1 running, 2 done */
static __thread int init_running;	/* this thread is inside init */
static pthread_key_t exit_key __boot_once;
static int exit_key_ok __boot_once;

static void stats_setup(void);

static void thread_exit(void *arg)
{
	(void)arg;
	__hak_heap_detach();
	__hak_grow_detach();
}

/*
 * Fork
 * ====
 *
 * Single-threaded process (__libc_single_threaded): the handlers do
 * nothing. fork() may run in a signal handler that interrupted malloc in
 * the middle of an update with an allocator lock held; taking that lock
 * would wait forever. Nothing needs it: with one thread, no other thread
 * can hold a lock or change allocator state, and the child is a copy of
 * that one thread, whose own frames release what they hold when the
 * handler returns, in the parent and in the child alike. (A child that
 * does not return from the handler may only call async-signal-safe
 * functions, as with glibc, whose fork skips its malloc locks in the same
 * case.) __libc_single_threaded is a plain byte the C library clears in
 * pthread_create before the second thread exists and never sets again, so
 * reading it is async-signal-safe and it is never true while a second
 * thread runs. Threads made with a raw clone() are outside this promise,
 * as they are for glibc. The decision is taken once, in prepare, and
 * parent/child follow it (fork_locked, the forking thread's own), so the
 * three always agree.
 *
 * Multi-threaded process, fork() in a signal handler that interrupted the
 * allocator: the interrupted frame may hold some of our locks. Prepare
 * takes every other lock and leaves those (hak_lock_fork_take, lock.h):
 * no other thread can be inside them, and the frame releases them when the
 * handler returns, in the parent and in the child, where they are
 * re-initialised held by the child's thread. Before, prepare waited for
 * its own thread (selftests/core/fork_signal_mt).
 *
 * Fork, back-off. glibc does not serialise forks: it drops its handler-list
 * lock while each prepare handler runs. A handler fork whose frame holds an
 * allocator lock L ("urgent") meets another fork whose prepare holds the
 * stream-list lock and the locks before L and waits for L: the urgent fork
 * waits for the stream-list lock, the frame cannot give L back before its
 * handler returns, and both wait for good (tools/repro/fork_storm -s, branch
 * fk16). So:
 *  - an urgent fork announces itself at the top of its prepare, before it
 *    takes anything: a per-thread count of held locks (__hak_locks_held),
 *    the edge lock if the frame holds it, the profile lock, or a scan of
 *    other heaps run by the frame (others' prepares wait for that too),
 *    publishing its thread id, that edge, the scan and the profile lock in
 *    a slot;
 *  - every other prepare (its frame holds nothing, so it may wait) waits
 *    for a busy lock with a timed lock that polls the announcements every
 *    FORK_POLL_NS (also in its waits for a scan and the profile lock), and
 *    while one is pending gives back everything it took,
 *    stream-list lock last, waits for the count to reach 0 and starts
 *    again (and waits for it before it starts at all). A prepare that found
 *    every lock free never polls: an announced frame holds one;
 *  - two urgent forks: each needs the locks the other's frame holds, and
 *    those frames cannot move before their handlers return, so neither
 *    could complete. The stream-list lock serialises every prepare's lock
 *    taking, so while an urgent fork holds it, a lock held by another
 *    announced thread (by id, or its published edge) is held by that
 *    thread's frame: it is left to that frame (HAK_FORK_SKIP, lock.h) as
 *    the forking thread's own locks are: not taken, left alone by the
 *    parent handler, re-initialised free in the child. So is a lock whose
 *    holder waits in __hak_lock_wait (which lists the lock it waits for,
 *    by thread id) for a lock such a frame, or ours, holds, followed down
 *    a chain of waiters (FORK_CHAIN_MAX): locks nest (a box's before the core's),
 *    and a thread holding an L2.5 shard while it waits for the pool lock
 *    an urgent frame holds kept that fork waiting for the shard (gdb, 1
 *    run in 40-80 of fork_storm -s at 16 threads). A scan another urgent
 *    frame runs is not waited for either (and is cleared in the child),
 *    nor the profile lock such a frame holds.
 *    The parent loses nothing: every frame and every frozen holder
 *    finishes what it began once the handlers return. The child may meet
 *    their half-done updates, which nobody there finishes: like everything
 *    after a fork from a handler of a multi-threaded process, the child
 *    may only call async-signal-safe functions (POSIX). Another library's
 *    fork handler that allocates in an urgent fork's window passes a left
 *    lock as it passes the others, and may meet such an update too;
 *  - the announcement is withdrawn at the top of the parent handler (before
 *    any lock is given back: an urgent fork that sees another announced
 *    knows that one is still in its prepare), and cleared in the child.
 *  - every wait of an urgent fork is bounded: a holder kept behind a
 *    frozen frame that the fork cannot see (a waiter with no free slot in
 *    the table, a spin on the profile lock, a scan of other heaps waiting
 *    for the heap lock), or such a frame itself once its fork withdrew
 *    (its handler has not returned: it waits for this fork, say) would
 *    otherwise hang it. While a waiter or an
 *    urgent fork went unlisted, a holder not found is unsure, and its lock
 *    is left after FORK_UNSURE_NS; any busy lock, scan or profile lock
 *    after FORK_WAIT_MAX_NS (selftests/core/fork_waiters_full,
 *    fork_scan_wait, fork_two_urgent; fs19).
 *  A plain fork waits only while urgent forks are pending, each of which
 *    completes. The common fork pays one atomic count and a read of the
 *    thread's count; a contended lock, a slot claimed and given back.
 *
 * Fork, turn. Urgent forks arriving back to back, each announced before the
 * one before it withdrew, kept a plain fork on another thread waiting for
 * as long as they went on (selftests/core/fork_plain_turn: the whole 3 s
 * relay of two threads whose handlers fork; fk21): it cannot go before
 * their frames give their locks back, and none of them can wait for it. So
 * a plain fork that has to wait raises __hak_fork_turn until its prepare
 * holds every lock, and meanwhile a thread that holds no allocator lock
 * waits before it takes one (hak_fork_gate, lock.h): no new frame comes to
 * hold a lock, the urgent forks in flight complete, their frames let go,
 * and the plain fork goes next. A frame that already holds locks, scans
 * other heaps or holds the profile lock is not held back (the fork needs
 * what it holds), nor a handler whose interrupted frame is between a lock
 * word and __hak_locks_held (its edge set: it may hold that lock), nor a
 * handler on the plain fork's own thread (only the prepare it interrupted
 * lowers the turn; each waited the whole bound: fork_turn_held, rv21b),
 * nor a thread of a child made without our handlers, which inherits the
 * turn raised by a thread that is not there: the count is the process's
 * (proc_count below), 0 in any other. The wait is bounded, because the
 * held-back thread may hold what the forks need that is not ours (the
 * stream-list lock: exit's stream clean-up frees under it in Debian's
 * 2.36; glibc's handler-list lock around a pthread_atfork that allocates;
 * a stream lock that fflush(NULL) waits for under the list lock): it goes
 * on once no fork has completed for FORK_GATE_IDLE_NS, a fork holding up
 * another as long as that only when one of those is held. A relay whose
 * forks each take longer than that (a process of many GiB) can still
 * outlast the plain fork's turn: it delays it, never hangs it (each
 * urgent fork completes, and each new one is the program forking again
 * from a handler whose frame is in the allocator; design.md, "A relay of
 * slow forks").
 *  Still impossible: the stream-list lock held by a thread inside stdio that
 *    waits for an urgent frame's lock (glibc's own fork takes that lock).
 *
 * Multi-threaded process, the forking thread takes, in this order:
 *
 *   1. the C library's list-of-streams lock (_IO_list_lock, exported by
 *      glibc since 2.2.5; it is recursive, so fork taking it again below
 *      is fine);
 *   2. every allocator lock: heap profiler -> heap -> L2.5 -> BigCache ->
 *      large shards -> grow areas -> meta -> superslab (a box's locks come before the core locks it
 *      calls into);
 *   and then glibc's fork takes, after all prepare handlers: atfork_lock
 *   (its handler list), the NSS database lock (taken and dropped), the
 *   stream list again, and its own malloc's arena locks.
 *
 * Why this order cannot deadlock. A deadlock needs a thread holding one of
 * these locks while it waits for one taken earlier in the order.
 *  - Stream locks. fflush(NULL), exit's flush and fopen/fclose take the
 *    list lock, then a stream's lock, and may allocate under either
 *    (buffers): list -> stream -> allocator. getline/getdelim and every
 *    other stdio call allocate under the stream's lock only: stream ->
 *    allocator. The forking thread takes the list lock before any
 *    allocator lock and never a stream's lock, so both chains agree with
 *    the order. (Taking the allocator locks first, as plain pthread_atfork
 *    handlers do, closes the cycle fork -> allocator -> list, fflush ->
 *    list -> stream, getline -> stream -> allocator: that was the hang.)
 *  - Allocator locks among themselves: the order above is the order every
 *    slow path nests them in.
 *  - glibc's malloc locks: hakmem never calls glibc's malloc.
 *  - The dynamic loader's lock: fork (2.36) does not take it (the child
 *    re-initialises it), and hakmem never calls into the loader (no dlsym,
 *    no dlopen) with or without a lock held.
 *  - Other libraries' fork handlers, which run while we hold our locks
 *    (prepare handlers registered before ours run after ours; parent and
 *    child handlers registered before ours run before ours) and may
 *    allocate: the forking thread is marked __hak_fork_holder and passes
 *    every allocator lock (lock.h). It holds all of them, so no other thread
 *    is inside a critical section and its allocations are exclusive.
 *  - Nothing of ours in the window can reach stdio, the loader or malloc:
 *    the handlers only lock, unlock and re-initialise, and diagnostics
 *    (__hak_report) format with their own code and write(2).
 *  - Left over, and documented (Documentation/design.md): atfork_lock and
 *    the NSS lock are taken after ours and are held, rarely, around an
 *    allocation (pthread_atfork past the 48 handlers glibc keeps without
 *    allocating; an NSS configuration reload). A fork racing exactly such
 *    a call in another thread can still wait for it; no allocator that
 *    registers pthread_atfork handlers can order itself after them.
 *
 * The parent releases in reverse order; the child re-initialises our locks
 * (their holders other than us do not exist there) and leaves the stream
 * list alone: glibc resets it in the child before any child handler runs.
 * The child keeps the forking thread's heap; the heaps of threads that do
 * not exist in the child stay attached to nobody (their memory is a copy
 * the child never uses).
 *
 * vfork, posix_spawn and _Fork run no handlers: the vfork/spawn child only
 * execs or exits, and a _Fork child of a multi-threaded process may only
 * call async-signal-safe functions (POSIX), so it never reaches malloc.
 */
__thread int __hak_fork_holder __attribute__((tls_model("initial-exec")));

#ifdef __GLIBC__
/* What pthread_atfork() calls, with the caller's __dso_handle (glibc 2.3.2 on). */
extern int __register_atfork(void (*prepare)(void), void (*parent)(void),
			     void (*child)(void), void *dso_handle);
#endif

/*
 * Register fork handlers that stay registered for the life of the process.
 * pthread_atfork() ties them to the calling object, and glibc's
 * __cxa_finalize() for that object (run by exit() with the object's
 * destructors, or by dlclose) takes them off the list. exit() runs while
 * other threads still fork, and glibc's fork drops its handler-list lock
 * while each handler runs: the handlers were removed between a fork's
 * prepare (every allocator lock and the stream-list lock taken) and its
 * parent handler, which then never ran, nor did the child's; exit() waited
 * in _IO_cleanup for the stream-list lock and the child for the allocator's,
 * for good (selftests/core/exit_fork: 7 runs in 10 hung). The allocator
 * serves the process until its very end (it is never unloaded while in use),
 * so its handlers are registered with no object, which nothing unregisters
 * (and the shared library is linked -z nodelete: a dlclose never unmaps them).
 */
int __hak_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void))
{
#ifdef __GLIBC__
	return __register_atfork(prepare, parent, child, NULL);
#else
	return pthread_atfork(prepare, parent, child);
#endif
}
/* this thread's fork took the locks (prepare, parent and child all run on it) */
static __thread bool fork_locked;
/* the calling thread's id, read again by each __hak_lock_mine and fork announcement */
static __thread pid_t my_tid __attribute__((tls_model("initial-exec")));

/*
 * The calling thread's id without a system call: glibc writes the
 * locker's id into a mutex it takes (the field __hak_lock_mine reads), so
 * a mutex of our own, taken and given back, tells it. gettid is not in
 * every seccomp filter's list (OpenSSH's pre-auth one kills it), and a
 * threaded program's first contended lock asked for it
 * (selftests/core/sandbox, point 2).
 */
static pid_t own_tid(void)
{
#ifdef __GLIBC__
	pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	pid_t tid;

	pthread_mutex_lock(&m);
	tid = m.__data.__owner;
	pthread_mutex_unlock(&m);
	if (tid > 0)
		return tid;
#endif
	return gettid();
}

__thread struct hak_lock *__hak_lock_edge __attribute__((tls_model("initial-exec")));
__thread unsigned __hak_locks_held __attribute__((tls_model("initial-exec")));

/*
 * glibc records the holder's thread id in every mutex it locks (and clears
 * it at unlock); only the holder writes its own id there, so reading it
 * back equal to ours means we hold it, whatever the race. A busy lock with
 * no holder is a thread between the lock word and the holder field: ours,
 * interrupted there, if edge is l (it never moves on while we run), or
 * another, which writes its id or frees the word in a moment: a bounded
 * wait tells them apart. Elsewhere the answer is "no": the caller then
 * waits, as it always did.
 */
static bool frame_waits_for(const struct hak_lock *l);
static uint64_t mono_ns(void);

/*
 * How long a busy lock with no holder id is watched, when the frame is
 * known to be waiting for it in __hak_lock_wait, before it is taken as the
 * frame's: there the frame is asleep in the futex (not holding it) unless
 * the signal landed in the few instructions of pthread_mutex_lock between
 * the lock word and the holder field, so the other case, another thread
 * between the two (locking, or unlocking: glibc clears the holder first)
 * and preempted, must have all the time a loaded machine may take to run
 * it again. 256 yields were not enough at load 130 (fork_storm -c, rv18):
 * the fork left a lock it never had to the frame, and the child's copy
 * of it stayed held.
 */
#define LOCK_MINE_WAIT_NS	(1000 * 1000 * 1000ull)

bool __hak_lock_mine(const struct hak_lock *l, const struct hak_lock *edge)
{
#ifdef __GLIBC__
	uint64_t until = 0;
	int owner;

	my_tid = own_tid();	/* not cached: a _Fork child's thread has a new id */
	owner = __atomic_load_n(&l->mu.__data.__owner, __ATOMIC_RELAXED);
	if (owner || edge != l)
		return owner == my_tid;
	for (unsigned n = 0;; n++) {
		if (n >= 256) {
			if (!until && frame_waits_for(l))
				until = mono_ns() + LOCK_MINE_WAIT_NS;
			if (!until || mono_ns() >= until)
				return true;
		}
		__hak_os_yield();
		owner = __atomic_load_n(&l->mu.__data.__owner, __ATOMIC_RELAXED);
		if (owner)
			return owner == my_tid;
		if (!__atomic_load_n(&l->mu.__data.__lock, __ATOMIC_RELAXED))
			return false;	/* given back: another thread's */
	}
#else
	(void)l;
	(void)edge;
	return false;
#endif
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	__hak_os_clock(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Under SCHED_FIFO or SCHED_RR a thread that sleeps hands its CPU to the
 * next runnable thread of its priority, never back to the one it waits
 * for: past the cores that is a thread not started yet, which then starts
 * its work (and its memory), and the sleeper, once woken, queues behind
 * every thread started so far. Nothing sleeps while it holds an allocator
 * lock (system calls and first touches happen with ss_lock dropped,
 * lib/superslab.c), so there a waiter spins, up to HAK_RT_SPIN_NS; the
 * default scheduler runs the holder when a waiter sleeps, so there it
 * does not (glibc's adaptive spin only). size-chain at 64 threads under
 * chrt -f 1: Documentation/design.md, "Scaling past the cores", sixteenth
 * pass. A system call, only when a lock or a refill is found busy.
 */
#define HAK_RT_SPIN_NS		1000000u

static bool rt_policy(void)
{
	/*
	 * The policy comes back with SCHED_RESET_ON_FORK or'ed in when that
	 * is set, and it always is for a thread made real-time by rtkit (which
	 * grants nothing without it) or by chrt -R: masked, or they never spin.
	 */
	int p;

	if (__hak_os_sandboxed())
		return false;	/* sched_getscheduler is not malloc's: glibc's wait */
	p = sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
	return p == SCHED_FIFO || p == SCHED_RR;
}

/*
 * Spin while *word is not 0: true once it is, false when the caller does
 * not run under a real-time policy or HAK_RT_SPIN_NS have passed since
 * the first call with *end 0 (the deadline is kept there).
 */
bool __hak_rt_spin(const int *word, uint64_t *end)
{
	unsigned n;

	if (!*end) {
		if (!rt_policy())
			return false;
		*end = mono_ns() + HAK_RT_SPIN_NS;
	}
	for (n = 1;; n++) {
		arch_cpu_relax();
		if (!__atomic_load_n(word, __ATOMIC_ACQUIRE))
			return true;
		if (!(n % 64) && mono_ns() > *end)
			return false;
	}
}

/*
 * Threads waiting in __hak_lock_wait, and for which lock, by thread id
 * (probed linearly; a waiter that finds no free slot is not listed). An
 * urgent fork follows them to a holder that cannot move before it
 * completes.
 */
#define LOCK_WAITERS		256
#define LOCK_WAITER_PROBES	8
static struct lock_waiter {
	pid_t tid;				/* atomic: 0 free, -1 being filled */
	const struct hak_lock *lock;
} lock_waiters[LOCK_WAITERS];
/*
 * Was a slot of lock_waiters or urgent_slots ever taken in this process
 * or its parents (atomic, set before the slot)? Else fork_child has
 * nothing to clear: its memsets wrote 4.8 KiB of zeros over zeros in
 * every child, two or three page faults a fork (a shell's subshells).
 */
static int slots_used __boot_once;

static void slots_note(void)
{
	if (!arch_load_relaxed(&slots_used))
		arch_store_release(&slots_used, 1);
}
/*
 * Waiters that found no slot (atomic): while there are any, a holder not
 * found in the table may be one of them, waiting for a frozen frame's lock
 * (selftests/core/fork_waiters_full: 512 waiters, the fork waited for good).
 */
static int nr_unlisted __boot_once;
/* this thread's part of it: its frame's, in the child of a handler fork */
static __thread int unlisted_here;

static struct lock_waiter *waiter_add(const struct hak_lock *l)
{
	unsigned i;

	if (my_tid > 0)
		slots_note();
	for (i = 0; my_tid > 0 && i < LOCK_WAITER_PROBES; i++) {
		struct lock_waiter *w = &lock_waiters[((unsigned)my_tid + i) % LOCK_WAITERS];

		if (arch_load_relaxed(&w->tid) || arch_cmpxchg(&w->tid, (pid_t)0, (pid_t)-1) != 0)
			continue;
		w->lock = l;
		arch_store_release(&w->tid, my_tid);
		return w;
	}
	return NULL;
}

static void waiter_del(struct lock_waiter *w)
{
	if (w)
		arch_store_release(&w->tid, (pid_t)0);
}

/* Is the calling thread's interrupted frame listed as waiting for l? */
static bool frame_waits_for(const struct hak_lock *l)
{
	unsigned i;

	for (i = 0; my_tid > 0 && i < LOCK_WAITER_PROBES; i++) {
		struct lock_waiter *w = &lock_waiters[((unsigned)my_tid + i) % LOCK_WAITERS];

		if (arch_load_acquire(&w->tid) == my_tid && arch_load_relaxed(&w->lock) == l)
			return true;
	}
	return false;
}

static const struct hak_lock *waiting_for(pid_t tid)
{
	unsigned i;

	for (i = 0; i < LOCK_WAITER_PROBES; i++) {
		struct lock_waiter *w = &lock_waiters[((unsigned)tid + i) % LOCK_WAITERS];
		const struct hak_lock *l;

		if (arch_load_acquire(&w->tid) != tid)
			continue;
		l = arch_load_relaxed(&w->lock);
		/* still tid's entry after the read (not freed and taken meanwhile) */
		arch_smp_mb();
		return arch_load_relaxed(&w->tid) == tid ? l : NULL;
	}
	return NULL;
}

void __hak_lock_wait(struct hak_lock *l, const struct hak_lock *edge)
{
	if (__hak_lock_mine(l, edge)) {
		__hak_report("the allocator was called again while this thread holds one of its "
			     "locks (from a signal handler that interrupted it? malloc is not "
			     "async-signal-safe)");
		abort();
	}
#ifdef __GLIBC__
	{
		uint64_t end = 0;
		/* listed for a handler fork's prepare (holder_frozen) */
		struct lock_waiter *w = waiter_add(l);
		bool got = false;

		if (!w) {
			unlisted_here++;
			arch_fetch_add(&nr_unlisted, 1);
		}
		/* free again before the spin ran out: try it (another may win it) */
		while (!got && __hak_rt_spin(&l->mu.__data.__lock, &end))
			got = !pthread_mutex_trylock(&l->mu);
		if (!got)
			pthread_mutex_lock(&l->mu);
		if (w) {
			waiter_del(w);
		} else {
			arch_fetch_add(&nr_unlisted, -1);
			unlisted_here--;
		}
		return;
	}
#endif
	pthread_mutex_lock(&l->mu);
}

extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));

/* A C library without the stream-list lock (not glibc) leaves it NULL. */
static void call_weak(void (*fn)(void))
{
	if (fn)
		fn();
}

/*
 * Each layer's locks, in the order prepare takes them: take returns false
 * when it backed off (it then holds none of its own), give is the parent
 * handler.
 */
static const struct fork_step {
	bool (*take)(void);
	void (*give)(void);
} fork_steps[] = {
	{ hak_prof_fork_prepare, hak_prof_fork_parent },
	{ __hak_heap_fork_prepare, __hak_heap_fork_parent },
	{ hak_l25_fork_prepare, hak_l25_fork_parent },
	{ hak_bigcache_fork_prepare, hak_bigcache_fork_parent },
	{ __hak_large_fork_prepare, __hak_large_fork_parent },
	{ __hak_grow_fork_prepare, __hak_grow_fork_parent },
	{ __hak_meta_fork_prepare, __hak_meta_fork_parent },
	{ __hak_ss_fork_prepare, __hak_ss_fork_parent },
};
#define NR_FORK_STEPS	(sizeof(fork_steps) / sizeof(fork_steps[0]))

/*
 * Handler forks whose frame holds an allocator lock ("urgent"): how many
 * have announced themselves (at the top of their prepare; withdrawn at the
 * top of their parent handler), and each one's thread id, the lock its
 * frame was taking or giving back (its edge, when that frame holds it) and
 * whether that frame scans other heaps. See "Fork, back-off" above.
 */
#define FORK_URGENT_SLOTS	32
static struct fork_urgent {
	pid_t tid;			/* atomic: 0 free, -1 being filled */
	const struct hak_lock *edge;
	bool scanning;
	bool prof;			/* holds the profile lock */
} urgent_slots[FORK_URGENT_SLOTS];
/* atomic; a count of one process (proc_count_add), as __hak_fork_turn */
static uint64_t nr_urgent __boot_once;
/*
 * Of those, announced without a slot (atomic): while there are any, a
 * holder not found in the slots may be such a frame.
 */
static int nr_unslotted __boot_once;
static __thread struct fork_urgent *urgent_here;	/* this thread's slot... */
static __thread bool fork_urgent_here;			/* ...or announcement */
static unsigned long nr_forks, nr_fork_urgent, nr_fork_backoffs, nr_fork_skips;	/* atomic */
/* atomic: waits given up after a bound (a lock's count in the skips too, a scan, the profile lock) */
static unsigned long nr_fork_waited_out;

/*
 * This thread's forks between their prepare and parent handlers: more than
 * one when a handler fork interrupted the thread's own fork (in its
 * prepare, or its system call, which restarts; lock.h, HAK_FORK_BITS). Each
 * level keeps the enclosing one's announcement and gives it back in its
 * parent handler: the inner fork withdrew "the thread's" announcement, the
 * outer then had none to withdraw, nr_urgent stayed 1, and every later fork
 * of a thread holding no lock backed off for good (selftests/core/
 * fork_nested). An inner fork whose own frame holds nothing stays urgent
 * if the outer is: its frame (the outer's prepare) holds the outer's locks.
 * Past FORK_NEST levels the enclosing announcement stands.
 */
#define FORK_NEST	4
static __thread unsigned fork_depth;
static __thread struct fork_level {
	struct fork_urgent *slot;	/* the enclosing level's urgent_here */
	bool urgent;			/* the enclosing level's fork_urgent_here */
	pid_t announced;		/* this level counts in nr_urgent of this process */
} fork_levels[FORK_NEST];

/* A fork polls for announcements this often while it waits for a lock. */
#define FORK_POLL_NS		200000u

/*
 * Plain forks waiting their turn behind urgent ones (atomic; "Fork, turn"),
 * and the forks of a multi-threaded process through their parent handler,
 * by which a thread held back for a turn tells that forks still complete.
 */
uint64_t __hak_fork_turn __boot_once;	/* read by every lock, written by waiting forks */
static unsigned long nr_forks_done, nr_fork_turns, nr_fork_gated;	/* atomic */
/*
 * Turns this thread's prepare holds raised (a handler fork may nest in its
 * wait): a handler of this thread that waited for them would wait for the
 * frame it interrupted, which alone lowers them; in a child of such a
 * handler fork, the outer frames that go on lower these and no others.
 */
static __thread int turn_here;

/*
 * Counts of one process: __hak_fork_turn and nr_urgent, each one word with
 * the process's id in its high 32 bits and the count in its low 32, 0 when
 * the count is 0. A child made without our fork handlers (_Fork, a raw
 * clone) inherits both raised by threads that are not there, and nothing
 * there would lower them: with a count in a word and the process in
 * another (turn_pid, fk21), every lock take there paid a getpid to learn
 * the turn was not its own, a turn it took added to the parent's and was
 * never lowered to 0 (each lock take held back the whole gate bound), and
 * its first fork backed off for good for the parent's announcement
 * (selftests/core/fork_turn_child). Now a count raised in another process
 * is 0 here, one raised here starts from 0, and each is lowered under the
 * id it was raised under: a frame that goes on in a child (a handler fork
 * or _Fork that interrupted its prepare) leaves the child's count alone.
 * Read in a process that shares the parent's memory under another id (a
 * vfork child, a raw clone with CLONE_VM), the parent's counts are 0 too:
 * such a child's lock takes are not held back, as before, and the first
 * clears the parent's turn (its plain fork then waits as before fk21).
 */
static uint32_t proc_count(uint64_t v, pid_t pid)
{
	return v && (pid_t)(v >> 32) == pid ? (uint32_t)v : 0;
}

/* d is 1 or -1; -1 from a count that is 0 in pid (raised in another process) does nothing */
static void proc_count_add(uint64_t *w, pid_t pid, int d)
{
	uint64_t old = arch_load_relaxed(w);

	for (;;) {
		uint32_t n = proc_count(old, pid);
		uint64_t seen;

		if (d < 0 && !n)
			return;
		n += (uint32_t)d;
		seen = arch_cmpxchg(w, old, n ? (uint64_t)(uint32_t)pid << 32 | n : 0);
		if (seen == old)
			return;
		old = seen;
	}
}

static void fork_announce(void)
{
	struct hak_lock *edge = __hak_lock_edge;
	bool scanning = __hak_heap_scanning_here();
	bool prof = hak_prof_fork_mine();
	bool edge_mine = edge && __hak_lock_mine(edge, edge);
	unsigned i, d = fork_depth++;

	barrier();	/* a handler fork in here nests one level deeper */
	if (d >= FORK_NEST)
		return;
	fork_levels[d] = (struct fork_level){ urgent_here, fork_urgent_here, 0 };
	if (!__hak_locks_held && !edge_mine && !scanning && !prof)
		return;
	my_tid = own_tid();	/* not cached: a _Fork child's thread has a new id */
	fork_levels[d].announced = __hak_os_getpid();
	fork_urgent_here = true;
	urgent_here = NULL;
	arch_fetch_add(&nr_fork_urgent, 1UL);
	proc_count_add(&nr_urgent, fork_levels[d].announced, 1);
	/* no slot free (32 such forks at once): others wait for this frame */
	slots_note();
	for (i = 0; i < FORK_URGENT_SLOTS; i++) {
		struct fork_urgent *u = &urgent_slots[i];

		if (arch_cmpxchg(&u->tid, (pid_t)0, (pid_t)-1) != 0)
			continue;
		u->edge = edge_mine ? edge : NULL;
		u->scanning = scanning;
		u->prof = prof;
		arch_store_release(&u->tid, my_tid);
		urgent_here = u;
		break;
	}
	if (!urgent_here)
		arch_fetch_add(&nr_unslotted, 1);
}

static void fork_withdraw(void)
{
	unsigned d = fork_depth;

	/* 0: an outer fork going on in the child of an inner one (reset there) */
	if (!d--)
		return;
	if (d < FORK_NEST) {
		struct fork_level lv = fork_levels[d];

		if (lv.announced) {
			if (urgent_here)
				arch_store_release(&urgent_here->tid, (pid_t)0);
			else
				arch_fetch_add(&nr_unslotted, -1);
			proc_count_add(&nr_urgent, lv.announced, -1);
		}
		urgent_here = lv.slot;
		fork_urgent_here = lv.urgent;
	}
	/* last: a handler fork before this nests a level deeper, not over d */
	barrier();
	fork_depth = d;
}

/* Is tid an announced urgent fork's thread, or l the edge its frame holds? */
static bool urgent_frame(pid_t tid, const struct hak_lock *l)
{
	unsigned i;

	for (i = 0; i < FORK_URGENT_SLOTS; i++) {
		struct fork_urgent *u = &urgent_slots[i];
		pid_t t = arch_load_acquire(&u->tid);

		if (t > 0 && ((tid && t == tid) || (l && u->edge == l)))
			return true;
	}
	return false;
}

/*
 * Does the frame of another announced urgent fork run a scan of other heaps
 * (prof: hold the profile lock)?
 */
static bool other_urgent_has(bool prof)
{
	unsigned i;

	for (i = 0; i < FORK_URGENT_SLOTS; i++) {
		struct fork_urgent *u = &urgent_slots[i];

		if (u != urgent_here && arch_load_acquire(&u->tid) > 0 &&
		    (prof ? u->prof : u->scanning))
			return true;
	}
	return false;
}

/* What an urgent fork's prepare knows of a busy lock's holder (holder_state). */
enum holder {
	HOLDER_MOVES,		/* found running, or waiting for a holder that runs */
	HOLDER_FROZEN,		/* cannot move before this fork completes */
	HOLDER_UNSURE,		/* not found, while some waiter or urgent fork is unlisted */
};

/*
 * Locks nest in the order fork takes them (each holder down a chain waits
 * for a lock later in that order than the one it holds), so a chain has at
 * most as many links as the order has ranks, fewer than this (profile,
 * unwind, heap, L2.5 shards, L2.5 pool, BigCache, large wholes, large
 * shards, grow list, grow area, meta, superslab: 12); a walk longer than
 * that read the chain while it changed.
 */
#define FORK_CHAIN_MAX		16

/*
 * Asked by an urgent fork, which holds the stream-list lock: every other
 * fork's prepare is then outside its lock-taking part, so a lock another
 * urgent thread holds is its frame's, and that frame cannot move before its
 * handler returns. Can the holder of the busy lock l not move before this
 * fork completes? It is such a frame (ours included), or it waits, directly
 * or down a chain of waiters, for a lock one of those holds. A holder found
 * neither waiting nor such a frame may still be one that went unlisted (no
 * free slot in either table): unsure.
 */
static enum holder holder_state(const struct hak_lock *l)
{
#ifdef __GLIBC__
	bool unsure = arch_load_relaxed(&nr_unlisted) || arch_load_relaxed(&nr_unslotted);
	unsigned n;

	for (n = 0; n < FORK_CHAIN_MAX; n++) {
		pid_t owner = __atomic_load_n(&l->mu.__data.__owner, __ATOMIC_RELAXED);

		if (urgent_frame(owner, l))
			return HOLDER_FROZEN;
		if (owner <= 0 || !(l = waiting_for(owner)))
			return unsure ? HOLDER_UNSURE : HOLDER_MOVES;
	}
	return HOLDER_UNSURE;
#else
	(void)l;
	return HOLDER_MOVES;
#endif
}

/*
 * How long an urgent fork waits for a busy lock (a scan, the profile lock)
 * before it leaves it to its holder all the same, as it leaves a frozen
 * holder's at once: unsure, a little; found moving, long enough for any
 * preempted holder at the loads seen here (as LOCK_MINE_WAIT_NS). These
 * bound every wait of an urgent fork, whatever keeps a holder from moving
 * (a waiter not listed, a thread spinning on the profile lock or waiting
 * for a scan while it holds a lock, a scan waiting for a frame's lock):
 * the frame cannot go on before the fork completes, so a holder that waits
 * for it, however, would wait for good. Leaving costs what every left lock
 * costs: nothing in the parent, a half-done update in the child, which may
 * only call async-signal-safe functions.
 */
#define FORK_UNSURE_NS		(20 * 1000 * 1000ull)
#define FORK_WAIT_MAX_NS	(1000 * 1000 * 1000ull)

/*
 * Has this urgent fork waited long enough (since *start; 0: not yet
 * started)? Never without the stream-list lock (a C library other than
 * glibc): there nothing serialises the forks' windows, on which the
 * argument for leaving a lock rests (lock.h, HAK_FORK_BITS).
 */
static bool fork_waited_out(enum holder h, uint64_t *start)
{
	uint64_t now;

	if (!_IO_list_lock)
		return false;
	now = mono_ns();
	if (!*start) {
		*start = now;
		return false;
	}
	if (now - *start < (h == HOLDER_UNSURE ? FORK_UNSURE_NS : FORK_WAIT_MAX_NS))
		return false;
	arch_fetch_add(&nr_fork_waited_out, 1UL);
	return true;
}

bool __hak_fork_backoff(void)
{
	uint64_t v;

	if (fork_urgent_here || !(v = arch_load_acquire(&nr_urgent)))
		return false;
	return proc_count(v, __hak_os_getpid());
}

bool __hak_fork_scan_skip(uint64_t *start)
{
	return fork_urgent_here &&
	       (other_urgent_has(false) || fork_waited_out(HOLDER_MOVES, start));
}

bool __hak_fork_prof_skip(uint64_t *start)
{
	return fork_urgent_here &&
	       (other_urgent_has(true) || fork_waited_out(HOLDER_MOVES, start));
}

int __hak_lock_fork_wait(struct hak_lock *l)
{
	uint64_t start = 0;

	for (;;) {
		struct timespec ts;
		enum holder h;

		if (__hak_fork_backoff())
			return -1;
		if (fork_urgent_here && ((h = holder_state(l)) == HOLDER_FROZEN ||
					 fork_waited_out(h, &start))) {
			arch_fetch_add(&nr_fork_skips, 1UL);
			return HAK_FORK_SKIP;
		}
		__hak_os_clock(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += FORK_POLL_NS;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
#ifdef __GLIBC__
		if (!pthread_mutex_clocklock(&l->mu, CLOCK_MONOTONIC, &ts))
			return HAK_FORK_TAKEN;
#else
		if (!pthread_mutex_trylock(&l->mu))
			return HAK_FORK_TAKEN;
		__hak_os_nap(FORK_POLL_NS);
#endif
	}
}

/*
 * How long a thread held back for a plain fork's turn waits with no fork
 * completing meanwhile: as long as an urgent fork waits for a busy lock
 * (a fork of a large process, or of one on a loaded machine, completes in
 * it; a held-back thread holding the stream-list lock stalls the forks
 * that long).
 */
#define FORK_GATE_IDLE_NS	FORK_WAIT_MAX_NS

void __hak_fork_gate(void)
{
	unsigned long done = 0;
	uint64_t since = 0, v;
	pid_t pid;
	int saved;

	/* what a fork waits for: this frame must finish it (as an urgent fork's) */
	if (__hak_heap_scanning_here() || hak_prof_fork_mine())
		return;
	/*
	 * An interrupted frame between a lock word and __hak_locks_held (its
	 * edge set) may hold that lock; a turn of this thread's is lowered
	 * only by the frame interrupted (selftests/core/fork_turn_held; rv21b).
	 */
	if (__hak_lock_edge || turn_here)
		return;
	if (!(v = arch_load_acquire(&__hak_fork_turn)))
		return;
	saved = errno;
	pid = __hak_os_getpid();
	if (!proc_count(v, pid)) {
		/*
		 * Raised in another process, counting nothing here: cleared, so
		 * this child's later takes cost the one load again (a turn
		 * raised here meanwhile changed the word, and stays).
		 */
		arch_cmpxchg(&__hak_fork_turn, v, (uint64_t)0);
		errno = saved;
		return;
	}
	arch_fetch_add(&nr_fork_gated, 1UL);
	while (proc_count(arch_load_acquire(&__hak_fork_turn), pid)) {
		unsigned long d = arch_load_relaxed(&nr_forks_done);
		uint64_t now = mono_ns();

		if (!since || d != done) {
			since = now;
			done = d;
		} else if (now - since >= FORK_GATE_IDLE_NS) {
			break;
		}
		__hak_os_nap(FORK_POLL_NS / 4);
	}
	errno = saved;
}

/* Take every allocator lock in order; false: backed off, none held. */
static bool fork_take_all(void)
{
	unsigned i;

	for (i = 0; i < NR_FORK_STEPS; i++)
		if (!fork_steps[i].take())
			break;
	if (i == NR_FORK_STEPS)
		return true;
	while (i--)
		fork_steps[i].give();
	return false;
}

/*
 * A plain fork that has to wait for urgent ones takes its turn ("Fork,
 * turn"), under this process's id (*turn, 0: none taken yet). A prepare
 * that goes on in a child (a handler fork that interrupted it) and waits
 * there takes it again, under the child's.
 */
static void fork_turn_take(pid_t *turn)
{
	pid_t pid = __hak_os_getpid();

	if (*turn == pid)
		return;
	if (!*turn) {
		arch_fetch_add(&nr_fork_turns, 1UL);
		turn_here++;
	}
	*turn = pid;
	proc_count_add(&__hak_fork_turn, pid, 1);
}

static void fork_prepare(void)
{
	pid_t turn = 0;

	fork_locked = !__libc_single_threaded;
	if (!fork_locked)
		return;
	arch_fetch_add(&nr_forks, 1UL);
	fork_announce();
	for (;;) {
		while (__hak_fork_backoff()) {
			fork_turn_take(&turn);
			__hak_os_nap(FORK_POLL_NS / 4);
		}
		call_weak(_IO_list_lock);
		if (fork_take_all())
			break;
		call_weak(_IO_list_unlock);
		arch_fetch_add(&nr_fork_backoffs, 1UL);
		fork_turn_take(&turn);
	}
	/* held: the threads held back now wait for our locks, as they would */
	if (turn) {
		proc_count_add(&__hak_fork_turn, turn, -1);
		turn_here--;
	}
	/*
	 * A count, not a flag: a handler fork inside this thread's own fork
	 * window (rv18, fork_nested) ends its level and leaves the outer's.
	 */
	__hak_fork_holder++;
}

void __hak_fork_stats(struct hak_fork_stats *st)
{
	st->forks = arch_load_relaxed(&nr_forks);
	st->urgent = arch_load_relaxed(&nr_fork_urgent);
	st->backoffs = arch_load_relaxed(&nr_fork_backoffs);
	st->skips = arch_load_relaxed(&nr_fork_skips);
	st->waited_out = arch_load_relaxed(&nr_fork_waited_out);
	st->turns = arch_load_relaxed(&nr_fork_turns);
	st->gated = arch_load_relaxed(&nr_fork_gated);
}

static void fork_parent(void)
{
	unsigned i = NR_FORK_STEPS;

	if (!fork_locked)
		return;
	__hak_fork_holder--;
	fork_withdraw();
	while (i--)
		fork_steps[i].give();
	call_weak(_IO_list_unlock);
	arch_fetch_add(&nr_forks_done, 1UL);
}

static void fork_child(void)
{
	/* the parent's other forks and their announcements are not here */
	fork_urgent_here = false;
	urgent_here = NULL;
	fork_depth = 0;
	if (arch_load_acquire(&slots_used)) {
		memset(urgent_slots, 0, sizeof(urgent_slots));
		memset(lock_waiters, 0, sizeof(lock_waiters));
	}
	/* stores only where they change something: a page written is a fault */
	if (arch_load_relaxed(&nr_urgent))
		arch_store_relaxed(&nr_urgent, (uint64_t)0);
	if (arch_load_relaxed(&nr_unslotted))
		arch_store_relaxed(&nr_unslotted, 0);
	/*
	 * The parent's waiting forks are not here either (nor held-back
	 * threads); this thread's interrupted prepares go on, and lower their
	 * turns under the parent's id, which leaves this count alone (a count
	 * reset to 0 went to -1 after them, taken for raised: fork_turn_held).
	 */
	if (arch_load_relaxed(&__hak_fork_turn))
		arch_store_relaxed(&__hak_fork_turn, (uint64_t)0);
	/* an interrupted frame of this thread's, unlisted, still counts itself out */
	if (arch_load_relaxed(&nr_unlisted) != unlisted_here)
		arch_store_relaxed(&nr_unlisted, unlisted_here);
	__hak_limit_from_ms = HAK_LIMIT_FORKED;	/* the late cgroup read's wait */
	if (!fork_locked)
		return;
	__hak_fork_holder--;	/* an outer fork of this thread goes on in the child */
	__hak_ss_fork_child();
	__hak_meta_fork_child();
	__hak_grow_fork_child();
	__hak_large_fork_child();
	hak_bigcache_fork_child();
	hak_l25_fork_child();
	__hak_heap_fork_child();
	hak_prof_fork_child();
	__hak_purge_fork_child();
}

void __hak_init_slow(void)
{
	int saved;

	if (init_running)
		return;
	if (arch_cmpxchg(&init_state, 0, 1) != 0) {
		unsigned n = 0;

		/*
		 * Back off (os.h): with more threads than cores the
		 * initialising thread may be preempted, and pure spinning
		 * would burn the time slices it needs to finish; under a
		 * real-time policy a yield would not even hand it the CPU.
		 */
		while (arch_load_acquire(&init_state) != 2)
			__hak_os_backoff(n++);
		return;
	}
	init_running = 1;
	/*
	 * The set-up may fail system calls on the way (the cgroup files of
	 * lib/limit.c that do not exist: ENOENT) and the call it runs in
	 * must keep errno when it succeeds.
	 */
	saved = errno;
	/*
	 * The fork handlers first: until they are registered a fork takes no
	 * allocator lock, so no other slow work may run here before them. The
	 * registration itself may allocate (it then holds glibc's handler-list
	 * lock, which keeps any fork out of its locked window meanwhile).
	 */
	__hak_atfork(fork_prepare, fork_parent, fork_child);
	__hak_options_read();	/* and the sandbox probe, between parse and use */
	if (!__hak_opt.purge_batch)
		__hak_os_purge_batch_off();
	stats_setup();
	exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
	__hak_tcache_direct_setup();
	errno = saved;
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

/*
 * Diagnostics are formatted here, not by vsnprintf: they may be printed
 * from a fork handler's allocation, a signal handler's fork or a corrupt
 * heap, where nothing may reach stdio, the locale machinery or malloc.
 * Conversions: %s %p %d %u %x %zu %lu %llu %%; anything else is copied.
 */
struct report_buf {
	char *p, *end;
};

static void put_char(struct report_buf *b, char c)
{
	if (b->p < b->end)
		*b->p++ = c;
}

static void put_str(struct report_buf *b, const char *s)
{
	if (!s)
		s = "(null)";
	while (*s)
		put_char(b, *s++);
}

static void put_num(struct report_buf *b, unsigned long long v, unsigned base, bool neg)
{
	char d[24];
	int i = 0;

	do {
		d[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		put_char(b, '-');
	while (i)
		put_char(b, d[--i]);
}

static void format(struct report_buf *b, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		int lng = 0;
		bool sz = false;

		if (*fmt != '%') {
			put_char(b, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == 'z') {
			sz = true;
			fmt++;
		}
		while (*fmt == 'l' && lng < 2) {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 's':
			put_str(b, va_arg(ap, const char *));
			break;
		case 'p':
			put_str(b, "0x");
			put_num(b, (uintptr_t)va_arg(ap, void *), 16, false);
			break;
		case 'd': {
			long long v = lng ? va_arg(ap, long) : va_arg(ap, int);

			put_num(b, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v, 10, v < 0);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = sz ? va_arg(ap, size_t) :
				lng == 2 ? va_arg(ap, unsigned long long) :
				lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);

			put_num(b, v, *fmt == 'x' ? 16 : 10, false);
			break;
		}
		case '\0':
			return;
		default:
			put_char(b, *fmt);
		}
	}
}

void __hak_report(const char *fmt, ...)
{
	char buf[512];
	struct report_buf b = { buf, buf + sizeof(buf) - 1 };
	va_list ap;

	put_str(&b, "hakmem: ");
	va_start(ap, fmt);
	format(&b, fmt, ap);
	va_end(ap);
	*b.p++ = '\n';
	__hak_os_write(STDERR_FILENO, buf, (size_t)(b.p - buf));
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
