// SPDX-License-Identifier: MIT
/*
 * os_aligned: the OS layer's aligned mappings (lib/os.c
 * __hak_os_map_aligned), which superslabs, L2.5 regions and aligned large
 * blocks come from. Every mapping it returns starts on its alignment, has
 * its full length readable and writable and zeroed, and unmaps whole.
 *
 * Where the kernel puts an anonymous mapping of a multiple of 2 MiB on a
 * 2 MiB boundary (Linux 6.7 on; probed here with a plain mmap), a 2 MiB
 * region costs one mmap of 2 MiB, not an over-map of twice that and its
 * trims: it fits under a hard memory limit with 3 MiB of room left.
 */
#include <sys/mman.h>
#include "core_test.h"
#include "os.h"

#define MIB	((size_t)1 << 20)

static int check(size_t len, size_t align)
{
	unsigned char *p = __hak_os_map_aligned(len, align);
	size_t i;
	int ok;

	if (!p)
		return 0;
	ok = ((uintptr_t)p & (align - 1)) == 0;
	for (i = 0; ok && i < len; i += 4096)
		ok = p[i] == 0;
	p[0] = 1;
	p[len - 1] = 1;
	__hak_os_unmap(p, len);
	return ok;
}

/* Does the kernel align a plain 2 MiB anonymous mapping? */
static int kernel_aligns(void)
{
	int n = 0;

	for (int i = 0; i < 4; i++) {
		void *p = mmap(NULL, 2 * MIB, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return 0;
		n += ((uintptr_t)p & (2 * MIB - 1)) == 0;
		munmap(p, 2 * MIB);
	}
	return n == 4;
}

int main(void)
{
	static const size_t cases[][2] = {
		{ 2 * MIB, 2 * MIB }, { 4 * MIB, 2 * MIB }, { 64 << 10, 2 * MIB },
		{ 2 * MIB, 64 << 10 }, { 3 * MIB, MIB }, { 8 << 10, 4096 },
	};
	unsigned k;
	void *p;

	tap_plan(ARRAY_SIZE_CT(cases) + 2);
	for (k = 0; k < ARRAY_SIZE_CT(cases); k++)
		tap_ok(check(cases[k][0], cases[k][1]),
		       "map_aligned(%zu, %zu): aligned, zeroed, writable",
		       cases[k][0], cases[k][1]);

	/* Many in a row, as a pool grows: each aligned and distinct. */
	{
		void *v[16];
		int ok = 1;

		for (k = 0; k < 16; k++) {
			v[k] = __hak_os_map_aligned(2 * MIB, 2 * MIB);
			ok &= v[k] && ((uintptr_t)v[k] & (2 * MIB - 1)) == 0;
			for (unsigned j = 0; ok && j < k; j++)
				ok = v[j] != v[k];
		}
		for (k = 0; k < 16; k++)
			if (v[k])
				__hak_os_unmap(v[k], 2 * MIB);
		tap_ok(ok, "16 regions of 2 MiB in a row: aligned and distinct");
	}

	/*
	 * The over-map asks for twice the length: under a hard limit with
	 * room for 3 MiB more it failed, one exact mmap fits.
	 */
	if (!kernel_aligns()) {
		tap_skip("one mmap per region: this kernel does not align 2 MiB mappings");
	} else {
		size_t lim = __hak_os_limit();

		__hak_os_set_limit(__hak_os_mapped() + 3 * MIB, true);
		p = __hak_os_map_aligned(2 * MIB, 2 * MIB);
		__hak_os_set_limit(lim, false);
		tap_ok(p && ((uintptr_t)p & (2 * MIB - 1)) == 0,
		       "a 2 MiB region is one exact mmap: it fits in 3 MiB of room");
		if (p)
			__hak_os_unmap(p, 2 * MIB);
	}
	tap_finish();
}
