// SPDX-License-Identifier: MIT
/*
 * A process that runs for weeks: the coarse clock keeps counting past
 * 2^31 ms (24.9 days) and wraps at 2^32 ms (49.7 days) without stopping,
 * and the decay passes keep giving memory back past both, also after a
 * long idle spell with no allocator call at all. The test ages itself:
 * the library's clock reads go to __hak_clock_hook (lib/os.h), defined
 * here, which answers with the kernel's CLOCK_MONOTONIC_COARSE plus an
 * offset the test sets.
 *
 * Before the fix the clock read 1 from day 24.9 to day 49.7 (a 32-bit
 * difference tested as signed), no decay pass ran in that time, and 40 MB
 * freed on day 26 stayed resident (64 KiB purged).
 */
#include <time.h>
#include <sys/syscall.h>
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "clock_offset.h"
#include "os.h"

#define DAY_MS		(86400LL * 1000)
#define NS		(200u * 1000)	/* blocks of 200 B: 40 MB */


/* The clock at offset off, less its reading at offset 0 (a). */
static unsigned since(long long off, unsigned a)
{
	clock_off_ms = off;
	return __hak_now_ms() - a;
}

static void test_readings(void)
{
	static const long long offs[] = {
		(1LL << 31) - 2000, (1LL << 31) + 1000, 30 * DAY_MS, 45 * DAY_MS,
		(1LL << 32) + 5000, (1LL << 32) + (1LL << 31) + 7000,
	};
	unsigned a, d, bad = 0, i;

	clock_off_ms = 0;
	a = __hak_now_ms();
	for (i = 0; i < ARRAY_SIZE_CT(offs); i++) {
		d = since(offs[i], a);
		/* the real clock moves on meanwhile: a second of slack */
		if (d - (unsigned)offs[i] > 1000) {
			tap_diag("offset %lld ms: the clock moved %u ms", offs[i], d);
			bad++;
		}
	}
	clock_off_ms = (1LL << 32) - (long long)a;	/* the 32-bit value would be 0 */
	d = __hak_now_ms();
	tap_ok(!bad && d != 0,
	       "the coarse clock counts on past 24.9 and 49.7 days (%u readings off, %u at the wrap)",
	       bad, d);
}

static size_t purged(void)
{
	struct hak_stats st;

	hak_stats_get(&st);
	return st.purged_bytes;
}

/*
 * Free 40 MB of small blocks at the current offset, then let 100 seconds
 * of activity pass (a small and a large malloc/free per second: the ticks
 * that run decay passes); the bytes purged meanwhile.
 */
static size_t free_then_age(void)
{
	static void *s[NS];
	size_t before;
	unsigned i, k;

	for (i = 0; i < NS; i++) {
		s[i] = malloc(200);
		memset(s[i], 1, 200);
	}
	before = purged();
	for (i = 0; i < NS; i++)
		free(s[i]);
	for (k = 0; k < 100; k++) {
		void *q[64];
		unsigned j;

		clock_off_ms += 1000;
		for (j = 0; j < 64; j++)
			q[j] = malloc(3000 + (k & 7) * 1024);
		for (j = 0; j < 64; j++)
			free(q[j]);
		free(malloc(300000));
		usleep(1000);
	}
	return purged() - before;
}

int main(void)
{
	size_t p;

	tap_plan(0);
	test_readings();

	/* the process ages to day 26 as a running one would: 1000 s steps */
	clock_off_ms = (1LL << 31) - 10 * 1000 * 1000;
	while (clock_off_ms < 26 * DAY_MS) {
		clock_off_ms += 1000 * 1000;
		free(malloc(3000));
		free(malloc(300000));
	}
	p = free_then_age();
	tap_ok(p >= (16u << 20), "decay passes purge on day 26: %zu KiB purged", p >> 10);

	/* idle for 30 days, no allocator call: the passes are due at once */
	clock_off_ms += 30 * DAY_MS;
	p = free_then_age();
	tap_ok(p >= (16u << 20), "and after 30 idle days (day 56): %zu KiB purged", p >> 10);
	tap_finish();
}
