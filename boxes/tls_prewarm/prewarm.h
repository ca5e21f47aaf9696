/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the TLS-prewarm box (CONFIG_HAK_TLS_PREWARM).
 *
 * hak_prewarm_thread() is called at every refill; at a thread's first it
 * fills the thread cache of the configured hot classes in one batch, so the
 * thread's next allocations of those classes hit the fast path, and later
 * it returns at once. A no-op with the box off.
 */
#ifndef HAK_BOX_TLS_PREWARM_H
#define HAK_BOX_TLS_PREWARM_H

#include <hak/compiler.h>

#if IS_ENABLED(CONFIG_HAK_TLS_PREWARM)
void hak_prewarm_thread(void);
#else
static inline void hak_prewarm_thread(void) { }
#endif

#endif /* HAK_BOX_TLS_PREWARM_H */
