/* SPDX-License-Identifier: MIT */
/*
 * x86_64 prefetch hints. arch_prefetch() is PREFETCHT0 (all cache levels).
 * arch_prefetchw() is PREFETCHW, which fetches the line in exclusive state
 * so the coming store needs no second ownership request; the builtin emits
 * it only when built with -mprfchw and falls back to a read prefetch
 * otherwise. CPUs without the feature flag execute PREFETCHW as a no-op.
 * Neither instruction faults, whatever the address.
 */
#ifndef HAK_ASM_X86_64_PREFETCH_H
#define HAK_ASM_X86_64_PREFETCH_H

#define arch_prefetch(p)						\
	__asm__ __volatile__("prefetcht0 %0" : : "m" (*(const char *)(p)))

#define arch_prefetchw(p)						\
	__asm__ __volatile__("prefetchw %0" : : "m" (*(const char *)(p)))

#endif /* HAK_ASM_X86_64_PREFETCH_H */
