// SPDX-License-Identifier: MIT
/*
 * The hardened box: the per-process secret of the link encoding, the
 * report of a bad link, and the random carve order (each block cut from a
 * slab is a random one of the next 16).
 *
 * The secret is set once, by the first heap attach (before any free-list
 * link exists; a link is only ever written by a thread with a heap), with
 * a compare-and-swap so that racing first attaches agree. It comes from
 * getrandom(), or when that fails (very early boot, seccomp) from the
 * clock, the pid and addresses (ASLR). fork keeps it: the child's links
 * are the parent's.
 *
 * Guard pages: the callers (lib/large.c, lib/superslab.c, BigCache) own
 * the page and know whether it is a guard; this file only protects it,
 * through the OS layer (page-table markers, MADV_GUARD_INSTALL, on Linux
 * 6.13 and later; mprotect before), and counts them. With mprotect a
 * guard in the middle of a mapping splits it in three, and running the
 * process out of mappings would fail every later mmap (thread stacks,
 * other libraries), not just ours: then guards are counted against a
 * budget of a quarter of vm.max_map_count (read once), past which blocks
 * and slabs are made without a guard (counted in skipped). Markers split
 * nothing and have no budget. fork keeps the guards in the child.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <asm/atomic.h>
#include "box.h"
#include "boxes/hardened/hardened.h"
#include "boxes/hardened/hd_internal.h"

uintptr_t __hak_hd_secret __boot_once;
static uint64_t carve_state __boot_hot;		/* xorshift state, racy by design */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

/*
 * The kernel's getrandom (__hak_os_getrandom, a system call), not libc's
 * symbol: a preloaded interposer answers for that one, and libfaketime's
 * (FAKERANDOM_SEED), called before its initialiser ran, looks its symbols
 * up with dlsym, whose error path calls malloc, which came back here:
 * every process of the hardened build with libfaketime preloaded overflowed
 * its stack at its first malloc (ext34). A system call is no cancellation
 * point either: the first malloc, this one's, returns with a cancel
 * pending (rv25, selftests/hardened/hd_cancel).
 */
void hak_hd_init(void)
{
	uint64_t v[2] = { 0, 0 };
	struct timespec ts;
	ssize_t got;

	if (arch_load_relaxed(&__hak_hd_secret))
		return;
	got = __hak_os_getrandom(v, sizeof(v));
	if (got != sizeof(v)) {
		__hak_os_clock(CLOCK_MONOTONIC, &ts);
		v[0] = mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
			   (uint64_t)__hak_os_getpid() ^ (uint64_t)(uintptr_t)&ts);
		v[1] = mix(v[0] ^ (uint64_t)(uintptr_t)&__hak_hd_secret);
	}
	/* never 0, the "not set" value */
	v[0] |= 1;
	arch_cmpxchg(&__hak_hd_secret, (uintptr_t)0, (uintptr_t)v[0]);
	arch_cmpxchg(&carve_state, (uint64_t)0, v[1] | 1);
}

void hak_hd_bad_link(const void *where, uintptr_t v)
{
	__hak_report("corrupted free-list link in the free block at %p (stored 0x%lx): "
		     "overflow or write after free", where, (unsigned long)v);
	abort();
}

/*
 * The same from the decoded word d (the stored one is d ^ where ^ secret),
 * for the pop fast path, which tail-calls it.
 */
void *hak_hd_bad_pop(const void *where, uintptr_t d)
{
	hak_hd_bad_link(where, d ^ (uintptr_t)where ^ __hak_hd_secret);
}

/*
 * The order in which to cut n new blocks (n <= HAK_HD_CARVE_MAX): a
 * random choice, at each step, among the HAK_HD_CARVE_WINDOW lowest
 * blocks not yet cut (a shuffle through a window that slides up the
 * batch). Whatever an attacker saw of the blocks before, the next is one
 * of 16, each as likely (4 bits), until the batch's last 15 (fewer
 * candidates; the last block of a batch is known, as in a full shuffle):
 * 3.7 to 3.9 bits a block on average over a batch of 64 to 128 blocks.
 * A full shuffle of the batch gave up to 7 bits a block (4.6 to 5.6 on
 * average), but cut the batch in an order with no direction, which the
 * program then frees and reuses in: footprint spent half again its time
 * on cache misses in slab free lists (Documentation/boxes/hardened.md).
 * The window keeps the blocks going up through memory 16 wide, so a
 * program that touches its blocks in allocation order still runs mostly
 * in address order.
 *
 * Draws: 16 bits each, four per step of a xorshift generator (not for
 * secrets: it is seeded from getrandom and never shown, but its outputs
 * are a linear function of the seed), a multiply instead of a division
 * (no bias for a full window, under 2^-12 for a shorter one).
 */
void hak_hd_carve_order(uint16_t *idx, uint32_t n)
{
	uint16_t win[HAK_HD_CARVE_WINDOW];
	uint64_t x = arch_load_relaxed(&carve_state), r = 0;
	uint32_t nw = 0, next = 0, k;

	while (nw < HAK_HD_CARVE_WINDOW && next < n)
		win[nw++] = (uint16_t)next++;
	for (k = 0; k < n; k++) {
		uint32_t j;

		if (!(k & 3)) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			r = x;
		}
		j = (uint32_t)(((r & 0xffff) * nw) >> 16);	/* 0..nw-1 */
		r >>= 16;
		idx[k] = win[j];
		if (next < n)
			win[j] = (uint16_t)next++;
		else
			win[j] = win[--nw];
	}
	arch_store_relaxed(&carve_state, x);
}

/* ---- guard pages ---- */

#define HD_MAP_COUNT_DEFAULT	65530UL	/* Linux's DEFAULT_MAX_MAP_COUNT */

static size_t hd_guards __boot_hot;		/* atomic: guard pages now protected */
static size_t hd_guard_max __boot_once;		/* atomic: the map-count budget; 0 until read */
static size_t hd_guard_test_max __boot_once;	/* atomic: a test's budget, 0: none */
static size_t hd_guard_skipped __boot_hot;		/* atomic: guards not made, ever */

/* vm.max_map_count, or Linux's default when /proc cannot say. */
static size_t read_map_count(void)
{
	char buf[32];
	size_t v = 0;
	ssize_t n = __hak_os_read_file("/proc/sys/vm/max_map_count", buf, sizeof(buf)), i;

	for (i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		v = v * 10 + (size_t)(buf[i] - '0');
	return v ? v : HD_MAP_COUNT_DEFAULT;
}

/*
 * Most guards at once: a quarter of vm.max_map_count while guards split
 * mappings (mprotect); no limit with page-table markers, which add no
 * mapping (an mlock()ed range that refused one brings the limit back).
 */
static size_t guard_budget(void)
{
	size_t max = arch_load_relaxed(&hd_guard_test_max);

	if (max)
		return max;
	if (!__hak_os_guard_splits())
		return SIZE_MAX;
	max = arch_load_relaxed(&hd_guard_max);
	if (unlikely(!max)) {
		max = read_map_count() / 4;
		if (!max)
			max = 1;
		arch_cmpxchg(&hd_guard_max, (size_t)0, max);
		max = arch_load_relaxed(&hd_guard_max);
	}
	return max;
}

bool hak_hd_guard_set(void *page)
{
	if (arch_fetch_add(&hd_guards, 1UL) >= guard_budget() ||
	    !__hak_os_guard(page, HAK_HD_GUARD_PAGE)) {
		arch_fetch_add(&hd_guards, -1UL);
		arch_fetch_add(&hd_guard_skipped, 1UL);
		return false;
	}
	return true;
}

bool hak_hd_guard_unset(void *page)
{
	if (!__hak_os_unguard(page, HAK_HD_GUARD_PAGE))
		return false;
	arch_fetch_add(&hd_guards, -1UL);
	return true;
}

void hak_hd_guard_gone(size_t n)
{
	arch_fetch_add(&hd_guards, -n);
}

bool hak_hd_guards_clear(void *p, size_t len, size_t n)
{
	if (!__hak_os_unguard(p, len))
		return false;
	arch_fetch_add(&hd_guards, -n);
	return true;
}

void __hak_hd_guard_stats(struct hak_hd_guard_stats *st)
{
	st->live = arch_load_relaxed(&hd_guards);
	st->skipped = arch_load_relaxed(&hd_guard_skipped);
	st->budget = guard_budget();
	st->markers = !__hak_os_guard_splits();
}

void __hak_hd_set_guard_budget(size_t n)
{
	arch_store_relaxed(&hd_guard_test_max, n);
}
