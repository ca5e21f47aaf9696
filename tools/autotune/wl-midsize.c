// SPDX-License-Identifier: MIT
/*
 * wl-midsize: a synthetic autotune workload whose right answer is known.
 * It churns a small working set of mid-size blocks (40..200 KiB), writing
 * one byte per 4 KiB page of each new block. Served from the L2.5 pool
 * (CONFIG_HAK_L25_POOL) a pair is a few dozen instructions on resident
 * memory; without it every block is its own mmap + munmap plus page faults,
 * several times slower. tools/autotune/test.sh checks that autotune turns
 * the pool on.
 *
 *   usage: wl-midsize [ops] [slots]     (default 20000 ops, 8 slots)
 */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	unsigned long ops = argc > 1 ? strtoul(argv[1], NULL, 0) : 20000;
	unsigned long nslots = argc > 2 ? strtoul(argv[2], NULL, 0) : 8;
	unsigned long x = 88172645463325252ul, i, sum = 0;
	unsigned char **slot = calloc(nslots, sizeof(*slot));

	if (!slot || !nslots)
		return 2;
	for (i = 0; i < ops; i++) {
		unsigned long k, sz;

		/* xorshift64: the same sequence of sizes under every allocator */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		k = x % nslots;
		sz = (40ul << 10) + (x >> 20) % (160ul << 10);
		free(slot[k]);
		slot[k] = malloc(sz);
		if (!slot[k]) {
			fprintf(stderr, "wl-midsize: malloc(%lu) failed\n", sz);
			return 1;
		}
		for (unsigned long off = 0; off < sz; off += 4096)
			slot[k][off] = (unsigned char)i;
		sum += slot[k][0];
	}
	for (i = 0; i < nslots; i++)
		free(slot[i]);
	free(slot);
	printf("wl-midsize: %lu ops, checksum %lu\n", ops, sum);
	return 0;
}
