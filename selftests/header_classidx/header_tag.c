// SPDX-License-Identifier: MIT
/*
 * header_tag: with the header-class-index box every small block carries
 * its class in the byte before it, blocks stay 16-byte aligned with an
 * exact malloc_usable_size, aligned requests work, and free of a cached
 * block reads no slab metadata: the superslab's header page is made
 * unreadable (PROT_NONE) around a free/malloc pair, which would fault if
 * the fast path looked at it.
 */
#include <stdint.h>
#include <string.h>
#include <malloc.h>
#include <sys/mman.h>
#include "tap.h"
#include "child.h"
#include "size_class.h"
#include "superslab.h"
#include "boxes/failfast/failfast.h"
#include "boxes/header_classidx/header.h"

static void *volatile stash;

/* malloc through a pointer, so the compiler does not bound-check p[-1]. */
static void *(*volatile const do_malloc)(size_t) = malloc;

static void free_without_metadata(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;
	void *p, *q;
	uintptr_t ss;

	/* Make room in the bin: one block out, so the next free is a hit. */
	p = malloc(n);
	q = malloc(n);
	free(q);
	ss = (uintptr_t)p & ~(HAK_SS_SIZE - 1);
	if (mprotect((void *)ss, HAK_SS_HDR, PROT_NONE))
		_exit(3);
	free(p);		/* fast path: class from p[-1] */
	stash = malloc(n);	/* fast path: pop */
	if (stash != p)
		_exit(4);
	free(stash);
	mprotect((void *)ss, HAK_SS_HDR, PROT_READ | PROT_WRITE);
	_exit(0);
}

int main(void)
{
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 100, 128, 129, 1000,
					4096, 5000, 16384, 32767, 32768 };
	struct child_result r;
	unsigned i, bad_tag = 0, bad_align = 0, bad_usable = 0;
	size_t align;

	tap_plan(6);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];
		unsigned char *p = do_malloc(n);
		unsigned c = __hak_class_of(n);

		if (!p || hak_hdr_class(p) != c || hak_hdr_of(p)->check != hak_hdr_check(p))
			bad_tag++;
		if ((uintptr_t)p % 16)
			bad_align++;
		if (malloc_usable_size(p) != __hak_class_size[c])
			bad_usable++;
		memset(p, 0xee, malloc_usable_size(p));	/* must not hit a header */
		free(p);
	}
	tap_ok(!bad_tag, "class byte and check word before every block (%u bad)", bad_tag);
	tap_ok(!bad_align, "every block 16-byte aligned (%u bad)", bad_align);
	tap_ok(!bad_usable, "malloc_usable_size is the exact class size (%u bad)", bad_usable);

	bad_align = 0;
	for (align = 32; align <= 65536; align *= 2) {
		void *v[64];

		for (i = 0; i < 64; i++) {
			size_t n = (i * 97) % 3000 + 1;

			if (posix_memalign(&v[i], align, n) || (uintptr_t)v[i] % align ||
			    malloc_usable_size(v[i]) < n)
				bad_align++;
			else
				memset(v[i], (int)i, malloc_usable_size(v[i]));
		}
		for (i = 0; i < 64; i++)
			free(v[i]);
	}
	/* Blocks freed from aligned slots come back as ordinary blocks. */
	for (i = 0; i < 1000; i++) {
		unsigned char *p = do_malloc(48);

		if (hak_hdr_class(p) != __hak_class_of(48))
			bad_align++;
		stash = p;
		free(p);
	}
	tap_ok(!bad_align, "aligned allocations 32 B..64 KiB honoured and reusable (%u bad)",
	       bad_align);

	if (hak_ff_level()) {
		tap_skip("fail-fast reads the page table on free: no metadata-free proof");
		tap_skip("fail-fast reads the page table on free: no metadata-free proof");
	} else {
		child_run(free_without_metadata, (void *)(uintptr_t)64, &r);
		tap_ok(child_exited_ok(&r), "64 B free+malloc with the superslab header unreadable (status %#x)",
		       r.status);
		child_run(free_without_metadata, (void *)(uintptr_t)3000, &r);
		tap_ok(child_exited_ok(&r), "3000 B free+malloc with the superslab header unreadable (status %#x)",
		       r.status);
	}
	tap_finish();
}
