// SPDX-License-Identifier: MIT
/*
 * fifo_scan_wait: a heap's owner under SCHED_FIFO that finds its scan lock
 * held by another thread's decay pass (lib/heap.c, heap_enter_wait) must
 * let that thread run. The scanner ends at its next slab once the owner
 * asks (scan_want), but it needs a CPU for that: past the cores it shares
 * the owner's, at the default policy. The owner spun on sched_yield(),
 * which under a real-time policy gives the CPU only to threads of its own
 * priority or above, so the scanner ran only in the real-time throttle's
 * window (50 ms a second by default: the owner stalled 0.95 s per wait),
 * and never where that throttle is off (sched_rt_runtime_us = -1, as on
 * real-time systems): a hang (rv25, Documentation/reliability.md,
 * "Many-thread paths reviewed").
 *
 * The deterministic form: both threads on one CPU; a default-policy thread
 * takes the main thread's scan lock as the decay pass does (HAK_SCAN_OTHER)
 * and gives it back as soon as it sees scan_want; the main thread, now
 * SCHED_FIFO, calls malloc_trim (its slow path enters its heap). Checked:
 * the wait ends within 200 ms (a scenario child, ended by an alarm after
 * 10 s). Skipped without the right to SCHED_FIFO.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include "core_test.h"
#include "heap.h"

#define SCAN_OTHER	2	/* HAK_SCAN_OTHER, lib/heap.c */

static struct hak_heap *heap;
static volatile int taken;

static int pin(int cpu)
{
	cpu_set_t set;

	memset(&set, 0, sizeof(set));
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *scanner(void *arg)
{
	int zero = 0;

	if (pin((int)(uintptr_t)arg) ||
	    !__atomic_compare_exchange_n(&heap->scan_lk, &zero, SCAN_OTHER, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return (void *)1;
	taken = 1;
	while (!__atomic_load_n(&heap->scan_want, __ATOMIC_RELAXED))
		;
	__atomic_store_n(&heap->scan_lk, 0, __ATOMIC_RELEASE);
	return NULL;
}

/* The scenario child: exits 0 when the wait took under 200 ms, 3 on no FIFO. */
static void scenario(void)
{
	struct sched_param sp = { .sched_priority = 1 };
	cpu_set_t set;
	pthread_t t;
	double t0, ms;
	int cpu;

	alarm(10);
	if (sched_getaffinity(0, sizeof(set), &set))
		_exit(2);
	for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set); cpu++)
		;
	free(malloc(64));		/* the main thread's heap */
	heap = __hak_tc.heap;
	if (!heap || pin(cpu) || pthread_create(&t, NULL, scanner, (void *)(uintptr_t)cpu))
		_exit(2);
	while (!taken)
		sched_yield();
	if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp))
		_exit(3);
	t0 = ct_now_ms();
	malloc_trim(0);
	ms = ct_now_ms() - t0;
	sp.sched_priority = 0;
	pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
	pthread_join(t, NULL);
	printf("# the owner waited %.1f ms\n", ms);
	fflush(stdout);
	_exit(ms < 200 ? 0 : 1);
}

int main(void)
{
	int st;

	tap_plan(1);
	fflush(stdout);
	st = ct_scenario_child(scenario);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
		tap_skip_all("no right to SCHED_FIFO");
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	       "a SCHED_FIFO owner whose scan lock a default-policy thread holds on its CPU gets it back at once (%s %d%s)",
	       WIFSIGNALED(st) ? "signal" : "exit",
	       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), ct_hung(st));
	tap_finish();
}
