// SPDX-License-Identifier: MIT
/*
 * size-chain: whole chains of mixed-size blocks allocated, then freed in
 * bulk, with the size mix shifting from one chain to the next (the shape of
 * the sh6bench / sh8bench family, and of programs that build a structure,
 * drop it and build the next one: parsers, compilers' passes, request
 * handlers).
 *
 *   usage: size-chain threads chains_per_thread chain_len cross seed
 *
 * Each chain: pick a base size (1..64 B) and a step (1..16 B); allocate
 * chain_len blocks whose sizes ramp from the base by the step over 200
 * positions (up or down, so a chain spans up to ~3.3 KiB and some 30-60
 * size classes), writing each block's first and last bytes; then free them
 * in one of three orders (last first, first first, even positions then odd).
 * The next chain draws a new base and step, so the classes in use shift
 * and a thread cache sized for the last chain is wrong for the next.
 *
 * With cross = 1 a thread frees only the first half of its chain and hands
 * the second half to the next thread, which frees it (the sh8 variant:
 * bulk frees of blocks another thread allocated).  Chains still waiting in
 * a mailbox at the end are freed by main.
 *
 * One operation = one malloc or free.  A block whose bytes changed between
 * its malloc and its free stops the program (a wrong result, not a timing).
 */
#include <stdatomic.h>
#include "bench.h"

struct chain {
	size_t len;
	unsigned char **p;
	uint32_t *size;
};

struct mailbox {
	_Atomic(struct chain *) c;
	char pad[56];
};

struct worker {
	int id, threads, cross;
	unsigned long chains;
	size_t len;
	double ops;
	struct mailbox *boxes;
	struct rng rng;
};

static struct chain *chain_new(size_t len)
{
	struct chain *c = xmalloc(sizeof(*c));

	c->len = len;
	c->p = xmalloc(len * sizeof(*c->p));
	c->size = xmalloc(len * sizeof(*c->size));
	return c;
}

static unsigned char mark_of(size_t i, size_t n)
{
	return (unsigned char)(i * 31 + n);
}

static void free_one(struct chain *c, size_t i)
{
	unsigned char *b = c->p[i];
	size_t n = c->size[i];

	if (!b)
		return;
	if (b[0] != mark_of(i, n) || b[n - 1] != mark_of(i, n))
		die("a block's bytes changed before its free");
	free(b);
	c->p[i] = NULL;
}

/* Free every block left in c, then c itself; returns the frees done. */
static double chain_drop(struct chain *c)
{
	double n = 0;

	for (size_t i = 0; i < c->len; i++)
		if (c->p[i]) {
			free_one(c, i);
			n++;
		}
	free(c->p);
	free(c->size);
	free(c);
	return n;
}

static void *worker_thread(void *arg)
{
	struct worker *w = arg;
	struct rng r = w->rng;
	struct mailbox *next = &w->boxes[(w->id + 1) % w->threads];
	struct mailbox *mine = &w->boxes[w->id];

	for (unsigned long k = 0; k < w->chains; k++) {
		struct chain *c = chain_new(w->len);
		size_t base = rng_range(&r, 1, 64), step = rng_range(&r, 1, 16);
		int up = (int)rng_range(&r, 0, 1);
		size_t lim = w->cross ? c->len / 2 : c->len;

		for (size_t i = 0; i < c->len; i++) {
			size_t pos = up ? i % 200 : 199 - i % 200;
			size_t n = base + step * pos;

			c->p[i] = malloc(n);
			if (!c->p[i])
				die("malloc failed");
			c->size[i] = (uint32_t)n;
			c->p[i][0] = mark_of(i, n);
			c->p[i][n - 1] = mark_of(i, n);
		}
		w->ops += (double)c->len;
		switch (k % 3) {
		case 0:
			for (size_t i = lim; i-- > 0;)
				free_one(c, i);
			break;
		case 1:
			for (size_t i = 0; i < lim; i++)
				free_one(c, i);
			break;
		default:
			for (size_t i = 0; i < lim; i += 2)
				free_one(c, i);
			for (size_t i = 1; i < lim; i += 2)
				free_one(c, i);
			break;
		}
		w->ops += (double)lim;
		if (w->cross) {
			/* hand the rest on; free what the previous thread handed us */
			struct chain *old = atomic_exchange(&next->c, c);
			struct chain *in = atomic_exchange(&mine->c, NULL);

			if (old)	/* the next thread has not taken it yet */
				w->ops += chain_drop(old);
			if (in)
				w->ops += chain_drop(in);
		} else {
			free(c->p);
			free(c->size);
			free(c);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	struct worker *w;
	struct mailbox *boxes;
	unsigned long chains, seed;
	size_t len;
	int threads, cross;
	double t0, t1, ops = 0;
	char extra[96];

	if (argc != 6) {
		fprintf(stderr, "usage: %s threads chains_per_thread chain_len cross seed\n", argv[0]);
		return 2;
	}
	threads = (int)arg_long(argv[1], "threads");
	chains = arg_long(argv[2], "chains_per_thread");
	len = arg_long(argv[3], "chain_len");
	cross = (int)arg_long(argv[4], "cross");
	seed = arg_long(argv[5], "seed");
	if (threads < 1 || len < 2)
		die("bad arguments (threads >= 1, chain_len >= 2)");

	boxes = xmalloc(sizeof(*boxes) * threads);
	memset(boxes, 0, sizeof(*boxes) * threads);
	w = xmalloc(sizeof(*w) * threads);
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){ .id = i, .threads = threads, .cross = cross && threads > 1,
					.chains = chains, .len = len, .boxes = boxes };
		rng_seed(&w[i].rng, seed * 977 + i);
	}
	t0 = bench_start();
	run_threads(threads, worker_thread, w, sizeof(*w));
	t1 = bench_stop();
	for (int i = 0; i < threads; i++) {
		struct chain *c = atomic_load(&boxes[i].c);

		ops += w[i].ops;
		if (c)
			ops += chain_drop(c);
	}
	snprintf(extra, sizeof(extra), " chain_len=%zu cross=%d", len, cross);
	bench_report("size-chain", threads, ops, t1 - t0, extra);
	free(w);
	free(boxes);
	return 0;
}
