/* SPDX-License-Identifier: MIT */
/*
 * A thread that frees a burst of small blocks and then waits, alive,
 * without calling the allocator: its heap is then another thread's to
 * purge (the background purge thread's, or any thread's next call).
 *
 * It allocates nb blocks of IDLE_BURST_BS bytes, fills each, and frees all
 * but one in IDLE_BURST_KEEP (so seven 4 KiB pages in eight are free).
 * idle_burst_start() returns once the burst is done; idle_burst_stop()
 * lets the thread end, frees the kept blocks and returns how many of them
 * changed while it waited (a purge that took a live page would show).
 * peak_kib is the process's VmRSS read by the thread with the whole burst
 * live, before its frees: read by the caller after idle_burst_start(), it
 * missed what a background pass had already purged when a loaded machine
 * ran one first. (hugepage/hp_idle keeps the read after the burst: its
 * third check wants the loop to run until that RSS falls, one tick past
 * the peak's fall, when the last superslab's advice is withdrawn.)
 */
#ifndef HAK_SELFTEST_IDLE_BURST_H
#define HAK_SELFTEST_IDLE_BURST_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "proc.h"

#define IDLE_BURST_BS	1024
#define IDLE_BURST_KEEP	32

struct idle_burst {
	unsigned nb;		/* blocks in the burst */
	void **b;		/* nb slots */
	void **keep;		/* nb / IDLE_BURST_KEEP slots */
	pthread_t t;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int state;		/* 1: burst done, 2: may exit */
	long peak_kib;		/* VmRSS with the burst live; -1 unknown */
};

static void idle_burst_set(struct idle_burst *ib, int state)
{
	pthread_mutex_lock(&ib->mu);
	ib->state = state;
	pthread_cond_broadcast(&ib->cv);
	pthread_mutex_unlock(&ib->mu);
}

static void idle_burst_wait(struct idle_burst *ib, int state)
{
	pthread_mutex_lock(&ib->mu);
	while (ib->state != state)
		pthread_cond_wait(&ib->cv, &ib->mu);
	pthread_mutex_unlock(&ib->mu);
}

static void *idle_burst_main(void *arg)
{
	struct idle_burst *ib = arg;
	unsigned i;

	for (i = 0; i < ib->nb; i++) {
		ib->b[i] = malloc(IDLE_BURST_BS);
		memset(ib->b[i], (int)i, IDLE_BURST_BS);
	}
	ib->peak_kib = proc_status_kib("VmRSS");
	for (i = 0; i < ib->nb; i++) {
		if (i % IDLE_BURST_KEEP == 0)
			ib->keep[i / IDLE_BURST_KEEP] = ib->b[i];
		else
			free(ib->b[i]);
	}
	idle_burst_set(ib, 1);
	idle_burst_wait(ib, 2);
	return NULL;
}

/* Storage for b and keep is the caller's (static: no allocation of ours). */
static inline int idle_burst_start(struct idle_burst *ib, unsigned nb,
				   void **b, void **keep)
{
	ib->nb = nb;
	ib->b = b;
	ib->keep = keep;
	ib->state = 0;
	pthread_mutex_init(&ib->mu, NULL);
	pthread_cond_init(&ib->cv, NULL);
	if (pthread_create(&ib->t, NULL, idle_burst_main, ib))
		return -1;
	idle_burst_wait(ib, 1);
	return 0;
}

static inline int idle_burst_stop(struct idle_burst *ib)
{
	unsigned i, n = ib->nb / IDLE_BURST_KEEP;
	int bad = 0;

	for (i = 0; i < n; i++)
		bad += ((unsigned char *)ib->keep[i])[IDLE_BURST_BS - 1] !=
		       (unsigned char)(i * IDLE_BURST_KEEP);
	idle_burst_set(ib, 2);
	pthread_join(ib->t, NULL);
	for (i = 0; i < n; i++)
		free(ib->keep[i]);
	return bad;
}

#endif
