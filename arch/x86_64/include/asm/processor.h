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
 * PAUSE: tells the core it is in a spin loop, saving power and avoiding
 * the memory-order mis-speculation flush when the awaited line changes.
 * The "memory" clobber makes the loop re-read what it waits for.
 */
#define arch_cpu_relax()	__asm__ __volatile__("pause" ::: "memory")

#endif /* HAK_ASM_X86_64_PROCESSOR_H */
