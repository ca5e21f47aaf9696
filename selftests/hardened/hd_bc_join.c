// SPDX-License-Identifier: MIT
/*
 * hd_bc_join: with the hardened box, a take that joins cached neighbouring
 * large blocks (BigCache) makes the guard pages between them read-write
 * after BigCache's lock is dropped, with one call for all of them (before
 * 2026-12-02, one call per guard under the lock, which every other
 * thread's malloc and free of a large block then waited for). Checked
 * through a test hook that runs just before that call: it is called once
 * per join, with the lock free, and the guards are still there; afterwards
 * the block handed out holds no guard and is followed by one (checked page
 * by page, selftests/lib/guardpage.h), whether it is the whole joined run
 * or the head of a split of it, whose tail stays cached and is handed out
 * later with its own guard after it; the count of live guards is what the
 * join and the split leave. hd_fallback runs it again with mprotect
 * guards (one mprotect over several cached mappings).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include "tap.h"
#include "guardpage.h"
#include "box.h"
#include "boxes/hardened/hardened.h"
#include "boxes/hardened/hd_internal.h"
#ifdef CONFIG_HAK_BIGCACHE
#include "boxes/bigcache/bc_internal.h"

#define PAGE	4096UL
#define N	1200000UL	/* above the L2.5 pool's largest maximum (1 MiB) */

static struct {
	unsigned calls, held;
	size_t n, inside;
	uintptr_t from, len;
} hook;

static void join_hook(void *from, size_t len, size_t n)
{
	uintptr_t first;

	hook.calls++;
	hook.held += __hak_bigcache_lock_held();
	hook.n = n;
	hook.from = (uintptr_t)from;
	hook.len = len;
	hook.inside = guards_in((uintptr_t)from, (uintptr_t)from + len, &first);
}

static size_t live_guards(void)
{
	struct hak_hd_guard_stats st;

	__hak_hd_guard_stats(&st);
	return st.live;
}

/* Guards in [p, p + usable size), and whether the page after is one. */
static size_t guards_within(void *p, int *after)
{
	uintptr_t a = (uintptr_t)p, end = a + malloc_usable_size(p), first;

	*after = page_is_guard(end);
	return guards_in(a, end, &first);
}

/*
 * Three neighbouring large blocks (fresh mappings usually are; the first
 * one of a process may land elsewhere), freed into BigCache; *lo: the
 * lowest. The other blocks made to find them stay live (in keep[], freed
 * by the caller), so no cached block adjoins the three. False when no
 * three were neighbours.
 */
#define TRY	6
static void *keep[TRY];

static int three_cached(uintptr_t *lo, size_t *len)
{
	uintptr_t a[TRY], t;
	int i, j;

	malloc_trim(0);
	for (i = 0; i < TRY; i++) {
		keep[i] = malloc(N);
		a[i] = (uintptr_t)keep[i];
	}
	*len = malloc_usable_size(keep[0]);
	for (i = 0; i < TRY; i++)
		for (j = i + 1; j < TRY; j++)
			if (a[j] < a[i]) {
				t = a[i];
				a[i] = a[j];
				a[j] = t;
			}
	for (i = 0; i + 2 < TRY; i++)
		if (a[i + 1] == a[i] + *len + PAGE && a[i + 2] == a[i + 1] + *len + PAGE)
			break;
	if (i + 2 >= TRY)
		return 0;
	*lo = a[i];
	for (j = 0; j < TRY; j++)
		if ((uintptr_t)keep[j] >= a[i] && (uintptr_t)keep[j] <= a[i + 2]) {
			free(keep[j]);
			keep[j] = NULL;
		}
	return 1;
}

static void free_kept(void)
{
	int i;

	for (i = 0; i < TRY; i++) {
		free(keep[i]);
		keep[i] = NULL;
	}
}

int main(void)
{
	size_t len, live0, in;
	uintptr_t lo, want;
	int after;
	char *p, *q;

	tap_plan(0);
	if (!hak_hd_guard_len())
		tap_skip_all("no guard pages in this build");
	__hak_bigcache_set_decay(0);
	__hak_bigcache_set_join_hook(join_hook);

	/* The whole run of three: two guards between, joined. */
	if (!three_cached(&lo, &len))
		tap_skip_all("three fresh large blocks are not neighbours here");
	live0 = live_guards();
	memset(&hook, 0, sizeof(hook));
	p = malloc(3 * len + 2 * PAGE);
	tap_ok((uintptr_t)p == lo, "three cached neighbours joined and handed out whole");
	tap_ok(hook.calls == 1 && hook.n == 2 && hook.from == lo + len &&
	       hook.len == len + 2 * PAGE,
	       "one deferred removal of the 2 guards between them (%u calls, n %zu)",
	       hook.calls, hook.n);
	tap_ok(hook.calls == 1 && hook.held == 0, "made after BigCache's lock was dropped");
	tap_ok(hook.inside == 2, "the guards were still there then (%zu)", hook.inside);
	in = guards_within(p, &after);
	tap_ok(in == 0 && after, "the joined block holds no guard (%zu) and ends at one", in);
	tap_ok(live_guards() == live0 - 2, "live guards %zu, were %zu: the 2 inner ones gone",
	       live_guards(), live0);
	memset(p, 1, malloc_usable_size(p));
	tap_ok(1, "every byte of the joined block written");
	free(p);
	free_kept();

	/*
	 * The head of a join of two, split: the head's guard is made in the
	 * second block; the second block's tail stays cached with its guard.
	 */
	if (!three_cached(&lo, &len))
		tap_skip_all("three fresh large blocks are not neighbours here");
	live0 = live_guards();
	memset(&hook, 0, sizeof(hook));
	want = len + PAGE + (256UL << 10);
	p = malloc(want);
	tap_ok((uintptr_t)p == lo && malloc_usable_size(p) == want,
	       "two cached neighbours joined, the head of %zu bytes handed out", (size_t)want);
	tap_ok(hook.calls == 1 && hook.n == 1 && hook.held == 0 && hook.inside == 1,
	       "one deferred removal of the guard between them, lock free");
	in = guards_within(p, &after);
	tap_ok(in == 0 && after, "the head holds no guard (%zu) and ends at one", in);
	tap_ok(live_guards() == live0, "live guards %zu, were %zu: one gone, the head's made",
	       live_guards(), live0);
	memset(p, 2, malloc_usable_size(p));
	q = malloc(len - (256UL << 10) - PAGE);
	tap_ok((uintptr_t)q == lo + want + PAGE,
	       "the split's tail, right after the head's guard, handed out next");
	in = guards_within(q, &after);
	tap_ok(q && in == 0 && after, "the tail holds no guard (%zu) and ends at one", in);
	memset(q, 3, malloc_usable_size(q));
	free(q);
	free(p);
	free_kept();
	__hak_bigcache_set_join_hook(NULL);
	tap_finish();
}
#else
int main(void)
{
	tap_plan(0);
	tap_skip_all("BigCache is off in this build");
}
#endif
