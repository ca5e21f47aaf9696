// SPDX-License-Identifier: MIT
/*
 * usable_race: malloc_usable_size of large blocks while another thread
 * allocates and frees large blocks in the same registry shards.
 *
 * The size of a large block comes from the thread's memo, else a lock-free
 * walk of its shard's bucket, which gives up when the shard changed under
 * it (its sequence count moved) and then looks again under the shard's
 * lock (lib/large.c, usable_walk). Before this test nothing took that
 * locked look. A wrong answer there is 0, which malloc_usable_size turns
 * into "not allocated by hakmem" and an abort, or a size too small.
 * Proves that for 250 ms, 64 live blocks of 1 MiB + i pages, asked for in
 * turn (so the memo misses), always report at least their size while a
 * second thread allocates, writes and frees blocks of 1..4 MiB, and that
 * realloc of the same blocks (which asks the registry too) keeps their data.
 */
#include <pthread.h>

#include "core_test.h"

#define NB	64
#define MIB	((size_t)1 << 20)

static volatile int stop;

/* Block i's first 64 bytes hold i + 1 (the pattern must survive a move). */
static int holds(const void *p, unsigned i)
{
	const unsigned char *c = p;

	for (unsigned k = 0; k < 64; k++)
		if (c[k] != (unsigned char)(i + 1))
			return 0;
	return 1;
}

static void *churn(void *arg)
{
	unsigned x = 12345;
	void *win[8] = { 0 };
	long n = 0;

	(void)arg;
	while (!stop) {
		unsigned i = (x >> 8) % 8;

		x = x * 1103515245u + 12345u;
		free(win[i]);
		win[i] = malloc(MIB + (x >> 4) % (3 * MIB));
		if (win[i])
			((char *)win[i])[0] = 1;
		n++;
	}
	for (unsigned i = 0; i < 8; i++)
		free(win[i]);
	return (void *)n;
}

int main(void)
{
	static void *b[NB];
	size_t want[NB];
	pthread_t t;
	long bad = 0, asks = 0, churns;
	double end;
	void *r;

	tap_plan(2);
	for (unsigned i = 0; i < NB; i++) {
		want[i] = MIB + (size_t)i * 4096;
		b[i] = malloc(want[i]);
		if (!b[i])
			tap_bail("malloc(%zu) failed", want[i]);
		memset(b[i], (int)(i + 1), 64);
	}
	if (pthread_create(&t, NULL, churn, NULL))
		tap_bail("pthread_create failed");
	end = ct_now_ms() + 250;
	while (ct_now_ms() < end) {
		for (unsigned i = 0; i < NB; i++, asks++)
			bad += malloc_usable_size(b[i]) < want[i];
	}
	stop = 1;
	pthread_join(t, &r);
	churns = (long)r;
	tap_ok(!bad, "%ld usable-size asks of 64 large blocks beside %ld large mallocs and "
	       "frees: none under the size", asks, churns);

	stop = 0;
	if (pthread_create(&t, NULL, churn, NULL))
		tap_bail("pthread_create failed");
	bad = 0;
	for (unsigned k = 0; k < 4; k++)
		for (unsigned i = 0; i < NB; i++) {
			void *q = realloc(b[i], want[i] + (k + 1) * 8192);

			if (!q || !holds(q, i) ||
			    malloc_usable_size(q) < want[i] + (k + 1) * 8192) {
				bad++;
				continue;
			}
			b[i] = q;
		}
	stop = 1;
	pthread_join(t, NULL);
	tap_ok(!bad, "realloc of the 64 blocks (4 rounds) beside the churn: data and size kept");
	for (unsigned i = 0; i < NB; i++)
		free(b[i]);
	tap_finish();
}
