// SPDX-License-Identifier: MIT
/*
 * Valgrind box: the out-of-line half of the memcheck annotations (the
 * inline half is valgrind_hooks.h, which says what each hook means).
 *
 * Memory states hakmem keeps for memcheck:
 *   live block      MALLOCLIKE with its usable size: addressable; undefined
 *                   until written (calloc and fresh zero mappings: defined);
 *   free block      NOACCESS, from FREELIKE (or from carving, for a block
 *                   never handed out); its link word is opened only inside
 *                   hak_vg_next/hak_vg_set_next;
 *   metadata        superslab headers, block headers (header box), slab
 *                   descriptors, registries: plain memory, always defined.
 * No pointer to a live block is kept in defined metadata except the large
 * registry's keys, which memcheck would take for a reference from a root:
 * a leaked large block would be "still reachable". So under the box the
 * registry stores keys scrambled (lib/large.c: hak_vg_key()). Time stamps
 * in metadata count from the process's start (lib/os.c: __hak_now_ms), so
 * they stay below the addresses valgrind gives its client's mappings.
 */
#include <stdint.h>
#include "box.h"
#include "boxes/header_classidx/header.h"
#include "boxes/valgrind/valgrind_hooks.h"

void *hak_vg_big(void *p, bool zero)
{
	if (p && RUNNING_ON_VALGRIND)
		VALGRIND_MALLOCLIKE_BLOCK(p, __hak_usable_size(p), 0, zero);
	return p;
}

/*
 * The slot was described as a block when it was popped; the program gets
 * q inside it: describe q to the slot's end instead, and keep q's header
 * (which free reads) addressable.
 */
void hak_vg_slot_alias(void *slot, unsigned c, void *q)
{
	uintptr_t end = (uintptr_t)slot + __hak_class_size[c];

	if (q == slot || !RUNNING_ON_VALGRIND)
		return;
	VALGRIND_FREELIKE_BLOCK(slot, 0);
	VALGRIND_MALLOCLIKE_BLOCK(q, end - (uintptr_t)q, 0, 0);
	VALGRIND_MAKE_MEM_DEFINED(hak_hdr_of(q), sizeof(struct hak_hdr));
}
