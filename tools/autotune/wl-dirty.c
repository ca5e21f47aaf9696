// SPDX-License-Identifier: MIT
/*
 * wl-dirty: a synthetic autotune workload whose right answer under the RSS
 * objective is known. Phase 1 fills 16 MiB with 1 KiB blocks and frees all
 * but one in every 256, which leaves most slab pages free but their
 * superslabs in use: free pages that stay resident up to the dirty limit
 * (HAKMEM_DIRTY_MAX, 16 MiB by default). Phase 2 then allocates and touches
 * one 16 MiB buffer. The peak RSS is phase 2's buffer plus whatever phase 1
 * left resident, so a smaller dirty limit lowers it by up to 16 MiB (and a
 * larger one raises it); the time hardly changes. tools/autotune/test.sh
 * checks that autotune, asked for the lowest RSS, picks a dirty limit below
 * the default.
 *
 * Test hook: with WL_CRASH_IF=NAME=VALUE in the environment, the program
 * kills itself with SIGSEGV when the environment variable NAME is VALUE,
 * so a test can make one candidate crash (and check it is never chosen).
 *
 *   usage: wl-dirty [MiB]     (default 16)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void crash_hook(void)
{
	const char *spec = getenv("WL_CRASH_IF"), *eq, *val;

	if (!spec || !(eq = strchr(spec, '=')))
		return;
	char name[128];
	size_t n = (size_t)(eq - spec);

	if (n >= sizeof(name))
		return;
	memcpy(name, spec, n);
	name[n] = '\0';
	val = getenv(name);
	if (val && !strcmp(val, eq + 1))
		raise(SIGSEGV);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 16;
	size_t n = (mib << 20) / 1024, i, kept = 0, sum = 0;
	char **blk = malloc(n * sizeof(*blk)), *big;

	if (!blk || !mib)
		return 2;
	crash_hook();
	for (i = 0; i < n; i++) {
		blk[i] = malloc(1000);
		if (!blk[i])
			return 1;
		memset(blk[i], (int)i, 1000);
	}
	for (i = 0; i < n; i++) {
		if (i % 1024 == 0) {
			kept++;
			continue;
		}
		free(blk[i]);
	}
	big = malloc(mib << 20);
	if (!big)
		return 1;
	memset(big, 1, mib << 20);
	for (i = 0; i < mib << 20; i += 4096)
		sum += (unsigned char)big[i];
	free(big);
	for (i = 0; i < n; i += 1024)
		free(blk[i]);
	free(blk);
	printf("wl-dirty: %zu MiB, %zu blocks kept, checksum %zu\n", mib, kept, sum);
	return 0;
}
