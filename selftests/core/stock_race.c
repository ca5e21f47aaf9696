// SPDX-License-Identifier: MIT
/*
 * stock_race: superslab stock refills made with ss_lock dropped
 * (lib/superslab.c, ss_stock_fill), with many threads taking superslabs
 * at once, and a fork in the middle of it. Checked here:
 *   - T threads released together each allocate about 12 MiB of small
 *     blocks (several refills of the stock, raced for by threads that
 *     find it empty at once); every block keeps its own pattern (no piece
 *     handed out twice, none lost);
 *   - a child forked while they run (so possibly while a refill is being
 *     mapped, or ss_lock held) allocates, frees and exits normally: its
 *     locks were re-initialised as the adaptive kind (lib/lock.h);
 *   - after the threads exit and everything is freed, malloc_trim gives
 *     the superslabs back (the stock's rest included): no piece was kept
 *     out of the pool by a refill that lost its race.
 */
#include <pthread.h>
#include <sys/wait.h>
#include "core_test.h"
#if CT_HAKMEM
#include <hakmem/hakmem.h>
#endif

#define T	8
#define BS	1024
#define NB	(12 * 1024)	/* 12 MiB of 1 KiB blocks a thread */

static void *blk[T][NB];
static pthread_barrier_t go;
static volatile int bad;

static unsigned char pat(unsigned t, unsigned i)
{
	return (unsigned char)(t * 31 + i * 7 + 1);
}

static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg, i;

	pthread_barrier_wait(&go);
	for (i = 0; i < NB; i++) {
		unsigned char *p = malloc(BS);

		if (!p) {
			bad = 1;
			break;
		}
		p[0] = p[BS - 1] = pat(t, i);
		blk[t][i] = p;
	}
	return NULL;
}

static int child(void)
{
	static void *v[4096];
	unsigned i;

	for (i = 0; i < 4096; i++) {
		v[i] = malloc(1 + i % 2000);
		if (!v[i])
			return 1;
		memset(v[i], 0x5a, 1 + i % 2000);
	}
	for (i = 0; i < 4096; i++)
		free(v[i]);
	return 0;
}

int main(void)
{
	pthread_t th[T];
	unsigned t, i;
	int ok = 1, status = -1;
	pid_t pid;

	tap_plan(3);
	pthread_barrier_init(&go, NULL, T + 1);
	for (t = 0; t < T; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t))
			tap_bail("pthread_create failed");
	pthread_barrier_wait(&go);
	pid = fork();
	if (pid == 0)
		_exit(child());
	for (t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	for (t = 0; t < T && ok; t++)
		for (i = 0; i < NB; i++) {
			unsigned char *p = blk[t][i];

			if (!p || p[0] != pat(t, i) || p[BS - 1] != pat(t, i)) {
				ok = 0;
				break;
			}
		}
	tap_ok(ok && !bad, "%u threads released together took %u blocks of %u B each, all intact",
	       T, NB, BS);

	if (pid > 0)
		waitpid(pid, &status, 0);
	tap_ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "a child forked during the refills allocates and frees (status %d)", status);

	for (t = 0; t < T; t++)
		for (i = 0; i < NB; i++)
			free(blk[t][i]);
	malloc_trim(0);
#if CT_HAKMEM
	{
		struct hak_stats st;

		hak_stats_get(&st);
		tap_ok(st.superslabs <= 4,
		       "after the frees and a trim %zu superslabs are left (of ~%u used)",
		       st.superslabs, T * NB * BS / (2u << 20));
	}
#else
	tap_skip("not linked with hakmem");
#endif
	tap_finish();
}
