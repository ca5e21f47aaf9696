// SPDX-License-Identifier: MIT
/*
 * Metadata arena: a bump pointer in the current chunk under meta_lock
 * (a leaf lock). Allocation is rare (a heap per new thread, a registry
 * entry per new large block), so one lock is enough. Each chunk's first
 * META_ALIGN bytes link it to the one before, for the statistics' walk
 * (__hak_meta_resident).
 */
#include <errno.h>
#include <stdint.h>
#include "lock.h"
#include "meta.h"
#include "os.h"

#define META_CHUNK	(256UL << 10)
#define META_ALIGN	64UL

static struct hak_lock meta_lock = HAK_LOCK_INIT;
/*
 * Bytes left rather than an end pointer: an end pointer would hold the
 * address of whatever is mapped next, a false reference for leak checkers
 * (valgrind box).
 */
static uintptr_t meta_cur __boot_hot;
static size_t meta_left __boot_hot;
static size_t meta_bytes __boot_hot;
static void *meta_last __boot_hot;		/* the newest chunk; its first word: the one before */

void *__hak_meta_alloc(size_t size)
{
	void *p = NULL;

	size = HAK_ALIGN_UP(size, META_ALIGN);
	if (size > META_CHUNK) {
		errno = ENOMEM;
		return NULL;
	}
	hak_lock(&meta_lock);
	if (meta_left < size) {
		void *chunk = __hak_os_map(META_CHUNK);

		if (!chunk)
			goto out;
		*(void **)chunk = meta_last;
		meta_last = chunk;
		meta_cur = (uintptr_t)chunk + META_ALIGN;
		meta_left = META_CHUNK - META_ALIGN;
		meta_bytes += META_CHUNK;
	}
	p = (void *)meta_cur;
	meta_cur += size;
	meta_left -= size;
out:
	hak_unlock(&meta_lock);
	return p;
}

size_t __hak_meta_bytes(void)
{
	size_t n;

	hak_lock(&meta_lock);
	n = meta_bytes;
	hak_unlock(&meta_lock);
	return n;
}

/*
 * Chunks are never given back: copied under the lock, counted after it
 * (lib/os.h, __hak_os_rss_reserve), so no allocation of metadata waits for
 * the kernel.
 */
size_t __hak_meta_resident(struct hak_os_rss *r)
{
	void *c;

	hak_lock(&meta_lock);
	__hak_os_rss_reserve(r, &meta_lock, meta_bytes / META_CHUNK);
	for (c = meta_last; c; c = *(void **)c)
		__hak_os_rss_add(r, c, META_CHUNK);
	hak_unlock(&meta_lock);
	return __hak_os_rss_flush(r);
}

HAK_DEFINE_FORK_LOCK(__hak_meta, &meta_lock)
