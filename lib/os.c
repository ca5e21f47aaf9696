// SPDX-License-Identifier: MIT
/*
 * OS layer: anonymous private mappings only. Aligned mappings are made by
 * over-mapping and trimming both ends, so no address hint is ever needed.
 * Counters are atomics because any thread may map.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <asm/atomic.h>
#include "os.h"

static size_t os_mapped;

struct fault_site {
	unsigned long skip;	/* calls to let through before failing */
	unsigned long fail;	/* calls to fail after that */
	unsigned long failed;	/* failures injected so far */
};

static struct fault_site fault[HAK_OS_NSITES];

/* True when the test hook wants this call at site to fail. */
static bool fault_hit(enum hak_os_site site)
{
	struct fault_site *f = &fault[site];

	if (!IS_ENABLED(CONFIG_HAK_FAULT_INJECT))
		return false;
	if (arch_load_relaxed(&f->fail) == 0)
		return false;
	if (arch_load_relaxed(&f->skip) > 0) {
		arch_fetch_add(&f->skip, -1UL);
		return false;
	}
	arch_fetch_add(&f->fail, -1UL);
	arch_fetch_add(&f->failed, 1UL);
	return true;
}

void hak_test_os_fail(enum hak_os_site site, unsigned long skip, unsigned long n)
{
	if (!IS_ENABLED(CONFIG_HAK_FAULT_INJECT) || site >= HAK_OS_NSITES)
		return;
	arch_store_relaxed(&fault[site].skip, skip);
	arch_store_relaxed(&fault[site].fail, n);
}

unsigned long hak_test_os_failed(enum hak_os_site site)
{
	return site < HAK_OS_NSITES ? arch_load_relaxed(&fault[site].failed) : 0;
}

void *__hak_os_map(size_t len)
{
	void *p;

	if (fault_hit(HAK_OS_MAP)) {
		errno = ENOMEM;
		return NULL;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	arch_fetch_add(&os_mapped, len);
	return p;
}

void *__hak_os_map_aligned(size_t len, size_t align)
{
	uintptr_t raw, start;
	size_t over;
	void *p;

	if (align <= HAK_OS_PAGE)
		return __hak_os_map(len);
	over = len + align - HAK_OS_PAGE;
	if (over < len) {
		errno = ENOMEM;
		return NULL;
	}
	p = __hak_os_map(over);
	if (!p)
		return NULL;
	raw = (uintptr_t)p;
	start = HAK_ALIGN_UP(raw, (uintptr_t)align);
	if (start > raw)
		__hak_os_unmap(p, start - raw);
	if (raw + over > start + len)
		__hak_os_unmap((void *)(start + len), raw + over - (start + len));
	return (void *)start;
}

void __hak_os_unmap(void *p, size_t len)
{
	if (munmap(p, len) == 0)
		arch_fetch_add(&os_mapped, -len);
}

void *__hak_os_remap(void *p, size_t old_len, size_t new_len)
{
	void *q;

	if (fault_hit(HAK_OS_REMAP)) {
		errno = ENOMEM;
		return NULL;
	}
	q = mremap(p, old_len, new_len, MREMAP_MAYMOVE);
	if (q == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	arch_fetch_add(&os_mapped, new_len - old_len);
	return q;
}

bool __hak_os_purge(void *p, size_t len)
{
	if (fault_hit(HAK_OS_PURGE))
		return false;
	return madvise(p, len, MADV_DONTNEED) == 0;
}

size_t __hak_os_mapped(void)
{
	return arch_load_relaxed(&os_mapped);
}
