// SPDX-License-Identifier: MIT
/*
 * rt_spin: under a real-time policy a waiter for an allocator lock spins
 * (up to about 1 ms) rather than sleeping (lib/init.c, __hak_rt_spin).
 * Under SCHED_FIFO a sleeping waiter gives its CPU to the next thread of
 * its priority, not to the holder: past the cores that is a thread not
 * started yet, which starts its work and its memory (size-chain at 64
 * threads under chrt -f 1: Documentation/design.md, "Scaling past the
 * cores", sixteenth pass). The deterministic form of that trigger: a
 * holder on one CPU keeps a lock for 300 us (more than glibc's adaptive
 * spin, 100 rounds) while a waiter on another CPU asks for it. Checked:
 *   - under SCHED_FIFO the waiter gets the lock without a voluntary
 *     context switch (it never slept);
 *   - the spin is bounded: a word that stays busy ends it in 1 ms to 1 s;
 *   - under the default policy there is no spin (false at once);
 *   - SCHED_FIFO with SCHED_RESET_ON_FORK (as rtkit grants it, or chrt -R)
 *     spins too: sched_getscheduler() returns the flag or'ed in.
 * Skipped without two CPUs or without the right to SCHED_FIFO.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include "core_test.h"
#include "lock.h"

#define HOLD_NS		300000u

static struct hak_lock lk = HAK_LOCK_INIT;
static volatile int held, done;
static long waiter_vcsw = -1;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int pin_fifo(int cpu)
{
	struct sched_param sp = { .sched_priority = 1 };
	cpu_set_t set;

	/* not CPU_ZERO: glibc's is a do-while without braces, which sparse rejects */
	memset(&set, 0, sizeof(set));
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		return -1;
	return pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) ? -1 : 0;
}

static void *holder(void *arg)
{
	uint64_t end;

	if (pin_fifo((int)(uintptr_t)arg))
		return (void *)1;
	hak_lock(&lk);
	__atomic_store_n(&held, 1, __ATOMIC_RELEASE);
	end = now_ns() + HOLD_NS;
	while (now_ns() < end)
		;
	hak_unlock(&lk);
	while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE))
		;
	return NULL;
}

static void *waiter(void *arg)
{
	struct rusage r0, r1;

	if (pin_fifo((int)(uintptr_t)arg))
		return (void *)1;
	while (!__atomic_load_n(&held, __ATOMIC_ACQUIRE))
		;
	getrusage(RUSAGE_THREAD, &r0);
	hak_lock(&lk);
	getrusage(RUSAGE_THREAD, &r1);
	hak_unlock(&lk);
	waiter_vcsw = r1.ru_nvcsw - r0.ru_nvcsw;
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	return NULL;
}

int main(void)
{
	struct sched_param sp = { .sched_priority = 1 };
	int busy = 1, cpus[2], n = 0, c;
	cpu_set_t set;
	pthread_t a, b;
	void *ra, *rb;
	uint64_t end = 0, t0, t;

	tap_plan(4);
	if (sched_getaffinity(0, sizeof(set), &set))
		tap_skip_all("sched_getaffinity failed");
	for (c = 0; c < CPU_SETSIZE && n < 2; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	if (n < 2)
		tap_skip_all("needs two CPUs");

	tap_ok(!__hak_rt_spin(&busy, &end) && !end,
	       "under the default policy a busy word ends the spin at once");

	if (sched_setscheduler(0, SCHED_FIFO, &sp))
		tap_skip_all("SCHED_FIFO not allowed (%s)", strerror(errno));
	end = 0;
	t0 = now_ns();
	c = __hak_rt_spin(&busy, &end);
	t = now_ns() - t0;
	tap_ok(!c && t >= 1000000u && t < 1000000000u,
	       "under SCHED_FIFO a word that stays busy ends the spin after %llu us",
	       (unsigned long long)(t / 1000));

	sp.sched_priority = 1;
	if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp)) {
		tap_skip("SCHED_RESET_ON_FORK not allowed (%s)", strerror(errno));
	} else {
		end = 0;
		t0 = now_ns();
		c = __hak_rt_spin(&busy, &end);
		t = now_ns() - t0;
		tap_ok(!c && t >= 1000000u && t < 1000000000u,
		       "under SCHED_FIFO with SCHED_RESET_ON_FORK a busy word ends the spin "
		       "after %llu us", (unsigned long long)(t / 1000));
		sched_setscheduler(0, SCHED_FIFO, &sp);
	}

	if (pthread_create(&a, NULL, holder, (void *)(uintptr_t)cpus[0]) ||
	    pthread_create(&b, NULL, waiter, (void *)(uintptr_t)cpus[1]))
		tap_bail("pthread_create failed");
	pthread_join(b, &rb);
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
	pthread_join(a, &ra);
	sp.sched_priority = 0;
	sched_setscheduler(0, SCHED_OTHER, &sp);
	if (ra || rb)
		tap_skip("could not pin the threads under SCHED_FIFO");
	else
		tap_ok(waiter_vcsw == 0,
		       "a waiter for a lock held %u us on another CPU never slept (%ld switches)",
		       HOLD_NS / 1000, waiter_vcsw);
	tap_finish();
}
