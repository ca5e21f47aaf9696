/* SPDX-License-Identifier: MIT */
/*
 * Prefetch hints: arch_prefetch() for a coming read, arch_prefetchw() for
 * a coming write. Hints only: they never fault and may do nothing.
 */
#ifndef HAK_ASM_GENERIC_PREFETCH_H
#define HAK_ASM_GENERIC_PREFETCH_H

#define arch_prefetch(p)	__builtin_prefetch((p), 0, 3)
#define arch_prefetchw(p)	__builtin_prefetch((p), 1, 3)

#endif /* HAK_ASM_GENERIC_PREFETCH_H */
