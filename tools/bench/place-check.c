// SPDX-License-Identifier: MIT
/*
 * place-check: does the address an allocator gives cache-scratch's object
 * change the speed of cache-scratch's write loop?  Not a suite row.
 *
 * One worker thread, like cache-scratch at 1 thread, <iterations> times
 * mallocs <objsize> bytes, then times <repetitions> passes of
 * cache-scratch's read-modify-write loop on that object and the same
 * number on a fixed page-aligned static buffer, back to back (which goes
 * first alternates), and frees the object.  Both timings of a pair see the
 * same machine state (frequency, the other vCPU, preemption), so the median
 * of the per-pair ratios shows placement alone: 1.00 means the allocator's
 * object is written as fast as the reference buffer.
 *
 *   usage: place-check objsize repetitions iterations
 *   e.g.   LD_PRELOAD=... place-check 8 20000 1000
 *
 * Prints "PLACE obj=<address> ratio_p10=... ratio_median=... ratio_p90=..."
 * where ratio = reference time / object time.
 */
#include <pthread.h>
#include "bench.h"

#define REF_OFFSET	64

struct check {
	size_t objsize;
	unsigned long repetitions, iterations;
	double *ratio;
	void *first;
};

static unsigned char ref_buf[2 * 4096] __attribute__((aligned(4096)));

/* cache-scratch's loop, out of line so both calls run the same code. */
static BENCH_NOINLINE void write_passes(volatile unsigned char *p, size_t n,
					unsigned long repetitions)
{
	for (unsigned long r = 0; r < repetitions; r++)
		for (size_t b = 0; b < n; b++)
			p[b] = (unsigned char)(p[b] + 1);
}

static double timed_passes(unsigned char *p, const struct check *c)
{
	double t0 = now_sec();

	write_passes(p, c->objsize, c->repetitions);
	return now_sec() - t0;
}

static void *check_thread(void *arg)
{
	struct check *c = arg;

	for (unsigned long i = 0; i < c->iterations; i++) {
		unsigned char *p = malloc(c->objsize);
		double t_obj, t_ref;

		if (!p)
			die("malloc failed");
		if (!i)
			c->first = p;
		if (i & 1) {
			t_obj = timed_passes(p, c);
			t_ref = timed_passes(ref_buf + REF_OFFSET, c);
		} else {
			t_ref = timed_passes(ref_buf + REF_OFFSET, c);
			t_obj = timed_passes(p, c);
		}
		c->ratio[i] = t_obj > 0 ? t_ref / t_obj : 1.0;
		free(p);
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct check c;
	pthread_t t;

	if (argc != 4) {
		fprintf(stderr, "usage: %s objsize repetitions iterations\n", argv[0]);
		return 2;
	}
	c.objsize = arg_long(argv[1], "objsize");
	c.repetitions = arg_long(argv[2], "repetitions");
	c.iterations = arg_long(argv[3], "iterations");
	if (!c.objsize || c.objsize > sizeof(ref_buf) - REF_OFFSET || !c.iterations)
		die("bad arguments");
	c.ratio = xmalloc(c.iterations * sizeof(*c.ratio));
	c.first = NULL;
	if (pthread_create(&t, NULL, check_thread, &c))
		die("pthread_create failed");
	pthread_join(t, NULL);
	qsort(c.ratio, c.iterations, sizeof(*c.ratio), cmp_double);
	printf("PLACE obj=%p ratio_p10=%.3f ratio_median=%.3f ratio_p90=%.3f\n",
	       c.first, c.ratio[c.iterations / 10], c.ratio[c.iterations / 2],
	       c.ratio[c.iterations * 9 / 10]);
	free(c.ratio);
	return 0;
}
