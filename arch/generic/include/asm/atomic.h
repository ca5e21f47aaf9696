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
#define arch_xchg(p, v)			__atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define arch_fetch_add(p, v)		__atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define arch_smp_mb()			__atomic_thread_fence(__ATOMIC_SEQ_CST)

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
	__ret;								\
})

#endif /* HAK_ASM_GENERIC_ATOMIC_H */
