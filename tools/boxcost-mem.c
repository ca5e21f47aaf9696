// SPDX-License-Identifier: MIT
/*
 * boxcost-mem: resident bytes per live block. Allocates COUNT blocks of
 * SIZE bytes (touching each), reads VmRSS before and after, prints
 * "bytes_per_block=<x>". Plain libc: the allocator comes by LD_PRELOAD.
 *
 *   boxcost-mem SIZE COUNT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

int main(int argc, char **argv)
{
	size_t size, count, i;
	char **v;
	long before, after;

	if (argc != 3)
		return 2;
	size = strtoul(argv[1], NULL, 0);
	count = strtoul(argv[2], NULL, 0);
	v = calloc(count, sizeof(*v));
	if (!v)
		return 1;
	/* Fault the array in first (a plain memset after calloc is elided). */
	for (i = 0; i < count; i += 512)
		((char *volatile *)v)[i] = NULL;
	before = rss_kib();
	for (i = 0; i < count; i++) {
		v[i] = malloc(size);
		if (!v[i])
			return 1;
		v[i][0] = 1;
		v[i][size - 1] = 1;
	}
	after = rss_kib();
	printf("bytes_per_block=%.1f\n", (double)(after - before) * 1024 / (double)count);
	for (i = 0; i < count; i++)
		free(v[i]);
	free(v);
	return 0;
}
