/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the adaptive-sizing box (CONFIG_HAK_ADAPTIVE_SIZING).
 *
 * The core calls these from its thread-cache slow paths only:
 *   hak_adapt_initial_cap(c, cap)  capacity of class c for a new thread;
 *   hak_adapt_on_refill(c)         bin c ran empty (before the refill);
 *   hak_adapt_on_overflow(c)       bin c overflowed (before the flush).
 * The box may change __hak_tc.bins[c].cap (16..2048) and return excess
 * blocks with __hak_tcache_trim(). With the box off the capacity is the
 * core's fixed default.
 */
#ifndef HAK_BOX_ADAPTIVE_SIZING_H
#define HAK_BOX_ADAPTIVE_SIZING_H

#include <stdint.h>
#include <hak/compiler.h>

#if IS_ENABLED(CONFIG_HAK_ADAPTIVE_SIZING)
uint32_t hak_adapt_initial_cap(unsigned c, uint32_t cap);
void hak_adapt_on_refill(unsigned c);
void hak_adapt_on_overflow(unsigned c);
#else
static inline uint32_t hak_adapt_initial_cap(unsigned c, uint32_t cap)
{
	(void)c;
	return cap;
}
static inline void hak_adapt_on_refill(unsigned c) { (void)c; }
static inline void hak_adapt_on_overflow(unsigned c) { (void)c; }
#endif

#endif /* HAK_BOX_ADAPTIVE_SIZING_H */
