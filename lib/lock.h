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
 */
#ifndef HAK_LOCK_H
#define HAK_LOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <hak/compiler.h>

struct hak_lock {
	pthread_mutex_t mu;
};

#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
#define HAK_LOCK_INIT	{ PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP }
#else
#define HAK_LOCK_INIT	{ PTHREAD_MUTEX_INITIALIZER }
#endif

/*
 * Set on the thread inside fork() while it holds every allocator lock
 * (from the end of hakmem's prepare handler to the start of its parent or
 * child handler, init.c). That thread passes the locks: a malloc made by
 * another library's fork handler in that window would otherwise wait for
 * a lock its own thread holds.
 */
extern HAK_HIDDEN __thread int __hak_fork_holder __attribute__((tls_model("initial-exec")));

static inline bool hak_lock_passed(void)
{
	return unlikely(__hak_fork_holder);
}

static inline void hak_lock(struct hak_lock *l) __acquires(l)
{
	if (!hak_lock_passed())
		pthread_mutex_lock(&l->mu);
	__acquire(l);
}

static inline void hak_unlock(struct hak_lock *l) __releases(l)
{
	__release(l);
	if (!hak_lock_passed())
		pthread_mutex_unlock(&l->mu);
}

/* Child side of fork(): the lock may have been held by a thread that is gone. */
static inline void hak_lock_reinit(struct hak_lock *l)
{
	*l = (struct hak_lock)HAK_LOCK_INIT;
}

/*
 * The fork handlers of a file whose one global lock is `lock`: prepare
 * takes it, the parent releases it, and the child re-initialises it (the
 * thread that held it may not exist in the child). Defines
 * prefix_fork_prepare/_parent/_child, declared in the file's header.
 */
#define HAK_DEFINE_FORK_LOCK(prefix, lock)				\
void prefix##_fork_prepare(void) __acquires(lock)			\
{									\
	hak_lock(lock);							\
}									\
									\
void prefix##_fork_parent(void) __releases(lock)			\
{									\
	hak_unlock(lock);						\
}									\
									\
void prefix##_fork_child(void) __releases(lock)				\
{									\
	__release(lock);						\
	hak_lock_reinit(lock);						\
}

#endif /* HAK_LOCK_H */
