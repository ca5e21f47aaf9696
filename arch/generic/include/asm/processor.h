/* SPDX-License-Identifier: MIT */
/*
 * CPU facts and spin-wait hint for architectures without a port.
 * ARCH_CACHE_LINE is the assumed line size used to pad shared data.
 */
#ifndef HAK_ASM_GENERIC_PROCESSOR_H
#define HAK_ASM_GENERIC_PROCESSOR_H

#define ARCH_CACHE_LINE		64
#define ARCH_NAME		"generic"
/*
 * ARCH_VA_BITS: every address the kernel gives without an address hint
 * is below 2^ARCH_VA_BITS; the ownership registry and the page map cover
 * that much (lib/superslab.h), and a superslab or pool region mapped above
 * it is refused (ENOMEM, one line on stderr: lib/superslab.c). What Linux
 * gives without a hint:
 *   aarch64: 48 bits with 4 KiB or 64 KiB pages (39 or 42 on kernels
 *            built for 3-level tables; 52-bit kernels only with a hint);
 *   ppc64: 47 bits (128 TiB; more only with a hint);
 *   riscv64: 38 (sv39), 47 (sv48, and sv57 without a hint);
 *   loongarch64: 47 (3-level: 39);
 *   s390x and the rest: not known here, 48 assumed.
 * A kernel with fewer bits costs nothing (the registry is reserved, not
 * committed). KCFLAGS=-DARCH_VA_BITS=n overrides it, e.g. to test the
 * refusal on x86_64 with a window smaller than the kernel's.
 */
#ifndef ARCH_VA_BITS
# if defined(__x86_64__) || defined(__powerpc64__) || defined(__riscv) || \
     defined(__loongarch64)
#  define ARCH_VA_BITS		47
# else
#  define ARCH_VA_BITS		48
# endif
#endif

/*
 * No mapping made without a hint is as large as the window: a larger
 * request fails at once, without the system call and the purge of every
 * cache a refused mapping brings (lib/alloc.c; glibc's
 * tst-malloc-too-large asks for 2^50 and more a million times). It was
 * 2^57 (5-level tables), which let such requests through to mmap, and
 * bigcache's classes (BC_NCLASS) cover lengths below 2^52 only.
 */
#define ARCH_MAP_WINDOW		(1UL << ARCH_VA_BITS)

/* Nothing portable to hint with; a compiler barrier keeps the loop honest. */
#define arch_cpu_relax()	__asm__ __volatile__("" ::: "memory")

/* *p -= n; true when that borrowed (n > *p). */
static inline int arch_sub_borrows(unsigned long *p, unsigned long n)
{
	unsigned long old = *p;

	*p = old - n;
	return n > old;
}

#endif /* HAK_ASM_GENERIC_PROCESSOR_H */
