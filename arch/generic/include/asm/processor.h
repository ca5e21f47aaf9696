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
 * No mapping is as large as this: 5-level page tables, the largest user
 * address space of a 64-bit Linux, have 2^57 bytes. A port knows better.
 */
#define ARCH_MAP_WINDOW		(1UL << 57)

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
