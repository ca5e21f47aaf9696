/* SPDX-License-Identifier: MIT */
/*
 * The one lock type of the slow paths: a pthread mutex wrapped so sparse can
 * check lock context. A mutex (not a spinlock) because a slow path may call
 * mmap while holding it, and a statically initialised mutex works before
 * the C library has run any constructor. Fork handling re-initialises every
 * lock in the child (init.c); nothing here allocates.
 *
 * The adaptive kind (glibc's PTHREAD_MUTEX_ADAPTIVE_NP): a waiter spins a
 * little (glibc.pthread.mutex_spin_count, 100 by default) before it
 * sleeps in futex. The sections are short and their holder is usually
 * running on another CPU; past the cores a waiter that sleeps gives its
 * CPU to another thread, which under SCHED_FIFO (and often under the
 * default scheduler) starts that thread's work and its memory
 * (Documentation/design.md, "Scaling past the cores", fifteenth pass).
 * Under a real-time policy a waiter spins longer (up to 1 ms) before it
 * sleeps (__hak_rt_spin; sixteenth pass).
 */
#ifndef HAK_LOCK_H
#define HAK_LOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <hak/compiler.h>

struct hak_lock {
	pthread_mutex_t mu;
	unsigned char fork_state;	/* HAK_FORK_* per fork level: what prepare did */
};

#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
#define HAK_LOCK_INIT	{ PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP, 0 }
#else
#define HAK_LOCK_INIT	{ PTHREAD_MUTEX_INITIALIZER, 0 }
#endif

#define HAK_FORK_TAKEN	0	/* fork's prepare took it */
#define HAK_FORK_OWN	1	/* the forking thread's interrupted frame holds it */
#define HAK_FORK_SKIP	2	/* another handler fork's interrupted frame holds it */
/*
 * A handler fork may interrupt its own thread's fork (in its prepare, or in
 * its system call, which restarts): the inner fork runs every handler and
 * completes before the outer goes on. So fork_state is a stack, the
 * innermost fork's state in the low HAK_FORK_BITS bits: the inner's parent
 * handler pops its own and leaves the outer's, which it once overwrote
 * (the outer then unlocked a lock its frame held; selftests/core/
 * fork_nested). Four levels; a fifth loses the outermost.
 *
 * The stack only ever holds one thread's forks, though it lives in the
 * lock: every prepare takes the C library's stream-list lock before it
 * pushes anything and keeps it until its parent handler has popped (glibc's
 * fork holds it across the system call too), so two threads' windows never
 * overlap, and the lock is recursive, so only the same thread's handler
 * fork nests inside one; the child, where glibc resets it, has one thread.
 * An urgent fork's OWN and another thread's SKIP are never on one stack at
 * once. Without that lock (not glibc) no fork pushes OWN or SKIP
 * (__hak_lock_mine cannot tell, init.c leaves no lock): only TAKEN, which
 * only the lock's holder pushes.
 */
#define HAK_FORK_BITS	2
#define HAK_FORK_MASK	((1u << HAK_FORK_BITS) - 1)

/*
 * Not 0 on the thread inside fork() while it holds every allocator lock
 * (from the end of hakmem's prepare handler to the start of its parent or
 * child handler, init.c): a count, one per fork of the thread in that
 * window (a handler fork may nest in it). That thread passes the locks: a
 * malloc made by another library's fork handler in that window would
 * otherwise wait for a lock its own thread holds.
 */
extern HAK_HIDDEN __thread int __hak_fork_holder __attribute__((tls_model("initial-exec")));

static inline bool hak_lock_passed(void)
{
	return unlikely(__hak_fork_holder);
}

/*
 * The lock this thread is taking or giving back right now (NULL: none).
 * glibc writes a mutex's holder after winning its lock word and clears it
 * before giving the word back; a signal handler that interrupted its own
 * thread between the two finds the lock busy and no holder, and must still
 * know it for its own (fork from a handler waited for itself, 1 run in 30
 * of core/fork_signal_mt). Saved and restored around each call, so a
 * handler's own lock calls nest.
 */
extern HAK_HIDDEN __thread struct hak_lock *__hak_lock_edge
	__attribute__((tls_model("initial-exec")));

/*
 * Allocator locks the calling thread holds (taken by hak_lock or
 * hak_trylock, not yet given back by hak_unlock). Counted while the edge
 * names the lock, so a signal handler that reads 0 with the edge clear
 * knows its interrupted frame holds none; with the edge set it asks
 * __hak_lock_mine. Read by fork's prepare (init.c): a fork from a handler
 * whose frame holds one makes other forks back off.
 */
extern HAK_HIDDEN __thread unsigned __hak_locks_held
	__attribute__((tls_model("initial-exec")));

/*
 * Not 0 while a fork whose frame holds nothing ("plain") waits its turn
 * behind handler forks whose frames hold a lock (init.c, "Fork, turn"):
 * meanwhile a thread that holds no allocator lock waits before it takes
 * one (__hak_fork_gate, bounded), so no new such frame keeps the plain
 * fork waiting for good. One load and a branch per lock taken.
 *
 * The count of one process: its id in the high 32 bits, the turns in the
 * low 32, 0 when there are none. A child made without our fork handlers
 * (_Fork, a raw clone) inherits it raised with its parent's id, and
 * nothing there would lower it: it counts as 0 there, and the child's
 * first take that enters __hak_fork_gate clears it (init.c).
 */
extern HAK_HIDDEN uint64_t __hak_fork_turn;
void __hak_fork_gate(void);

static inline void hak_fork_gate(void)
{
	if (unlikely(__atomic_load_n(&__hak_fork_turn, __ATOMIC_RELAXED)) && !__hak_locks_held)
		__hak_fork_gate();
}

/*
 * Is l held by the calling thread, its interrupted frame (edge: the
 * __hak_lock_edge that frame left) being between l's lock word and its
 * holder field counting as holding it? False where it cannot tell (init.c).
 */
bool __hak_lock_mine(const struct hak_lock *l, const struct hak_lock *edge);
/*
 * l was busy: wait for it, or report a thread waiting for itself (init.c);
 * edge as for __hak_lock_mine.
 */
void __hak_lock_wait(struct hak_lock *l, const struct hak_lock *edge);
/*
 * Under SCHED_FIFO or SCHED_RR, spin while *word is not 0, up to a bound
 * counted from the first call with *end 0: true once it is 0 (init.c).
 */
bool __hak_rt_spin(const int *word, uint64_t *end);

/*
 * Take l; true when it was busy. Uncontended, a try-lock costs what a lock
 * does; a busy lock goes out of line, which first checks that the calling
 * thread is not the holder: a signal handler that interrupted the allocator
 * and calls it again (malloc is not async-signal-safe) would otherwise wait
 * for itself, silently, for good; it is reported and aborts instead.
 */
static inline bool hak_lock_waited(struct hak_lock *l) __acquires(l)
{
	struct hak_lock *outer = __hak_lock_edge;
	bool busy = false;

	__acquire(l);
	if (hak_lock_passed())
		return false;
	hak_fork_gate();
	__hak_lock_edge = l;
	barrier();
	if (unlikely(pthread_mutex_trylock(&l->mu))) {
		__hak_lock_wait(l, outer);
		busy = true;
	}
	__hak_locks_held++;
	barrier();
	__hak_lock_edge = outer;
	return busy;
}

static inline void hak_lock(struct hak_lock *l) __acquires(l)
{
	(void)hak_lock_waited(l);
}

/*
 * Take l only if it is free: true when taken (no lock context: the caller
 * says __acquire on success). The edge is set as hak_lock_waited() sets
 * it, so a fork in a signal handler that interrupted the try between l's
 * word and its holder field knows l for its own; without it, prepare
 * waited for itself (the L2.5 pool's hand-over, selftests l25_steal_fork).
 * Inside fork's window (hak_lock_passed) every lock is this thread's, held
 * for the fork: false.
 */
static inline bool hak_trylock(struct hak_lock *l)
{
	struct hak_lock *outer = __hak_lock_edge;
	bool got;

	if (hak_lock_passed())
		return false;
	hak_fork_gate();
	__hak_lock_edge = l;
	barrier();
	got = !pthread_mutex_trylock(&l->mu);
	__hak_locks_held += got;
	barrier();
	__hak_lock_edge = outer;
	return got;
}

static inline void hak_unlock(struct hak_lock *l) __releases(l)
{
	struct hak_lock *outer = __hak_lock_edge;

	__release(l);
	if (hak_lock_passed())
		return;
	__hak_lock_edge = l;
	barrier();
	__hak_locks_held--;
	pthread_mutex_unlock(&l->mu);
	barrier();
	__hak_lock_edge = outer;
}

/* Child side of fork(): the lock may have been held by a thread that is gone. */
static inline void hak_lock_reinit(struct hak_lock *l)
{
	*l = (struct hak_lock)HAK_LOCK_INIT;
}

/*
 * Fork handlers, per lock. Prepare takes l, unless the forking thread holds
 * it already: fork() from a signal handler that interrupted the allocator
 * (init.c, "Fork"). Then the interrupted frame holds it, no other thread
 * can be inside, and that frame releases it when the handler returns, in
 * the parent and in the child alike: the parent leaves it alone, and the
 * child re-initialises it held by its one thread (whose id is new), for
 * that frame to release.
 *
 * A busy lock of another thread's is waited for (__hak_lock_fork_wait,
 * init.c, "Fork, back-off"), which may instead leave it to the frame of
 * another handler fork that holds it (HAK_FORK_SKIP: left alone in the
 * parent, re-initialised free in the child), or tell the fork to back off:
 * false, and the caller gives back what it took, in reverse.
 */
int __hak_lock_fork_wait(struct hak_lock *l) __must_check;

static inline bool __must_check hak_lock_fork_take(struct hak_lock *l)
{
	int st = HAK_FORK_TAKEN;

	if (pthread_mutex_trylock(&l->mu)) {
		if (__hak_lock_mine(l, __hak_lock_edge))
			st = HAK_FORK_OWN;
		else if ((st = __hak_lock_fork_wait(l)) < 0)
			return false;
	}
	l->fork_state = (unsigned char)(l->fork_state << HAK_FORK_BITS | (unsigned)st);
	return true;
}

/*
 * Other waits of a fork's prepare (a scan of other heaps, the profile
 * lock) poll this: true when the fork is to back off as above (init.c).
 */
bool __hak_fork_backoff(void) __must_check;
/*
 * True when the scan of other heaps that fork's prepare waits for is not
 * waited for (any more): the fork is a handler fork whose frame holds a
 * lock, and the scan is run by another such frame, or the fork has waited
 * for it past a bound since *start (0 before the first call; init.c).
 */
bool __hak_fork_scan_skip(uint64_t *start) __must_check;
/* The same for the profile lock (boxes/heapprof). */
bool __hak_fork_prof_skip(uint64_t *start) __must_check;

static inline void hak_lock_fork_give(struct hak_lock *l)
{
	if (!(l->fork_state & HAK_FORK_MASK))
		pthread_mutex_unlock(&l->mu);
	l->fork_state >>= HAK_FORK_BITS;
}

static inline void hak_lock_fork_reset(struct hak_lock *l)
{
	unsigned char outer = l->fork_state >> HAK_FORK_BITS;
	bool own = (l->fork_state & HAK_FORK_MASK) == HAK_FORK_OWN;

	hak_lock_reinit(l);
	l->fork_state = outer;	/* an outer fork of this thread goes on in the child */
	if (own)
		pthread_mutex_lock(&l->mu);
}

/*
 * The same with lock context, for a handler of one lock (sparse): the
 * context is l's whether it was taken or not (a try-lock's caller says
 * __acquire on success, here the prepare that backed off says nothing
 * more: its parent handler is not called).
 */
static inline bool __must_check hak_lock_fork_prepare(struct hak_lock *l) __acquires(l)
{
	__acquire(l);
	return hak_lock_fork_take(l);
}

static inline void hak_lock_fork_parent(struct hak_lock *l) __releases(l)
{
	__release(l);
	hak_lock_fork_give(l);
}

static inline void hak_lock_fork_child(struct hak_lock *l) __releases(l)
{
	__release(l);
	hak_lock_fork_reset(l);
}

/*
 * The fork handlers of a file whose one global lock is `lock`.
 * Defines prefix_fork_prepare/_parent/_child, declared in the file's header.
 */
#define HAK_DEFINE_FORK_LOCK(prefix, lock)				\
bool prefix##_fork_prepare(void) __acquires(lock)			\
{									\
	return hak_lock_fork_prepare(lock);				\
}									\
									\
void prefix##_fork_parent(void) __releases(lock)			\
{									\
	hak_lock_fork_parent(lock);					\
}									\
									\
void prefix##_fork_child(void) __releases(lock)				\
{									\
	hak_lock_fork_child(lock);					\
}

#endif /* HAK_LOCK_H */
