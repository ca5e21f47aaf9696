// SPDX-License-Identifier: MIT
/*
 * l25_carve: the pool maps its 2 MiB regions several at a time (1, 2, 4
 * .. 16 regions per mmap) instead of one mmap (and two alignment trims)
 * per region, and malloc_trim() gives back the address space mapped ahead
 * and not yet used.
 *
 * Blocks of the pool's largest class, held live, until 40 regions exist:
 *  - the pool made them with at most 8 mmap calls (1+2+4+8+16+16 = 47),
 *    not 40 (one per region, as before: this check failed with 40);
 *  - every block is usable and keeps what was written to it;
 *  - after free and malloc_trim() nothing is reserved any more, and the
 *    pool maps again when asked for more.
 */
#include "l25_test.h"

#define NREG	40
#define MAXBLK	(NREG * 64)

static void *blk[MAXBLK];

int main(void)
{
	size_t top = 0, n = 0, i, j;
	struct hak_l25_stats st0, st1;
	uintptr_t base[NREG];
	unsigned nb = 0, bad = 0;
	void *p;

	top = lt_top_class();
	tap_plan(4);
	hak_l25_stats(&st0);
	while (nb < NREG && n < MAXBLK) {
		uintptr_t b;

		p = blk[n] = malloc(lt_opaque(top));
		if (!p || __hak_ssmap_kind((uintptr_t)p) != HAK_SSMAP_L25)
			tap_bail("a block of %zu bytes is not a pool block", top);
		n++;
		memset(p, (int)(n & 0xff), 64);
		memset((char *)p + top - 64, (int)(n & 0xff), 64);
		b = (uintptr_t)p & ~((uintptr_t)HAK_SS_SIZE - 1);
		for (i = 0; i < nb && base[i] != b; i++)
			;
		if (i == nb)
			base[nb++] = b;
	}
	hak_l25_stats(&st1);
	tap_ok(nb == NREG && st1.map_calls - st0.map_calls <= 8,
	       "%u regions took %zu mmap calls (at most 8)", nb,
	       st1.map_calls - st0.map_calls);
	for (i = 0; i < n; i++) {
		unsigned char *q = blk[i], v = (unsigned char)((i + 1) & 0xff);

		for (j = 0; j < 64; j++)
			bad += q[j] != v || q[top - 64 + j] != v;
	}
	tap_ok(bad == 0, "%zu blocks keep what was written to them (%u bad bytes)", n, bad);
	for (i = 0; i < n; i++)
		free(blk[i]);
	malloc_trim(0);
	hak_l25_stats(&st1);
	tap_ok(st1.reserved_bytes == 0,
	       "malloc_trim leaves no address space mapped ahead (%zu bytes)",
	       st1.reserved_bytes);
	p = malloc(lt_opaque(top));
	hak_l25_stats(&st0);
	tap_ok(p && __hak_ssmap_kind((uintptr_t)p) == HAK_SSMAP_L25 &&
	       st0.map_calls > st1.map_calls,
	       "after it the pool maps again (%zu -> %zu mmap calls)",
	       st1.map_calls, st0.map_calls);
	free(p);
	tap_finish();
}
