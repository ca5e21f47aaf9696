/* SPDX-License-Identifier: MIT */
/*
 * Atomic operations on plain objects (no _Atomic qualifier), built on the
 * compiler's __atomic builtins. This is the reference implementation of the
 * arch API; arch/<name>/include/asm/atomic.h offers the same macros.
 *
 *   arch_load_relaxed(p)        arch_store_relaxed(p, v)
 *   arch_load_acquire(p)        arch_store_release(p, v)
 *   arch_xchg(p, v)             full barrier, returns the old value
 *   arch_cmpxchg(p, old, new)   full barrier, returns the value seen
 *                               (equal to old on success)
 *   arch_fetch_add(p, v)        full barrier, returns the old value
 *   arch_smp_mb()               full memory barrier
 *   arch_below_acquire(v, p)    v < *p, *p read with acquire (an unsigned
 *                               long); ports make it one compare with *p
 *                               as its operand
 *
 * All take a pointer to a naturally aligned integer or pointer object.
 */
#ifndef HAK_ASM_GENERIC_ATOMIC_H
#define HAK_ASM_GENERIC_ATOMIC_H

#define arch_load_relaxed(p)		__atomic_load_n((p), __ATOMIC_RELAXED)
#define arch_load_acquire(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define arch_store_relaxed(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define arch_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define arch_smp_mb()			__atomic_thread_fence(__ATOMIC_SEQ_CST)

/*
 * "Full barrier" as on x86_64, where every locked instruction is one: no
 * access before the operation is seen after any access that follows it,
 * plain and relaxed ones included. A sequentially consistent builtin
 * promises less: it is ordered with other seq_cst operations, and with
 * the rest only as an acquire and a release, so a relaxed store before it
 * and a relaxed load after it may pass each other (on arm64 without LSE
 * atomics the builtin is an LDAXR/STLXR loop, and the load can be served
 * between the two). The core was written against the x86 contract, so
 * elsewhere the operation is followed by a full fence, as the kernel's
 * fully ordered LL/SC atomics are (a DMB after the loop). x86_64 (an
 * ARCH=generic build there) needs none: its seq_cst operations are locked
 * instructions.
 */
#if defined(__x86_64__) || defined(__i386__)
#define __arch_rmw_fence()		((void)0)
#else
#define __arch_rmw_fence()		__atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

#define arch_xchg(p, v)							\
({									\
	__typeof__(*(p)) __xold = __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST); \
	__arch_rmw_fence();						\
	__xold;								\
})

#define arch_fetch_add(p, v)						\
({									\
	__typeof__(*(p)) __aold = __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST); \
	__arch_rmw_fence();						\
	__aold;								\
})

static inline __attribute__((always_inline)) int
arch_below_acquire(unsigned long v, const unsigned long *p)
{
	return v < __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

#define arch_cmpxchg(p, old, new)					\
({									\
	__typeof__(*(p)) __ret = (old);					\
	__atomic_compare_exchange_n((p), &__ret, (new), 0,		\
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
	__arch_rmw_fence();						\
	__ret;								\
})

#endif /* HAK_ASM_GENERIC_ATOMIC_H */
