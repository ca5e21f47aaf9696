// SPDX-License-Identifier: MIT
/*
 * A clock_gettime interposer in the process (libfaketime, preloaded next
 * to hakmem): the library reads the kernel's clocks past it (lib/os.c,
 * __hak_os_clock), so its decay clock runs on while the program's stands
 * still, memory freed is purged after the delay, and the interposer's own
 * malloc (libfaketime's first call looks its symbols up with dlsym, whose
 * error path allocates) never re-enters the allocator from inside it.
 *
 * This program defines clock_gettime (it links libhakmem.a, so the
 * library's calls would bind to it, as a preloaded one's would): a clock
 * stopped at 2000-01-01 (FAKETIME="2000-01-01 00:00:00") for every clock
 * id, which mallocs and frees a small block at each read. Before the fix
 * every read of the library's came here: with libfaketime preloaded every
 * process overflowed its stack at its first malloc (the nested reads,
 * each a malloc slow path, never ended), and with this clock the coarse
 * clock stood still and nothing freed was ever purged.
 */
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "os.h"

#define NB	(1u << 16)	/* 64 Ki blocks of 512 B: 32 MiB */
#define BS	512

static unsigned long calls;	/* atomic: reads of this clock */
static int nested;		/* atomic: reads from inside one */
/* volatile: malloc is declared leaf, and the stores would move past it */
static __thread volatile int depth;

int clock_gettime(clockid_t id, struct timespec *ts)
{
	(void)id;
	__atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
	if (depth) {
		__atomic_fetch_add(&nested, 1, __ATOMIC_RELAXED);
	} else {
		depth++;
		free(malloc(78));
		depth--;
	}
	ts->tv_sec = 946684800;
	ts->tv_nsec = 0;
	return 0;
}

/*
 * Fill 32 MiB with 512 B blocks, free all but one per 32 KiB (every slab
 * stays live: only a decay pass purges the pages of its free blocks), then
 * tick every 50 ms until RSS is down to a third, for up to 10 s: RSS
 * before and after, and the time waited.
 */
static void free_then_wait(long *before, long *after, unsigned *waited_ms)
{
	static void *b[NB];
	long limit;
	unsigned i, k;

	for (i = 0; i < NB; i++) {
		b[i] = malloc(BS);
		if (!b[i])
			tap_bail("malloc(%d) failed", BS);
		memset(b[i], 1, BS);
	}
	*before = proc_status_kib("VmRSS");
	for (i = 0; i < NB; i++)
		if (i % 64) {
			free(b[i]);
			b[i] = NULL;
		}
	/* ct_decay_tick()'s 4 MiB block stays resident in BigCache */
	limit = *before / 3 + (IS_ENABLED(CONFIG_HAK_BIGCACHE) ? 4096 : 0);
	for (k = 0; k < 200; k++) {
		ct_decay_tick();
		if ((*after = proc_status_kib("VmRSS")) < limit)
			break;
		usleep(50 * 1000);
	}
	*waited_ms = k * 50;
}

int main(void)
{
	unsigned a, b, waited;
	long before, after;

	tap_plan(3);
	free(malloc(3000));
	a = __hak_now_ms();
	usleep(200 * 1000);
	b = __hak_now_ms();
	tap_ok(b - a >= 100, "the library's clock runs while the program's stands still: %u ms over 200",
	       b - a);
	free_then_wait(&before, &after, &waited);
	tap_ok(after < before / 3 + (IS_ENABLED(CONFIG_HAK_BIGCACHE) ? 4096 : 0),
	       "memory freed is purged under the stopped clock: RSS %ld -> %ld KiB in %u ms",
	       before, after, waited);
	tap_ok(!__atomic_load_n(&calls, __ATOMIC_RELAXED),
	       "the library never read the program's clock_gettime (%lu reads, %d from inside one)",
	       __atomic_load_n(&calls, __ATOMIC_RELAXED), __atomic_load_n(&nested, __ATOMIC_RELAXED));
	tap_finish();
}
