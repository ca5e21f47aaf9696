/* SPDX-License-Identifier: MIT */
/*
 * Hook header of the aggressive-inline box (CONFIG_HAK_AGGRESSIVE_INLINE).
 *
 * HAK_FASTPATH marks the malloc/free fast paths (lib/alloc.h). With the box
 * on they are forced inline into every exported entry point and the slow
 * paths are marked cold, so the compiler lays them out of the hot text
 * (hot/cold splitting); with it off the fast paths stay ordinary functions
 * that a debugger can break on and a profile attributes separately.
 */
#ifndef HAK_BOX_AGGRESSIVE_INLINE_H
#define HAK_BOX_AGGRESSIVE_INLINE_H

#include <hak/compiler.h>

#if IS_ENABLED(CONFIG_HAK_AGGRESSIVE_INLINE)
# define HAK_FASTPATH	static __always_inline
# define HAK_SLOWPATH	__noinline __cold
#else
# define HAK_FASTPATH	static __noinline __unused
# define HAK_SLOWPATH	__noinline
#endif

#endif /* HAK_BOX_AGGRESSIVE_INLINE_H */
