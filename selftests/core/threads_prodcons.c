// SPDX-License-Identifier: MIT
/*
 * threads_prodcons: blocks allocated by one thread and freed by another.
 *
 * Proves that cross-thread frees (the remote-free path) neither corrupt
 * nor leak nor stall, with more threads than cores on purpose:
 *  - 4 and 8 threads, in two shapes: one producer feeding all the others,
 *    and half producers feeding half consumers round-robin;
 *  - every block carries a pattern derived from its address and size,
 *    checked by the consumer just before it frees the block (a block handed
 *    out twice, or written by the allocator, shows up here);
 *  - the batches of pointers themselves are malloc'ed by the producer and
 *    freed by the consumer;
 *  - each configuration is repeated and VmRSS after the last repetition
 *    stays within slack (25% + 8 MiB) of the highest VmRSS seen in the
 *    first half of the repetitions: memory freed remotely is reused, not
 *    leaked (a round allocates over 100 MiB in all, so even a small leak
 *    fraction shows).
 *
 * Usage: threads_prodcons [blocks-per-round] [rounds] [threads]   (default
 * 60000 6, with HAKMEM_SELFTEST_QUICK=1 20000 4). Given a thread count T
 * (2..64; tools/stress.sh -t runs 16 and 64), the two shapes are run with
 * T threads instead: 1 producer -> T-1 consumers and T/2 -> T/2.
 */
#include <pthread.h>
#include <sched.h>

#include "core_test.h"

#define BATCH	64
#define QCAP	32
#define MAX_THREADS	64

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	void **slot[QCAP];
	unsigned head, count;
	int done;
};

struct run {
	struct queue *q;
	unsigned nq;
	unsigned long per_producer;
	unsigned producers_left;
	pthread_mutex_t lock;
	unsigned long bad, consumed;
};

struct targ {
	struct run *run;
	unsigned id;
	uint64_t rng;
};

static uint64_t xs(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Block layout: [size][~address][bytes = f(address, size) ...] */
static void stamp(void *p, size_t n)
{
	uint64_t *w = p;
	unsigned char b = (unsigned char)(((uintptr_t)p >> 4) ^ n);

	w[0] = n;
	w[1] = ~(uint64_t)(uintptr_t)p;
	memset((char *)p + 16, b, n - 16);
}

static int verify(void *p)
{
	uint64_t *w = p;
	size_t n = w[0];
	unsigned char b = (unsigned char)(((uintptr_t)p >> 4) ^ n);
	const unsigned char *c = p;

	if (n < 16 || n > (1 << 20) || w[1] != ~(uint64_t)(uintptr_t)p)
		return 0;
	for (size_t i = 16; i < n; i++)
		if (c[i] != b)
			return 0;
	return 1;
}

static size_t pick_size(uint64_t *rng)
{
	uint64_t r = xs(rng);

	switch (r % 32) {
	case 0:
		return 16 + (r >> 8) % (96 * 1024);	/* mid */
	case 1: case 2: case 3: case 4:
		return 16 + (r >> 8) % 4096;
	default:
		return 16 + (r >> 8) % 256;		/* tiny */
	}
}

static void push(struct queue *q, void **batch)
{
	pthread_mutex_lock(&q->lock);
	while (q->count == QCAP)
		pthread_cond_wait(&q->not_full, &q->lock);
	q->slot[(q->head + q->count) % QCAP] = batch;
	q->count++;
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
}

static void **pop(struct queue *q)
{
	void **b = NULL;

	pthread_mutex_lock(&q->lock);
	while (q->count == 0 && !q->done)
		pthread_cond_wait(&q->not_empty, &q->lock);
	if (q->count) {
		b = q->slot[q->head];
		q->head = (q->head + 1) % QCAP;
		q->count--;
		pthread_cond_signal(&q->not_full);
	}
	pthread_mutex_unlock(&q->lock);
	return b;
}

static void *producer(void *a)
{
	struct targ *t = a;
	struct run *r = t->run;
	unsigned next = t->id % r->nq;
	unsigned long made = 0;

	while (made < r->per_producer) {
		void **batch = malloc(BATCH * sizeof(void *));
		unsigned n = 0;

		if (!batch)
			abort();
		while (n < BATCH - 1 && made < r->per_producer) {
			size_t sz = pick_size(&t->rng);
			void *p = malloc(sz);

			if (!p)
				abort();
			stamp(p, sz);
			batch[n++] = p;
			made++;
		}
		batch[n] = NULL;
		push(&r->q[next], batch);
		next = (next + 1) % r->nq;
	}
	pthread_mutex_lock(&r->lock);
	if (--r->producers_left == 0) {
		for (unsigned i = 0; i < r->nq; i++) {
			pthread_mutex_lock(&r->q[i].lock);
			r->q[i].done = 1;
			pthread_cond_broadcast(&r->q[i].not_empty);
			pthread_mutex_unlock(&r->q[i].lock);
		}
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void *consumer(void *a)
{
	struct targ *t = a;
	struct run *r = t->run;
	struct queue *q = &r->q[t->id];
	unsigned long bad = 0, got = 0;
	void **batch;

	while ((batch = pop(q))) {
		for (unsigned i = 0; batch[i]; i++) {
			if (!verify(batch[i]))
				bad++;
			free(batch[i]);
			got++;
		}
		free(batch);
		/* a little local traffic too, so the consumer's own caches churn */
		free(malloc(32 + got % 512));
	}
	pthread_mutex_lock(&r->lock);
	r->bad += bad;
	r->consumed += got;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* One round: 'np' producers, 'nc' consumers. Returns blocks bad. */
static unsigned long round_run(unsigned np, unsigned nc, unsigned long blocks,
			       unsigned long *consumed, uint64_t seed)
{
	struct run r = { 0 };
	pthread_t th[MAX_THREADS];
	struct targ ta[MAX_THREADS];
	struct queue q[MAX_THREADS];

	memset(q, 0, sizeof(q));
	for (unsigned i = 0; i < nc; i++) {
		pthread_mutex_init(&q[i].lock, NULL);
		pthread_cond_init(&q[i].not_empty, NULL);
		pthread_cond_init(&q[i].not_full, NULL);
	}
	r.q = q;
	r.nq = nc;
	r.per_producer = blocks / np;
	r.producers_left = np;
	pthread_mutex_init(&r.lock, NULL);
	for (unsigned i = 0; i < np + nc; i++) {
		ta[i].run = &r;
		ta[i].id = i < np ? i : i - np;
		ta[i].rng = seed * 0x9e3779b97f4a7c15ull + i + 1;
		if (pthread_create(&th[i], NULL, i < np ? producer : consumer, &ta[i]))
			tap_bail("pthread_create failed");
	}
	for (unsigned i = 0; i < np + nc; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i < nc; i++) {
		pthread_mutex_destroy(&q[i].lock);
		pthread_cond_destroy(&q[i].not_empty);
		pthread_cond_destroy(&q[i].not_full);
	}
	pthread_mutex_destroy(&r.lock);
	*consumed = r.consumed;
	if (r.consumed != r.per_producer * np)
		return r.bad + 1;
	return r.bad;
}

int main(int argc, char **argv)
{
	unsigned long blocks = argc > 1 ? strtoul(argv[1], NULL, 0) : ct_quick() ? 20000 : 60000;
	unsigned rounds = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : ct_quick() ? 4 : 6;
	long nthreads = argc > 3 ? strtol(argv[3], NULL, 0) : 0;
	struct { unsigned np, nc; char shape[48]; } cfg[] = {
		{ 1, 3, "1 producer -> 3 consumers" },
		{ 2, 2, "2 producers -> 2 consumers" },
		{ 1, 7, "1 producer -> 7 consumers" },
		{ 4, 4, "4 producers -> 4 consumers" },
	};
	size_t ncfg = ARRAY_SIZE_CT(cfg);

	if (rounds < 4)
		rounds = 4;
	if (nthreads) {
		unsigned t = nthreads < 2 ? 2 : nthreads > MAX_THREADS ? MAX_THREADS : (unsigned)nthreads;

		cfg[0].np = 1;
		cfg[0].nc = t - 1;
		cfg[1].np = t / 2;
		cfg[1].nc = t - t / 2;
		for (size_t c = 0; c < 2; c++)
			snprintf(cfg[c].shape, sizeof(cfg[c].shape), "%u producer%s -> %u consumers",
				 cfg[c].np, cfg[c].np > 1 ? "s" : "", cfg[c].nc);
		ncfg = 2;
	}
	tap_plan(2 * (unsigned)ncfg);
	tap_diag("%lu blocks per round, %u rounds per shape", blocks, rounds);
	for (size_t c = 0; c < ncfg; c++) {
		unsigned long bad = 0, consumed, total = 0;
		long rss_ref = 0, rss_last = 0;
		char trace[256];
		int tl = 0;

		for (unsigned k = 0; k < rounds; k++) {
			bad += round_run(cfg[c].np, cfg[c].nc, blocks, &consumed, c * 100 + k);
			total += consumed;
			rss_last = ct_retained_kib();
			/* reference: the highest RSS of the first half of the rounds */
			if (k < rounds / 2 && rss_last > rss_ref)
				rss_ref = rss_last;
			if (tl < (int)sizeof(trace) - 16)
				tl += snprintf(trace + tl, sizeof(trace) - (size_t)tl, " %ld",
					       rss_last / 1024);
		}
		tap_diag("%s: VmRSS MiB per round:%s", cfg[c].shape, trace);
		tap_ok(bad == 0, "%u threads, %s: %lu blocks checked and freed cross-thread, %lu bad",
		       cfg[c].np + cfg[c].nc, cfg[c].shape, total, bad);
		tap_ok(rss_last <= rss_ref + rss_ref / 4 + 8192,
		       "%s: VmRSS peak of rounds 1-%u %ld KiB, after round %u %ld KiB (no unbounded growth)",
		       cfg[c].shape, rounds / 2, rss_ref, rounds, rss_last);
	}
	tap_finish();
}
