// SPDX-License-Identifier: MIT
/*
 * The hardened box: the per-process secret of the link encoding, the
 * report of a bad link, and the random carve order (a shuffle of each
 * batch of blocks cut from a slab).
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
 * through the OS layer, and counts the guards against a budget of a
 * quarter of vm.max_map_count (read once): a guard in the middle of a
 * mapping splits it in three, and running the process out of mappings
 * would fail every later mmap (thread stacks, other libraries), not just
 * ours. Past the budget, blocks and slabs are made without a guard
 * (counted in skipped). fork keeps the protection in the child.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <asm/atomic.h>
#include "box.h"
#include "boxes/hardened/hardened.h"
#include "boxes/hardened/hd_internal.h"

uintptr_t __hak_hd_secret;
static uint64_t carve_state;		/* xorshift state, racy by design */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

void hak_hd_init(void)
{
	uint64_t v[2] = { 0, 0 };
	struct timespec ts;

	if (arch_load_relaxed(&__hak_hd_secret))
		return;
	if (getrandom(v, sizeof(v), GRND_NONBLOCK) != sizeof(v)) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v[0] = mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
			   (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&ts);
		v[1] = mix(v[0] ^ (uint64_t)(uintptr_t)&__hak_hd_secret);
	}
	/* never 0, the "not set" value */
	v[0] |= 1;
	arch_cmpxchg(&__hak_hd_secret, (uintptr_t)0, (uintptr_t)v[0]);
	arch_cmpxchg(&carve_state, (uint64_t)0, v[1] | 1);
}

void hak_hd_bad_link(const void *where, uintptr_t v)
{
	__hak_report("corrupted free-list link in the free block at %p (stored %#lx): "
		     "overflow or write after free", where, (unsigned long)v);
	abort();
}

/*
 * A uniform-enough permutation of 0..n-1 (n <= HAK_HD_SHUFFLE_MAX): the
 * "inside-out" Fisher-Yates, one pass, with four 16-bit draws per step of
 * a xorshift generator (not for secrets) and a multiply instead of a
 * division (bias under 2^-8 at n = 256). It runs once per carved block,
 * so its cost is the box's on refills from new slabs (thread churn).
 */
void hak_hd_shuffle(uint16_t *idx, uint32_t n)
{
	uint64_t x = arch_load_relaxed(&carve_state), r = 0;
	uint32_t i;

	for (i = 0; i < n; i++) {
		uint32_t j;
		uint16_t t;

		if (!(i & 3)) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			r = x;
		}
		j = (uint32_t)(((r & 0xffff) * (i + 1)) >> 16);	/* 0..i */
		r >>= 16;
		idx[i] = (uint16_t)i;
		t = idx[j];
		idx[j] = (uint16_t)i;
		idx[i] = t;
	}
	arch_store_relaxed(&carve_state, x);
}

/* ---- guard pages ---- */

#define HD_MAP_COUNT_DEFAULT	65530UL	/* Linux's DEFAULT_MAX_MAP_COUNT */

static size_t hd_guards;		/* atomic: guard pages now protected */
static size_t hd_guard_max;		/* atomic: the budget; 0 until read */
static size_t hd_guard_skipped;		/* atomic: guards not made, ever */

/* vm.max_map_count, or Linux's default when /proc cannot say. */
static size_t read_map_count(void)
{
	char buf[32];
	size_t v = 0;
	ssize_t n, i;
	int fd;

	fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return HD_MAP_COUNT_DEFAULT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	for (i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
		v = v * 10 + (size_t)(buf[i] - '0');
	return v ? v : HD_MAP_COUNT_DEFAULT;
}

static size_t guard_budget(void)
{
	size_t max = arch_load_relaxed(&hd_guard_max);

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
	    !__hak_os_protect(page, HAK_HD_GUARD_PAGE, true)) {
		arch_fetch_add(&hd_guards, -1UL);
		arch_fetch_add(&hd_guard_skipped, 1UL);
		return false;
	}
	return true;
}

bool hak_hd_guard_unset(void *page)
{
	if (!__hak_os_protect(page, HAK_HD_GUARD_PAGE, false))
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
	if (!__hak_os_protect(p, len, false))
		return false;
	arch_fetch_add(&hd_guards, -n);
	return true;
}

void __hak_hd_guard_stats(struct hak_hd_guard_stats *st)
{
	st->live = arch_load_relaxed(&hd_guards);
	st->skipped = arch_load_relaxed(&hd_guard_skipped);
	st->budget = guard_budget();
}

void __hak_hd_set_guard_budget(size_t n)
{
	arch_store_relaxed(&hd_guard_max, n ? n : 1);
}
