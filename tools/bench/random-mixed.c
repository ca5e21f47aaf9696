// SPDX-License-Identifier: MIT
/*
 * random-mixed: one thread replaces random blocks of a working set with new
 * blocks of random tiny size, so every iteration is one free + one malloc
 * of an unrelated size class at a random position.
 *
 *   usage: random-mixed max_size ops slots seed [noop]
 *
 * Sizes are uniform in [8, max_size] (the suite runs 128 and 1024).  The
 * working set (slots blocks) is filled before the timed loop.  With "noop"
 * the same loop runs with malloc/free replaced by functions that do nothing,
 * which is what run.sh --callgrind subtracts to count the instructions of
 * the allocator alone (callgrind collects inside bench_loop() only).
 */
#include "bench.h"

typedef void *(*alloc_fn)(size_t);
typedef void (*free_fn)(void *);

static unsigned char noop_block[1024] __attribute__((aligned(64)));

static BENCH_NOINLINE void *noop_malloc(size_t n)
{
	(void)n;
	return noop_block;
}

static BENCH_NOINLINE void noop_free(void *p)
{
	(void)p;
}

/* Read through volatile so the calls can never be devirtualized. */
static alloc_fn volatile do_malloc = malloc;
static free_fn volatile do_free = free;

/* The measured loop; kept out of line so callgrind can toggle on it. */
BENCH_NOINLINE void bench_loop(void **slot, size_t slots, size_t max,
			       unsigned long ops, struct rng *rng)
{
	alloc_fn m = do_malloc;
	free_fn f = do_free;
	uint64_t span = max - 8 + 1;
	struct rng r = *rng;

	for (unsigned long i = 0; i < ops; i++) {
		uint64_t x = rng_next(&r);
		size_t idx = (size_t)(((x >> 32) * slots) >> 32);
		size_t sz = 8 + (size_t)(((x & 0xffffffffu) * span) >> 32);
		void *p;

		f(slot[idx]);
		p = m(sz);
		*(volatile unsigned char *)p = (unsigned char)i;
		slot[idx] = p;
	}
	*rng = r;
}

int main(int argc, char **argv)
{
	size_t max, slots;
	unsigned long ops, seed;
	int noop;
	void **slot;
	struct rng r;
	double t0, t1;
	char name[64], extra[96];

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: %s max_size ops slots seed [noop]\n", argv[0]);
		return 2;
	}
	max = arg_long(argv[1], "max_size");
	ops = arg_long(argv[2], "ops");
	slots = arg_long(argv[3], "slots");
	seed = arg_long(argv[4], "seed");
	noop = argc == 6 && !strcmp(argv[5], "noop");
	if (argc == 6 && !noop)
		die("5th argument must be 'noop'");
	if (max < 8 || max > sizeof(noop_block) || !slots)
		die("max_size must be in 8..1024 and slots > 0");
	if (noop) {
		do_malloc = noop_malloc;
		do_free = noop_free;
	}

	rng_seed(&r, seed);
	slot = xmalloc(sizeof(void *) * slots);
	for (size_t i = 0; i < slots; i++) {
		slot[i] = do_malloc(rng_range(&r, 8, max));
		if (!slot[i])
			die("malloc failed");
	}

	t0 = bench_start();
	bench_loop(slot, slots, max, ops, &r);
	t1 = bench_stop();

	snprintf(name, sizeof(name), "random-mixed-%zu", max);
	snprintf(extra, sizeof(extra), " max_size=%zu slots=%zu noop=%d",
		 max, slots, noop);
	bench_report(name, 1, (double)ops, t1 - t0, extra);

	for (size_t i = 0; i < slots; i++)
		do_free(slot[i]);
	free(slot);
	return 0;
}
