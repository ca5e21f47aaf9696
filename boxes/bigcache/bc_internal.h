/* SPDX-License-Identifier: MIT */
/*
 * BigCache internals for its selftests (not a hook: the core never calls
 * these). Only built with CONFIG_HAK_BIGCACHE.
 */
#ifndef HAK_BOX_BIGCACHE_INTERNAL_H
#define HAK_BOX_BIGCACHE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Pretend memory is tight (1), plenty (0), or go back to sampling it with
 * sysinfo() (-1). Under pressure every put purges all resident blocks.
 */
void __hak_bigcache_force_pressure(int tight);

/*
 * Merge a freed block with cached neighbours (true, the default) or cache
 * every block as it came (tests that count blocks).
 */
void __hak_bigcache_set_merge(bool on);

/*
 * Purge hot blocks unused for more than ms milliseconds (checked at each
 * put and take), or for the longer delay a core pass learned from refaults
 * while the program is busy (pass_delay()); 0 turns the decay off. The
 * default is CONFIG_HAK_PURGE_DELAY_MS.
 */
void __hak_bigcache_set_decay(unsigned ms);

/*
 * Call fn (NULL: nothing) each time a take that joined cached neighbours
 * is about to make the n guard pages between them, in [from, from + len),
 * read-write: after BigCache's lock was dropped (hardened box).
 */
void __hak_bigcache_set_join_hook(void (*fn)(void *from, size_t len, size_t n));

/* Whether some thread (the caller included) holds BigCache's lock. */
bool __hak_bigcache_lock_held(void);

#endif /* HAK_BOX_BIGCACHE_INTERNAL_H */
