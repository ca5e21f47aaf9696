/* SPDX-License-Identifier: MIT */
/*
 * x86_64 atomics: the API of arch/generic/include/asm/atomic.h with the
 * instructions written out.
 *
 * x86 is TSO: ordinary loads already have acquire and ordinary stores
 * release semantics, so those are plain (volatile) accesses with a compiler
 * barrier. Read-modify-write uses the locked instructions (xchg is locked
 * by itself); each is a full barrier. arch_smp_mb() is a locked add to the
 * stack, which orders like mfence but costs about half as much on current
 * cores (mfence also waits for non-temporal stores, which we never use).
 *
 * Under ThreadSanitizer the generic __atomic builtins are used instead:
 * TSan instruments builtins, not inline assembly.
 */
#ifndef HAK_ASM_X86_64_ATOMIC_H
#define HAK_ASM_X86_64_ATOMIC_H

#if defined(__SANITIZE_THREAD__)
# define HAK_ARCH_ATOMIC_GENERIC 1
#elif defined(__has_feature)
# if __has_feature(thread_sanitizer)
#  define HAK_ARCH_ATOMIC_GENERIC 1
# endif
#endif

#ifdef HAK_ARCH_ATOMIC_GENERIC
# include "../../../generic/include/asm/atomic.h"
/*
 * GCC's TSan rejects __atomic_thread_fence (-Wtsan). A sequentially
 * consistent read-modify-write is a full barrier on x86 (lock xadd) and
 * an operation TSan understands.
 */
# undef arch_smp_mb
# define arch_smp_mb()							\
({									\
	int __mb = 0;							\
	(void)__atomic_fetch_add(&__mb, 0, __ATOMIC_SEQ_CST);		\
})
#else

#define __arch_barrier()	__asm__ __volatile__("" ::: "memory")

/* Only 1, 2, 4 and 8 byte objects: a locked instruction covers those. */
#define __arch_check_size(p)						\
	_Static_assert(sizeof(*(p)) == 1 || sizeof(*(p)) == 2 ||	\
		       sizeof(*(p)) == 4 || sizeof(*(p)) == 8,		\
		       "arch atomics need a 1, 2, 4 or 8 byte object")

#define arch_load_relaxed(p)	({ *(const volatile __typeof__(*(p)) *)(p); })
#define arch_store_relaxed(p, v)					\
	((void)(*(volatile __typeof__(*(p)) *)(p) = (v)))

#define arch_load_acquire(p)						\
({									\
	__typeof__(*(p)) __v = arch_load_relaxed(p);			\
	__arch_barrier();						\
	__v;								\
})

#define arch_store_release(p, v)					\
({									\
	__arch_barrier();						\
	arch_store_relaxed((p), (v));					\
})

/* The memory operand is the full object; "memory" makes it a barrier. */
#define arch_xchg(p, v)							\
({									\
	__typeof__(*(p)) __x = (v);					\
	__arch_check_size(p);						\
	switch (sizeof(*(p))) {						\
	case 1:								\
		__asm__ __volatile__("xchgb %b0, %1"			\
			: "+q" (__x), "+m" (*(p)) : : "memory");	\
		break;							\
	case 2:								\
		__asm__ __volatile__("xchgw %w0, %1"			\
			: "+r" (__x), "+m" (*(p)) : : "memory");	\
		break;							\
	case 4:								\
		__asm__ __volatile__("xchgl %k0, %1"			\
			: "+r" (__x), "+m" (*(p)) : : "memory");	\
		break;							\
	default:							\
		__asm__ __volatile__("xchgq %q0, %1"			\
			: "+r" (__x), "+m" (*(p)) : : "memory");	\
		break;							\
	}								\
	__x;								\
})

/* Returns the value seen; the exchange happened iff it equals old. */
#define arch_cmpxchg(p, old, new)					\
({									\
	__typeof__(*(p)) __seen = (old);				\
	__typeof__(*(p)) __new = (new);					\
	__arch_check_size(p);						\
	switch (sizeof(*(p))) {						\
	case 1:								\
		__asm__ __volatile__("lock cmpxchgb %b2, %1"		\
			: "+a" (__seen), "+m" (*(p))			\
			: "q" (__new) : "memory", "cc");		\
		break;							\
	case 2:								\
		__asm__ __volatile__("lock cmpxchgw %w2, %1"		\
			: "+a" (__seen), "+m" (*(p))			\
			: "r" (__new) : "memory", "cc");		\
		break;							\
	case 4:								\
		__asm__ __volatile__("lock cmpxchgl %k2, %1"		\
			: "+a" (__seen), "+m" (*(p))			\
			: "r" (__new) : "memory", "cc");		\
		break;							\
	default:							\
		__asm__ __volatile__("lock cmpxchgq %q2, %1"		\
			: "+a" (__seen), "+m" (*(p))			\
			: "r" (__new) : "memory", "cc");		\
		break;							\
	}								\
	__seen;								\
})

/* Integer objects only; returns the old value. */
#define arch_fetch_add(p, v)						\
({									\
	__typeof__(*(p)) __a = (v);					\
	__arch_check_size(p);						\
	switch (sizeof(*(p))) {						\
	case 1:								\
		__asm__ __volatile__("lock xaddb %b0, %1"		\
			: "+q" (__a), "+m" (*(p)) : : "memory", "cc");	\
		break;							\
	case 2:								\
		__asm__ __volatile__("lock xaddw %w0, %1"		\
			: "+r" (__a), "+m" (*(p)) : : "memory", "cc");	\
		break;							\
	case 4:								\
		__asm__ __volatile__("lock xaddl %k0, %1"		\
			: "+r" (__a), "+m" (*(p)) : : "memory", "cc");	\
		break;							\
	default:							\
		__asm__ __volatile__("lock xaddq %q0, %1"		\
			: "+r" (__a), "+m" (*(p)) : : "memory", "cc");	\
		break;							\
	}								\
	__a;								\
})

#define arch_smp_mb()							\
	__asm__ __volatile__("lock addl $0, -4(%%rsp)" ::: "memory", "cc")

#ifndef __CHECKER__
/*
 * v < *p, *p read with acquire: one CMP with *p as its memory operand and
 * one JAE (a load on x86 is an acquire load; a volatile or __atomic load
 * cannot be CMP's operand, so C costs a MOV more). The "memory" clobber
 * keeps the compiler from moving what the caller reads next above it.
 */
static inline __attribute__((always_inline)) int
arch_below_acquire(unsigned long v, const unsigned long *p)
{
	__asm__ goto("cmpq %1, %0\n\tjae %l[no]" : : "r"(v), "m"(*p) : "cc", "memory" : no);
	return 1;
no:
	return 0;
}

/*
 * v & *p, *p read with acquire: one AND with *p as its memory operand (the
 * fixed page map's index, lib/superslab.h); "memory" as above.
 */
static inline __attribute__((always_inline)) unsigned long
arch_and_acquire(unsigned long v, const unsigned long *p)
{
	__asm__("andq %1, %0" : "+r"(v) : "m"(*p) : "cc", "memory");
	return v;
}
#else
static inline int arch_below_acquire(unsigned long v, const unsigned long *p)
{
	return v < arch_load_acquire(p);
}

static inline unsigned long arch_and_acquire(unsigned long v, const unsigned long *p)
{
	return v & arch_load_acquire(p);
}
#endif

#endif /* !HAK_ARCH_ATOMIC_GENERIC */

#endif /* HAK_ASM_X86_64_ATOMIC_H */
