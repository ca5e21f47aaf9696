// SPDX-License-Identifier: MIT
/*
 * commit_charge: what this process would be charged against the commit
 * limit under vm.overcommit_memory=2, in KiB, at three points: idle (after
 * start-up and a first printf), peak (100 MB of mixed sizes live, from 4
 * threads) and after (all of it freed, the threads joined, malloc_trim).
 * Built without hakmem; commit_charge.sh runs it with and without
 * LD_PRELOAD and compares.
 *
 * The charge of a mapping (mm/mmap.c, accountable_mapping): a private
 * writable one is charged, VmFlags "ac" in /proc/self/smaps (it stays so
 * after an mprotect to read-only). MAP_NORESERVE takes a mapping out
 * ("nr") in modes 0 and 1 only: mode 2 ignores it, so such a mapping that
 * is writable counts here too. Read-only and shared mappings do not.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS		4
#define PER_THREAD	(25UL << 20)
#define MAXB		40000

static unsigned long charge_kib(void)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	unsigned long a, b, len = 0, kib = 0;
	char line[512];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			len = b - a;
		} else if (!strncmp(line, "VmFlags:", 8)) {
			int ac = strstr(line, " ac") != NULL, wr = strstr(line, " wr") != NULL;
			int sh = strstr(line, " sh") != NULL;

			if (ac || (wr && !sh))
				kib += len >> 10;
		}
	}
	fclose(f);
	return kib;
}

static pthread_barrier_t live, done;

static void *worker(void *arg)
{
	static __thread void *blk[MAXB];
	unsigned long seed = (unsigned long)arg * 2654435761UL + 1, total = 0;
	unsigned n = 0;

	while (total < PER_THREAD && n < MAXB) {
		size_t sz;

		seed = seed * 6364136223846793005UL + 1442695040888963407UL;
		switch ((seed >> 33) % 8) {
		case 0: sz = 200000 + (seed >> 40) % 800000; break;	/* large */
		case 1: case 2: sz = 8192 + (seed >> 40) % 100000; break;	/* mid */
		default: sz = 16 + (seed >> 40) % 2000; break;		/* small */
		}
		blk[n] = malloc(sz);
		if (!blk[n])
			break;
		memset(blk[n], 1, sz);
		total += sz;
		n++;
	}
	pthread_barrier_wait(&live);
	pthread_barrier_wait(&done);
	while (n)
		free(blk[--n]);
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];
	unsigned long idle, peak, after;

	printf("start\n");
	fflush(stdout);
	idle = charge_kib();
	pthread_barrier_init(&live, NULL, THREADS + 1);
	pthread_barrier_init(&done, NULL, THREADS + 1);
	for (long i = 0; i < THREADS; i++)
		if (pthread_create(&t[i], NULL, worker, (void *)i))
			return 1;
	pthread_barrier_wait(&live);
	peak = charge_kib();
	pthread_barrier_wait(&done);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	malloc_trim(0);
	after = charge_kib();
	printf("idle %lu\npeak %lu\nafter %lu\n", idle, peak, after);
	return 0;
}
