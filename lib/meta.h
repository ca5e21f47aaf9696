/* SPDX-License-Identifier: MIT */
/*
 * Metadata arena: zeroed, cache-line aligned memory for hakmem's own
 * long-lived structures (heaps, registry entries), carved from 256 KiB
 * mappings. Nothing is ever returned: callers recycle their objects.
 */
#ifndef HAK_META_H
#define HAK_META_H

#include <stdbool.h>
#include <stddef.h>
#include <hak/compiler.h>

void *__hak_meta_alloc(size_t size) __must_check;
size_t __hak_meta_bytes(void);
/* Resident bytes of the arena's chunks (mincore, for the statistics). */
struct hak_os_rss;
size_t __hak_meta_resident(struct hak_os_rss *r);

bool __hak_meta_fork_prepare(void);
void __hak_meta_fork_parent(void);
void __hak_meta_fork_child(void);

#endif /* HAK_META_H */
