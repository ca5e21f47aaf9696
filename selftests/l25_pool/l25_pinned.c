// SPDX-License-Identifier: MIT
/*
 * l25_pinned: the pool's shard cap follows the process's CPUs, not the
 * mask of the thread that makes the first mid-size request. The main
 * thread allocates a small block first (as any program does before it
 * starts workers); then a worker pinned to one CPU makes the pool's first
 * request. Before, the pool counted that worker's mask (1 CPU) and capped
 * itself at 2 shards on any machine, so 64 pinned producers shared 2 locks
 * (Documentation/benchmarks.md, producer-consumer-mid at 16 and 64 pairs).
 */
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include "l25_test.h"

static size_t expected_cap(unsigned cpus)
{
	size_t cap = 1, max = 1;

	while (max * 2 <= CONFIG_HAK_L25_MAX_SHARDS && max * 2 <= 64)
		max *= 2;
	while (cap * 2 <= 2 * (size_t)cpus && cap * 2 <= max)
		cap *= 2;
	return cap;
}

static void *pinned_first(void *arg)
{
	cpu_set_t one;
	void *p;

	/* not CPU_ZERO: glibc's is a do-while without braces, which sparse rejects */
	memset(&one, 0, sizeof(one));
	CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
	*(int *)arg = pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
	p = malloc(lt_opaque(40000));
	if (p)
		*(volatile char *)p = 1;
	free(p);
	return NULL;
}

int main(void)
{
	struct hak_l25_stats st;
	cpu_set_t set;
	unsigned cpus;
	pthread_t t;
	int pin_err = -1;
	void *small = malloc(lt_opaque(64));	/* the main thread attaches */

	*(volatile char *)small = 1;
	if (sched_getaffinity(0, sizeof(set), &set))
		tap_bail("sched_getaffinity: %s", strerror(errno));
	cpus = (unsigned)CPU_COUNT(&set);
	if (cpus < 2 || CONFIG_HAK_L25_MAX_SHARDS < 4)
		tap_skip_all("%u CPU(s), shard cap config %d: a pinned thread's count "
			     "and the process's give the same cap", cpus,
			     CONFIG_HAK_L25_MAX_SHARDS);
	pthread_create(&t, NULL, pinned_first, &pin_err);
	pthread_join(t, NULL);
	if (pin_err)
		tap_skip_all("could not pin a thread: %s", strerror(pin_err));
	tap_plan(1);
	hak_l25_stats(&st);
	tap_ok(st.shard_cap == expected_cap(cpus),
	       "the first mid-size request from a thread pinned to 1 CPU: shard cap %zu, "
	       "the process's %u CPUs give %zu", st.shard_cap, cpus, expected_cap(cpus));
	free(small);
	tap_finish();
}
