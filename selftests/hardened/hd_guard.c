// SPDX-License-Identifier: MIT
/*
 * hd_guard: with the hardened box, a linear overflow off the end of a
 * large block, or off the last block of a slab of a large class, runs into
 * a PROT_NONE guard page: the child that does it dies by SIGSEGV, and the
 * faulting address (caught by a handler that prints it and lets the fault
 * happen again with the default action) is the guard's first byte. The
 * guard is there for a fresh large block, a block BigCache hands out again
 * (whole, the head of a split, three merged neighbours), a cached block
 * purged by the decay, a cached block a miss grew down to a larger size, a
 * block grown by realloc (over a fresh mapping, by mremap) and shrunk, a
 * whole block (lib/large.c: grown past 2 MiB in a mapping of its own) grown
 * in steps inside its mapping and by mremap of it, taken again from a kept
 * mapping and shrunk, a
 * slab of 32 KiB and of 10 KiB blocks, a block grown by realloc in a
 * process that locked its future mappings (mlockall: the kernel refuses
 * markers there, the guard falls back to mprotect), and in a fork child of
 * the process that made it. A write up to the last usable byte does not fault. A few
 * thousand live large blocks all get their guard (checked page by page,
 * selftests/lib/guardpage.h), in one map entry each with mprotect, in
 * none with MADV_GUARD_INSTALL markers; past the guard budget, blocks come
 * without one and allocation goes on; freeing gives the guards back.
 * hd_fallback runs this program again with the markers refused (as an
 * older kernel does), so both ways of making a guard pass it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include "tap.h"
#include "child.h"
#include "guardpage.h"
#include "box.h"
#include "large.h"
#include "boxes/hardened/hardened.h"
#include "boxes/hardened/hd_internal.h"
#include "boxes/bigcache/bigcache.h"
#include "boxes/valgrind/valgrind_hooks.h"
#include "../lib/coarse_sleep.h"

#define PAGE	4096UL

static void *volatile sink;

static void *launder(void *p)
{
	__asm__ __volatile__("" : "+r"(p) :: "memory");
	return p;
}

/* Async-signal-safe: "fault 0x<hex>\n" on stderr. */
static void put_addr(const char *what, uintptr_t a)
{
	char buf[64];
	size_t n = strlen(what);
	int i;

	memcpy(buf, what, n);
	buf[n++] = ' ';
	buf[n++] = '0';
	buf[n++] = 'x';
	for (i = 60; i >= 0; i -= 4)
		buf[n++] = "0123456789abcdef"[(a >> i) & 15];
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, n) < 0)
		_exit(3);
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	put_addr("fault", (uintptr_t)si->si_addr);
	/* Return with the default action: the write faults again and kills. */
	signal(sig, SIG_DFL);
}

static void catch_segv(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
}

/* The guard page an overflow off p's end runs into (0: right after p). */
static uintptr_t guard_of;

/* Write byte by byte from p up to (and, when over, past) p + len. */
static void overflow_from(char *p, size_t len, int over)
{
	volatile char *v = p;
	size_t i, end = len + (over ? 2 * PAGE : 0);

	put_addr("expect", guard_of ? guard_of : (uintptr_t)p + len);
	for (i = 0; i < end; i++)
		v[i] = 'A';
}

struct job {
	char *p;		/* block made before the fork (or NULL) */
	size_t n;		/* else: malloc this much in the child */
	int over;
	int kind;
};

enum { K_PLAIN, K_REUSE, K_SPLIT, K_MERGE, K_GROW, K_REMAP, K_SHRINK, K_SLAB32, K_SLAB10,
       K_SHORTER, K_LOCKED, K_WHOLE, K_WHOLE_KEPT, K_WHOLE_SHRINK };

/*
 * Grow p (n bytes) to to bytes by realloc in 5% steps, writing each new
 * tail: past 2 MiB a whole block, grown inside its mapping (the guard
 * moved after it) and by mremap of the mapping.
 */
static char *grow_steps(char *p, size_t n, size_t to)
{
	while (p && n < to) {
		size_t m = n + n / 20 + 4096;

		if (m > to)
			m = to;
		p = launder(realloc(p, m));
		if (p)
			memset(p + n, 2, m - n);
		n = m;
	}
	return p;
}

/* A block of class n that is its slab's last one (ends at the guard). */
static char *last_of_slab(size_t n)
{
	unsigned c = __hak_class_of(n), i;

	for (i = 0; i < 256; i++) {
		char *p = malloc(n);
		struct hak_slab *s = __hak_slab_head(__hak_page_of((uintptr_t)p));

		/*
		 * Blocks end at the guard (the slab's slack is before them);
		 * with block headers within 4 KiB of it.
		 */
		guard_of = __hak_slab_end(s) - HAK_HD_GUARD_PAGE;
		if (guard_of - ((uintptr_t)p + __hak_class_size[c]) < PAGE)
			return p;
	}
	return NULL;
}

static void run(void *arg)
{
	const struct job *j = arg;
	char *p = j->p, *q;
	uintptr_t at;

	catch_segv();
	switch (j->kind) {
	case K_PLAIN:
		if (!p)
			p = malloc(j->n);
		break;
	case K_REUSE:
		p = launder(malloc(j->n));
		free(p);
		q = launder(malloc(j->n));
		if (q != p && hak_hd_on() && IS_ENABLED(CONFIG_HAK_BIGCACHE))
			put_addr("not-reused", (uintptr_t)q);
		p = q;
		break;
	case K_SPLIT:
		malloc_trim(0);
		p = launder(malloc(4u << 20));
		free(p);
		q = launder(malloc(j->n));
		if (q != p && IS_ENABLED(CONFIG_HAK_BIGCACHE))
			put_addr("not-split", (uintptr_t)q);
		p = q;
		break;
	case K_MERGE:
		/*
		 * Three neighbours (mappings usually are) freed into the cache
		 * merge over the guards between them; the merged range must
		 * still end at a guard and hold none inside (the twin writes
		 * all of it).
		 */
		malloc_trim(0);
		p = launder(malloc(j->n));
		q = launder(malloc(j->n));
		sink = launder(malloc(j->n));
		free(p);
		free(sink);
		free(q);
		p = launder(malloc(3 * j->n));
		break;
	case K_GROW:
		p = malloc(j->n);
		memset(p, 1, j->n);
		p = realloc(p, 3 * j->n);
		break;
	case K_REMAP:
		/* BigCache's own growth by mremap, not a whole block (K_WHOLE) */
		__hak_large_whole_min = SIZE_MAX;
		malloc_trim(0);
		p = malloc(8u << 20);
		p = realloc(p, 24u << 20);
		break;
	case K_SHRINK:
		p = malloc(8u << 20);
		p = realloc(p, 1u << 20);
		break;
	case K_SHORTER:
		/*
		 * A miss grows a shorter cached block down where the address
		 * space below it is free: its guard stays after it. (Else a
		 * fresh mapping, which must end at a guard too.)
		 */
		malloc_trim(0);
		p = launder(malloc(4u << 20));
		at = (uintptr_t)p;
		free(p);
		p = launder(malloc(6u << 20));
		if ((uintptr_t)p != at - (2u << 20))
			put_addr("fresh-mapping", (uintptr_t)p);
		break;
	case K_LOCKED:
		/*
		 * Mappings locked from now on: the kernel refuses markers in
		 * them (EINVAL), the guard falls back to mprotect, and a
		 * growth must open it again (remove and mprotect both). A
		 * guard made first, so the probe ran before the lock.
		 */
		free(launder(malloc(2 * j->n)));
		malloc_trim(0);
		if (mlockall(MCL_FUTURE))
			_exit(6);
		p = malloc(j->n);
		memset(p, 1, j->n);
		p = realloc(p, 3 * j->n);
		break;
	case K_WHOLE:
		p = grow_steps(malloc(1u << 20), 1u << 20, 12u << 20);
		break;
	case K_WHOLE_KEPT: {
		struct hak_large_stats st0, st;

		/* the kept mapping's guard, at 16 MiB, moves after the new block */
		free(grow_steps(malloc(1u << 20), 1u << 20, 16u << 20));
		__hak_large_stats(&st0);
		p = grow_steps(malloc(1u << 20), 1u << 20, 3u << 20);
		__hak_large_stats(&st);
		if (st.whole_takes != st0.whole_takes + 1)
			put_addr("not-kept", st.whole_takes - st0.whole_takes);
		break;
	}
	case K_WHOLE_SHRINK:
		p = grow_steps(malloc(1u << 20), 1u << 20, 8u << 20);
		p = realloc(p, 3u << 20);
		break;
	case K_SLAB32:
		p = last_of_slab(32768);
		break;
	case K_SLAB10:
		p = last_of_slab(10240);
		break;
	}
	if (!p)
		_exit(5);
	overflow_from(p, malloc_usable_size(p), j->over);
}

static uintptr_t addr_after(const char *err, const char *what)
{
	const char *s = strstr(err, what);

	return s ? (uintptr_t)strtoull(s + strlen(what) + 1, NULL, 16) : 0;
}

static void check(struct job *j, const char *name)
{
	struct child_result r;
	uintptr_t want, got;

	j->over = 1;
	child_run(run, j, &r);
	want = addr_after(r.err, "expect");
	got = addr_after(r.err, "fault");
	tap_ok(r.status != -1 && WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSEGV &&
	       want && got == want && !strstr(r.err, "not-"),
	       "%s: overflow faults at the guard page (%#lx)", name, (unsigned long)got);
	if (got != want || !want || strstr(r.err, "not-"))
		tap_diag("status %#x, stderr: %s", r.status, r.err);
	j->over = 0;
	child_run(run, j, &r);
	tap_ok(child_exited_ok(&r) && !strstr(r.err, "fault"),
	       "%s: writing up to the usable size does not fault", name);
}

/* Lines in /proc/self/maps: mappings. */
static size_t map_lines(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	size_t n = 0;
	int c;

	while (f && (c = fgetc(f)) != EOF)
		n += c == '\n';
	if (f)
		fclose(f);
	return n;
}

#define MANY	3000

static void test_many(void)
{
	static char *v[MANY];
	struct hak_hd_guard_stats st0, st;
	size_t i, have = 0, maps0, maps1;

	__hak_hd_guard_stats(&st0);
	maps0 = map_lines();
	for (i = 0; i < MANY; i++)
		v[i] = malloc(i % 2 ? 300000 + (i % 41) * 4096 : 40000 + (i % 41) * 4096);
	maps1 = map_lines();
	__hak_hd_guard_stats(&st);
	for (i = 0; i < MANY; i++)
		have += v[i] && page_is_guard((uintptr_t)v[i] + malloc_usable_size(v[i]));
	tap_ok(have == MANY && st.skipped == st0.skipped,
	       "%d live mid and large blocks: %zu with a guard page, %zu guards live "
	       "(budget %zu)", MANY, have, st.live, st.budget);
	/*
	 * mprotect: a block and its guard are two mappings (no merging with
	 * neighbours); markers split nothing (the L2.5 regions are 2 MiB
	 * mappings, large blocks merge with their neighbours or not).
	 */
	if (st.markers)
		tap_ok(maps1 - maps0 < MANY / 2, "markers: %zu map entries added for %d blocks",
		       maps1 - maps0, MANY);
	else
		tap_ok(maps1 - maps0 >= MANY, "mprotect: %zu map entries added for %d blocks",
		       maps1 - maps0, MANY);
	for (i = 0; i < MANY; i++)
		free(v[i]);
	malloc_trim(0);
	__hak_hd_guard_stats(&st);
	/* every block's guard is gone; a slab of read_maps' array may stay */
	tap_ok(st.live <= st0.live + 2, "freed and trimmed: %zu guards live (%zu before)",
	       st.live, st0.live);

	/* Past the budget: blocks come without a guard, nothing fails. */
	__hak_hd_set_guard_budget(st.live + 10);
	__hak_hd_guard_stats(&st0);
	have = 0;
	for (i = 0; i < 50; i++) {
		v[i] = malloc(100000);
		if (v[i])
			memset(v[i], 7, 100000);
		have += v[i] != NULL;
	}
	__hak_hd_guard_stats(&st);
	tap_ok(have == 50 && st.live == st0.live + 10 && st.skipped >= st0.skipped + 40,
	       "past the budget: 50 blocks made, %zu with a guard, %zu without",
	       st.live - st0.live, st.skipped - st0.skipped);
	for (i = 0; i < 50; i++)
		free(v[i]);
	malloc_trim(0);
	__hak_hd_set_guard_budget(0);
}

/*
 * How guards are made: page-table markers where the kernel takes
 * MADV_GUARD_INSTALL (and not under valgrind), else mprotect; the runner
 * of the fallback (hd_fallback) says which it forced.
 */
static void test_mechanism(void)
{
	struct hak_hd_guard_stats st;
	const char *want = getenv("HAKMEM_TEST_EXPECT_GUARDS");
	int markers = kernel_guard_markers() && !hak_vg_running();

	if (want)
		markers = !strcmp(want, "markers");
	free(malloc(1000000));
	__hak_hd_guard_stats(&st);
	tap_ok(st.markers == markers, "guards made by %s (expected %s)",
	       st.markers ? "MADV_GUARD_INSTALL markers" : "mprotect",
	       markers ? "markers" : "mprotect");
}

/* The cases main runs in turn (the sizes above the L2.5 pool's 1 MiB are large blocks). */
static const struct {
	int kind;
	size_t n;
	const char *what;
	bool kept;	/* needs a kept whole mapping: BigCache's bound sizes them */
} cases[] = {
	{ K_PLAIN, 40000, "fresh 40000 B block (L2.5 pool when on)", false },
	{ K_PLAIN, 200000, "fresh 200000 B block (L2.5 pool when on)", false },
	{ K_PLAIN, 1000000, "fresh 1000000 B block (a mapping)", false },
	{ K_REUSE, 1200000, "block reused from BigCache", false },
	{ K_SPLIT, 1200000, "head of a split cached block", false },
	{ K_MERGE, 1u << 20, "three neighbours merged in BigCache, taken whole", false },
	{ K_GROW, 100000, "realloc growth", false },
	{ K_REMAP, 100000, "realloc growth by mremap (8 -> 24 MiB)", false },
	{ K_SHRINK, 100000, "realloc shrink (8 -> 1 MiB)", false },
	{ K_SHORTER, 100000, "a cached 4 MiB block grown down to 6 MiB", false },
	{ K_WHOLE, 100000, "a whole block grown in 5% steps to 12 MiB", false },
	{ K_WHOLE_KEPT, 100000, "a whole block grown over a kept 16 MiB mapping", true },
	{ K_WHOLE_SHRINK, 100000, "a whole block shrunk (8 -> 3 MiB)", false },
	{ K_SLAB32, 100000, "last 32 KiB block of a slab", false },
	{ K_SLAB10, 100000, "last 10 KiB block of a slab", false },
};

int main(void)
{
	struct job j;
	size_t i;
	char *p;

	tap_plan(0);
	memset(&j, 0, sizeof(j));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].kept && !IS_ENABLED(CONFIG_HAK_BIGCACHE)) {
			tap_skip("%s: no mapping is kept without BigCache", cases[i].what);
			tap_skip("%s: (skipped)", cases[i].what);
			continue;
		}
		j.kind = cases[i].kind;
		j.n = cases[i].n;
		check(&j, cases[i].what);
	}

	{
		struct rlimit rl;

		if (geteuid() == 0 || (!getrlimit(RLIMIT_MEMLOCK, &rl) && rl.rlim_cur >= (64u << 20))) {
			j.kind = K_LOCKED;
			j.n = 1200000;
			check(&j, "mlockall(MCL_FUTURE), a block grown by realloc");
		} else {
			tap_skip("mlockall: RLIMIT_MEMLOCK under 64 MiB");
			tap_skip("mlockall: RLIMIT_MEMLOCK under 64 MiB");
		}
	}

	/* Made here, overflowed in the fork child. */
	j.kind = K_PLAIN;
	j.p = p = malloc(500000);
	check(&j, "block made before fork, overflowed in the child");
	j.p = NULL;
	free(p);

	/* Purged while cached (decay), then handed out again. */
	if (IS_ENABLED(CONFIG_HAK_BIGCACHE)) {
		struct hak_bigcache_stats bs0, bs;
		char *q;

		malloc_trim(0);
		p = launder(malloc(600000));
		memset(p, 3, 600000);
		hak_bigcache_stats(&bs0);
		free(p);
		/*
		 * Past the delay and past the time BigCache counts itself in
		 * use after the last take (at most 3 delays): a block the
		 * program could still want is kept resident until then.
		 */
		tst_sleep_ms(3 * CONFIG_HAK_PURGE_DELAY_MS + 100);
		/* the decay pass itself: no allocation that could take or merge p */
		(void)__hak_purge_decay(__hak_now_ms());
		hak_bigcache_stats(&bs);
		q = launder(malloc(600000));
		tap_ok(q == p && bs.purges > bs0.purges, "cached block purged by the decay (%zu "
		       "purges) and handed out again", bs.purges - bs0.purges);
		j.p = q;
		check(&j, "block purged while cached");
		j.p = NULL;
		free(q);
	} else {
		tap_skip("purged cached block: CONFIG_HAK_BIGCACHE is off");
	}

	test_many();
	test_mechanism();
	(void)sink;
	tap_finish();
}
