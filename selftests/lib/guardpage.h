/* SPDX-License-Identifier: MIT */
/*
 * guardpage.h: is a page a guard page? A guard is mapped and faults on any
 * access, whichever way it was made: mprotect(PROT_NONE) (a ---p line in
 * /proc/self/maps) or a MADV_GUARD_INSTALL marker (Linux 6.13 on: in no
 * line of /proc/self/maps, the mapping stays whole). So it is asked of the
 * kernel: mincore() says the page is mapped (ENOMEM for a hole) and a
 * process_vm_readv() of the page from this process fails with EFAULT (as
 * a read by the program would fault), with no signal.
 */
#ifndef HAK_SELFTEST_GUARDPAGE_H
#define HAK_SELFTEST_GUARDPAGE_H

#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/uio.h>

static inline int page_is_guard(uintptr_t a)
{
	unsigned char v;
	char c;
	struct iovec local = { &c, 1 }, remote = { (void *)a, 1 };

	if (mincore((void *)(a & ~4095UL), 4096, &v) && errno == ENOMEM)
		return 0;
	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) < 0 && errno == EFAULT;
}

/* Guard pages in [lo, hi) (page-aligned); *first: the lowest one, or 0. */
static inline size_t guards_in(uintptr_t lo, uintptr_t hi, uintptr_t *first)
{
	size_t n = 0;

	*first = 0;
	for (; lo < hi; lo += 4096) {
		if (!page_is_guard(lo))
			continue;
		if (!n)
			*first = lo;
		n++;
	}
	return n;
}

/* Does this kernel make MADV_GUARD_INSTALL markers (Linux 6.13 on)? */
static inline int kernel_guard_markers(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int ok;

	if (p == MAP_FAILED)
		return 0;
	ok = madvise(p, 4096, 102 /* MADV_GUARD_INSTALL */) == 0;
	munmap(p, 4096);
	return ok;
}

#endif /* HAK_SELFTEST_GUARDPAGE_H */
