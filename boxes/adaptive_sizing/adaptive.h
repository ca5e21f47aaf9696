/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the adaptive-sizing box (CONFIG_HAK_ADAPTIVE_SIZING).
 *
 * The core calls these from its thread-cache slow paths only:
 *   hak_adapt_initial_caps(cap)    capacities of a new thread's classes
 *                                  (cap[0..HAK_NCLASS-1]: the core's
 *                                  defaults in, the box's out);
 *   hak_adapt_on_refill(c)         bin c ran empty (before the refill);
 *   hak_adapt_on_overflow(c)       bin c overflowed (before the flush).
 * and hak_adapt_budget() is the calling thread's byte budget now (for
 * statistics and tests; it falls past the cores).
 * The box may change __hak_tc.bins[c].cap (16..2048) and return excess
 * blocks with __hak_tcache_trim(). With the box off the capacity is the
 * core's fixed default.
 */
#ifndef HAK_BOX_ADAPTIVE_SIZING_H
#define HAK_BOX_ADAPTIVE_SIZING_H

#include <stddef.h>
#include <stdint.h>
#include <hak/compiler.h>

#if IS_ENABLED(CONFIG_HAK_ADAPTIVE_SIZING)
void hak_adapt_initial_caps(uint32_t *cap);
void hak_adapt_on_refill(unsigned c);
void hak_adapt_on_overflow(unsigned c);
size_t hak_adapt_budget(void);
#else
static inline void hak_adapt_initial_caps(uint32_t *cap) { (void)cap; }
static inline void hak_adapt_on_refill(unsigned c) { (void)c; }
static inline void hak_adapt_on_overflow(unsigned c) { (void)c; }
static inline size_t hak_adapt_budget(void) { return 0; }
#endif

#endif /* HAK_BOX_ADAPTIVE_SIZING_H */
