/* SPDX-License-Identifier: MIT */
/*
 * x86_64 CPU facts and the spin-wait hint. ARCH_CACHE_LINE is the line
 * size used to pad shared data (64 bytes on every x86_64 in use).
 */
#ifndef HAK_ASM_X86_64_PROCESSOR_H
#define HAK_ASM_X86_64_PROCESSOR_H

#define ARCH_CACHE_LINE		64
#define ARCH_NAME		"x86_64"
/*
 * Every address the kernel gives without an address hint is below
 * 2^ARCH_VA_BITS: the default user window is 128 TiB, also under 5-level
 * paging (only a hint above it reaches the rest). The ownership registry
 * and the page map cover that much (lib/superslab.h). No mapping is as
 * large as the window either: a larger request cannot be served.
 */
#define ARCH_VA_BITS		47
#define ARCH_MAP_WINDOW		(1UL << ARCH_VA_BITS)

/*
 * PAUSE: tells the core it is in a spin loop, saving power and avoiding
 * the memory-order mis-speculation flush when the awaited line changes.
 * The "memory" clobber makes the loop re-read what it waits for.
 */
#define arch_cpu_relax()	__asm__ __volatile__("pause" ::: "memory")

/*
 * Not for clang: the asm below declares *p an input only and relies on
 * GCC not to read *p again before the slow path; clang gives no such
 * promise, so it gets the C form (a SUB and a SETB or JB as it likes).
 */
#if !defined(__CHECKER__) && !defined(__clang__)
/*
 * *p -= n; true when that borrowed (n > *p). One SUB on memory and one
 * JB: compilers fuse the signed form (sub; js) but not this one, and the
 * heap profiler's countdown must treat any n above *p, however large, as
 * a miss (its budget doubles as malloc's small-size check).
 */
static inline __attribute__((always_inline)) int arch_sub_borrows(unsigned long *p, unsigned long n)
{
	/*
	 * *p is an input: with it as a "+m" output, GCC 12 was seen to send
	 * the borrow jump to the wrong block. Nothing in C reads *p between
	 * this and the slow path (an out-of-line call, which the compiler
	 * assumes writes it).
	 */
	__asm__ goto("subq %1, %0\n\tjb %l[borrow]" : : "m"(*p), "er"(n) : "cc" : borrow);
	return 0;
borrow:
	return 1;
}
#else
static inline int arch_sub_borrows(unsigned long *p, unsigned long n)
{
	unsigned long old = *p;

	*p = old - n;
	return n > old;
}
#endif


/*
 * a >> shift in bits 0..63-shift, anything above: one instruction, where
 * the copy and the shift are two, for an index the caller masks anyway
 * (the fixed page map, lib/superslab.h). With BMI2 (x86-64-v3) a RORX,
 * which puts a's low bits above; else a SHLD, which puts x's old bits
 * there (x is output only: they are masked off, never used; SHLD reads
 * them, a false dependency, and is several uops on AMD Zen).
 */
#ifdef __BMI2__
#define arch_shr_dirty(a, shift) ({					\
	unsigned long __x;						\
	__asm__("rorxq %2, %1, %0" : "=r"(__x) : "r"(a), "J"(shift));	\
	__x;								\
})
#else
#define arch_shr_dirty(a, shift) ({					\
	unsigned long __x;						\
	__asm__("shldq %2, %1, %0" : "=r"(__x) : "r"(a), "J"(64 - (shift)) : "cc"); \
	__x;								\
})
#endif

/*
 * mmap by the system call itself, for code that runs before the library
 * is relocated (an IRELATIVE resolver: no PLT, no errno, no TLS). Returns the
 * kernel's result: an address, or -errno.
 */
static inline __attribute__((always_inline)) long
arch_raw_mmap(unsigned long addr, unsigned long len, long prot, long flags)
{
	register long r10 __asm__("r10") = flags;
	register long r8 __asm__("r8") = -1;
	register long r9 __asm__("r9") = 0;
	long ret;

	__asm__ __volatile__("syscall"
			     : "=a"(ret)
			     : "0"(9L), "D"(addr), "S"(len), "d"(prot), "r"(r10), "r"(r8), "r"(r9)
			     : "rcx", "r11", "memory");
	return ret;
}

/* Any system call of up to 3 arguments, the same way. */
static inline __attribute__((always_inline)) long
arch_raw_syscall3(long nr, unsigned long a1, unsigned long a2, unsigned long a3)
{
	long ret;

	__asm__ __volatile__("syscall" : "=a"(ret) : "0"(nr), "D"(a1), "S"(a2), "d"(a3)
			     : "rcx", "r11", "memory");
	return ret;
}

#endif /* HAK_ASM_X86_64_PROCESSOR_H */
