/* SPDX-License-Identifier: MIT */
/*
 * A crowd of parked threads, each with a heap attached, so that live
 * threads outnumber the CPUs this process may run on by more than one
 * whatever else the test runs: the CPU count (sched_getaffinity, as
 * lib/heap.c counts it at the first attach) plus two. For the tests of a
 * thread caching the blocks of an owner it finds idle (lib/heap.c,
 * owner_idle(); Documentation/design.md, "Idle owner's blocks"): a rule
 * that kept that caching to threads past the cores (the rule of
 * __hak_tcache_live_share) was tried (Documentation/benchmarks.md, "larson
 * 1 thread: the idle owner's blocks"), and those tests must reach the
 * path with it on any machine, not only on one with few CPUs.
 *
 * crowd_start() returns once every member has attached (it allocated and
 * freed a block of a class above the TLS prewarm box's, so it has a heap);
 * the members then wait, without calling the allocator, until
 * crowd_stop(), which lets them exit and joins them. The crowd also
 * shrinks every thread's default cache capacities (thread_share): a test
 * that relies on a block staying in a cache should check that it does.
 */
#ifndef HAK_SELFTEST_CROWD_H
#define HAK_SELFTEST_CROWD_H

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include "proc.h"

struct crowd {
	unsigned n;		/* members started */
	unsigned ready;		/* members attached */
	int go;			/* 1: the members may exit */
	pthread_t *t;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void *crowd_member(void *arg)
{
	struct crowd *c = arg;
	void *p = malloc(1000);

	__asm__ __volatile__("" : "+r"(p) :: "memory");	/* keep the pair */
	free(p);
	pthread_mutex_lock(&c->mu);
	c->ready++;
	pthread_cond_broadcast(&c->cv);
	while (!c->go)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

static inline void crowd_stop(struct crowd *c)
{
	unsigned i;

	pthread_mutex_lock(&c->mu);
	c->go = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	for (i = 0; i < c->n; i++)
		pthread_join(c->t[i], NULL);
	free(c->t);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	c->n = 0;
}

/* 0 once cpus + 2 members are attached and parked, -1 if they could not start. */
static inline int crowd_start(struct crowd *c)
{
	unsigned want = proc_cpus() + 2;

	c->n = c->ready = 0;
	c->go = 0;
	c->t = malloc(want * sizeof(*c->t));
	if (!c->t || pthread_mutex_init(&c->mu, NULL) || pthread_cond_init(&c->cv, NULL))
		return -1;
	while (c->n < want && !pthread_create(&c->t[c->n], NULL, crowd_member, c))
		c->n++;
	pthread_mutex_lock(&c->mu);
	while (c->ready < c->n)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
	if (c->n < want) {
		crowd_stop(c);
		return -1;
	}
	return 0;
}

#endif /* HAK_SELFTEST_CROWD_H */
