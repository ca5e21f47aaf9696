// SPDX-License-Identifier: MIT
/*
 * grow_area: large blocks that realloc grows live in per-thread grow areas
 * (lib/grow.c). A block that grows past the L2.5 pool (256 KiB) takes a
 * slot of the thread's area and grows in it to the slot's length (1 MiB)
 * without moving and
 * without a new mapping; its contents survive every step, and past the
 * slot it moves out. A freed slot (from any thread) is reused with its
 * pages, and the tail past a smaller block that reused it is purged once
 * the block has been there for the delay; an exited thread's area goes to
 * the next thread; the slots' pages
 * count as mapped (the memory limit refuses a growth past a hard limit,
 * the block intact; fault injection reaches the commit); malloc_trim and
 * the decay purge free slots (not resident after, no longer counted), and
 * trim gives back an area no thread owns and no block uses; a
 * fork child frees the parent's blocks and grows its own. Without areas
 * (mprotect guard pages, valgrind, HAKMEM_GROW_AREA=0) the same growth
 * takes no slot. With guard pages as page-table markers (hardened, Linux
 * 6.13 on) the page right after a slot's block is a guard wherever the
 * block is: taken, grown in place (to the whole slot), a slot taken again
 * by a shorter block, after the decay purged the slot (main_guarded); a
 * take in a resident slot purges the pages of its later guards, and the
 * same pages of the other free resident slots, beforehand (one TLB flush
 * for the pages, none for the guards later; check_prezap).
 */
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "core_test.h"
#include "child.h"
#include "grow.h"
#include "init.h"
#include "large.h"
#include "os.h"
#include "boxes/hardened/hardened.h"
#include "boxes/valgrind/valgrind_hooks.h"
#include "../lib/coarse_sleep.h"

#define KIB	((size_t)1 << 10)
#define MIB	((size_t)1 << 20)
#define SLOT	HAK_GROW_SLOT

static struct hak_grow_stats gs(void)
{
	struct hak_grow_stats s;

	__hak_grow_stats(&s);
	return s;
}

static unsigned char pat(size_t i)
{
	return (unsigned char)(i * 131u ^ (i >> 9));
}

static void fill(unsigned char *p, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		p[i] = pat(i);
}

static int intact(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != pat(i))
			return 0;
	return 1;
}

/*
 * A block grown from 16 KiB to n (at least 260 KiB) bytes by realloc,
 * filled; NULL on failure. The first step goes straight past 256 KiB, so
 * the block reaches the area also without the L2.5 pool (whose absence
 * makes every block above 32 KiB a large block from its malloc on, which
 * then grows the usual way).
 */
static unsigned char *chain(size_t n)
{
	unsigned char *p = malloc(16 * KIB), *q;
	size_t sz = 16 * KIB;

	if (!p)
		return NULL;
	fill(p, 0, sz);
	while (sz < n) {
		size_t to = sz == 16 * KIB ? 260 * KIB : sz + 64 * KIB < n ? sz + 64 * KIB : n;

		q = realloc(p, to);
		if (!q) {
			free(p);
			return NULL;
		}
		p = q;
		fill(p, sz, to);
		sz = to;
	}
	return p;
}

/* Resident pages of [p, p + len) (mincore). */
static size_t resident(void *p, size_t len)
{
	static unsigned char vec[SLOT / 4096];
	size_t n = len / 4096, r = 0;

	if (mincore(p, len, vec))
		return (size_t)-1;
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

static void *free_it(void *p)
{
	free(p);
	return NULL;
}

static void *make_and_exit(void *arg)
{
	*(unsigned char **)arg = chain(400 * KIB);
	return NULL;
}

/* Guard checks (hardened): a child writes p[0..off) then p[off]. */
struct poke {
	unsigned char *p;
	size_t off;
};

static void poke_run(void *arg)
{
	const struct poke *k = arg;
	volatile unsigned char *v = k->p;

	for (size_t i = 0; i < k->off; i++)
		v[i] = 1;
	if (write(STDERR_FILENO, "wrote\n", 6) != 6)
		_exit(3);
	v[k->off] = 1;
	_exit(0);
}

/* Writing up to p + off is fine and the byte at p + off faults. */
static int guard_at(unsigned char *p, size_t off)
{
	struct poke k = { p, off };
	struct child_result r;

	child_run(poke_run, &k, &r);
	return r.status != -1 && WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSEGV &&
	       strstr(r.err, "wrote") != NULL;
}

/*
 * Grow *pp (a block of 300 KiB) to the slot's end in steps of 4 KiB and a
 * bit, filling each new part; the size reached. *moved gets 1 when a step
 * moved the block and, with guards, 2 when a step's usable size did not
 * end at a guard page.
 */
static size_t grow_to_slot(unsigned char **pp, int *moved, bool guards)
{
	unsigned char *p = *pp, *q;
	size_t sz, u = malloc_usable_size(p);

	*moved = 0;
	for (sz = 300 * KIB; p && sz < SLOT; ) {
		size_t to = sz + 4 * KIB + 123 < SLOT ? sz + 4 * KIB + 123 : SLOT;

		q = realloc(p, to);
		if (!q)
			break;
		*moved |= q != p;
		p = q;
		fill(p, sz, to);
		sz = to;
		if (guards && malloc_usable_size(p) != u && !guard_at(p, malloc_usable_size(p)))
			*moved |= 2;
		u = malloc_usable_size(p);
	}
	*pp = p;
	return sz;
}

/* Two slots, each left free and resident to its end by a block of the whole slot. */
static void slots_dirtied(unsigned char **s1, unsigned char **s2)
{
	unsigned char *b[2], *c;
	int k;

	for (k = 0; k < 2; k++) {
		b[k] = chain(300 * KIB);
		if (b[k])
			b[k] = realloc(b[k], SLOT);
		if (b[k])
			fill(b[k], 0, SLOT);
	}
	*s1 = ct_launder(b[0]);
	*s2 = ct_launder(b[1]);
	for (k = 0; k < 2; k++) {
		c = b[k] ? realloc(b[k], SLOT + 1) : NULL;	/* moves out */
		free(c ? c : b[k]);
	}
}

/* Pages of the guards of a block taken at u in slot (u, then 2u - 4 KiB ...) still resident. */
static size_t ladder_resident(unsigned char *slot, size_t u, size_t *n)
{
	size_t at, bad = 0;

	*n = 0;
	for (at = u; at < SLOT; at = 2 * at - 4096, (*n)++)
		bad += resident(slot + at, 4096) != 0;
	return bad;
}

/*
 * A take in a slot resident to its end purges the pages where the new
 * block's guard will go as it grows (twice the old length less a page at
 * each resize), and the same pages of the other free resident slots, in
 * one batch: the guards made there later free no resident page (no TLB
 * flush); the slots' other pages stay resident. The next take of that
 * length picks a slot so purged.
 */
static void check_prezap(void)
{
	unsigned char *a, *c, *d, *s1, *s2, *other;
	size_t u, n, m, bad, bad2;

	a = chain(300 * KIB);		/* holds the slot used so far */
	slots_dirtied(&s1, &s2);
	c = chain(260 * KIB);		/* the take's length: no resize yet */
	u = malloc_usable_size(c);
	other = c == s1 ? s2 : s1;
	bad = ladder_resident(c, 2 * u - 4096, &n);
	bad2 = ladder_resident(other, u, &m);
	tap_ok(s1 != s2 && (c == s1 || c == s2) && n > 0 && !bad && resident(c + u + 4096, 4096) == 1 &&
	       resident(c + SLOT - 4096, 4096) == 1,
	       "a take in a resident slot purged the %zu pages of its later guards (%zu still resident), kept the rest",
	       n, bad);
	tap_ok(m > 1 && !bad2 && resident(other + u + 4096, 4096) == 1,
	       "and the same %zu pages of another free resident slot (%zu still resident), kept the rest",
	       m, bad2);
	d = chain(260 * KIB);
	tap_ok(d == other && guard_at(d, malloc_usable_size(d)),
	       "the next take of that length takes that slot, its guard right after it");
	free(d);
	free(c);
	free(a);
}

/*
 * Hardened with page-table markers: areas in use, each block followed by
 * its guard page.
 */
static void main_guarded(void)
{
	struct hak_grow_stats s0, s1;
	unsigned char *p, *q, *slot;
	size_t sz, u;
	int moved;

	tap_plan(12);
	__hak_opt.purge_delay_ms = 60000;

	s0 = gs();
	p = chain(300 * KIB);
	s1 = gs();
	u = malloc_usable_size(p);
	tap_ok(p && intact(p, 300 * KIB) && s1.takes == s0.takes + 1 && s1.live == 1,
	       "guard pages: a block grown past 256 KiB takes a slot of the thread's area");
	tap_ok(u >= 300 * KIB && guard_at(p, u),
	       "its guard page is right after its usable size (%zu KiB)", u / KIB);
	slot = ct_launder(p);
	sz = grow_to_slot(&p, &moved, true);
	tap_ok(sz == SLOT && !moved && p == slot && intact(p, sz),
	       "it grows in place to the whole slot, contents kept, the guard after it at every size (%d)",
	       moved);
	tap_ok(malloc_usable_size(p) == SLOT && guard_at(p, SLOT),
	       "a block of the whole slot ends at its guard too");
	q = realloc(p, SLOT + 1);
	tap_ok(q && q != slot && intact(q, SLOT) && gs().live == 0,
	       "past the slot it moves out, contents kept, the slot free");
	free(q);

	p = chain(300 * KIB);
	u = malloc_usable_size(p);
	tap_ok(p == slot && intact(p, 300 * KIB) && guard_at(p, u),
	       "a shorter block takes the slot again, its guard right after it (%zu KiB)",
	       u / KIB);
	free(p);
	tst_sleep_ms(30);
	tap_ok(__hak_grow_decay(__hak_now_ms(), 20) > 0, "the decay purges the free slot");
	p = chain(300 * KIB);
	u = malloc_usable_size(p);
	tap_ok(p == slot && intact(p, 300 * KIB) && guard_at(p, u),
	       "after the purge the slot's next block still ends at a guard (%zu KiB)", u / KIB);
	free(p);
	check_prezap();
	malloc_trim(0);
	s1 = gs();
	tap_ok(s1.live == 0 && s1.committed == 0, "all freed and trimmed: no slot live or counted");
	tap_finish();
}

int main(void)
{
	struct hak_grow_stats s0, s1;
	struct hak_large_stats l0, l1;
	unsigned char *p, *q, *slot;
	size_t sz, m0, lim, u;
	int moved, ok;
	pthread_t t;

	if (hak_hd_guard_len() && !hak_vg_running() && !__hak_os_guard_splits())
		main_guarded();
	if (hak_hd_guard_len() || hak_vg_running()) {
		tap_plan(1);
		s0 = gs();
		p = chain(600 * KIB);
		s1 = gs();
		tap_ok(p && intact(p, 600 * KIB) && s1.takes == s0.takes && !s1.areas,
		       "mprotect guard pages or valgrind: no grow area, the block grew the usual way");
		free(p);
		tap_finish();
	}
	tap_plan(22);
	/*
	 * Only the explicit decay calls below purge: a loaded machine that
	 * stalls the test past the 250 ms default would let an allocation's
	 * tick purge a slot a check expects resident.
	 */
	__hak_opt.purge_delay_ms = 60000;

	/* 1-3: into a slot past the pool, then in place to the slot's end */
	s0 = gs();
	__hak_large_stats(&l0);
	p = chain(300 * KIB);
	s1 = gs();
	tap_ok(p && intact(p, 300 * KIB) && s1.takes == s0.takes + 1 && s1.live == 1 &&
	       s1.areas == 1, "a block grown past 256 KiB takes a slot of the thread's area");
	slot = ct_launder(p);
	sz = grow_to_slot(&p, &moved, false);
	__hak_large_stats(&l1);
	tap_ok(sz == SLOT && !moved && p == slot && l1.maps == l0.maps &&
	       l1.moves == l0.moves, "it grows in place to the slot's %zu KiB in 4 KiB steps, no mapping made",
	       SLOT >> 10);
	tap_ok(intact(p, sz), "its contents survive every step");

	/* 4: past the slot it moves out, contents kept, slot freed */
	q = realloc(p, SLOT + 1);
	s1 = gs();
	tap_ok(q && q != slot && intact(q, SLOT) && s1.live == 0 &&
	       malloc_usable_size(q) >= SLOT + SLOT / 2,
	       "past the slot it moves out with half again its length, contents kept, the slot free");
	free(q);

	/* 5: the freed slot is taken again with its pages (no new commit) */
	s0 = gs();
	p = chain(300 * KIB);
	s1 = gs();
	tap_ok(p == slot && s1.committed == s0.committed && resident(slot, 300 * KIB) == 75,
	       "the next block takes the same slot, its pages resident, nothing counted anew");

	/*
	 * 5b: the slot's tail past that smaller block (the 1 MiB the last
	 * block reached) is purged once the block has been there for the
	 * delay; the block's own pages (its usable length) stay.
	 */
	u = malloc_usable_size(p);
	s0 = gs();
	tap_ok(u >= 300 * KIB && u <= SLOT - SLOT / 8 &&
	       __hak_grow_decay(__hak_now_ms(), 60000) == 0 &&
	       resident(slot + u, SLOT - u) == (SLOT - u) / 4096,
	       "decay leaves the tail past a block taken less than the delay ago (block %zu KiB)",
	       u / KIB);
	tst_sleep_ms(30);
	tap_ok(__hak_grow_decay(__hak_now_ms(), 20) >= SLOT - u &&
	       resident(slot + u, SLOT - u) == 0 && resident(slot, u) == u / 4096 &&
	       intact(p, 300 * KIB) && gs().committed <= s0.committed - (SLOT - u),
	       "and purges it once the block is older, the block's pages and contents kept");
	q = realloc(p, 600 * KIB);
	tap_ok(q == p && intact(q, 300 * KIB), "the block grows into the purged tail in place");
	fill(q, 300 * KIB, 600 * KIB);
	p = q;

	/* 6: a free from another thread releases the slot */
	ok = pthread_create(&t, NULL, free_it, p) == 0 && pthread_join(t, NULL) == 0;
	s1 = gs();
	tap_ok(ok && s1.live == 0, "another thread's free releases the slot");

	/* 7: an exited thread's area goes to the next thread */
	ok = pthread_create(&t, NULL, make_and_exit, &q) == 0 && pthread_join(t, NULL) == 0;
	s0 = gs();
	tap_ok(ok && q && intact(q, 400 * KIB) && s0.areas == 2 && s0.live == 1,
	       "a second thread gets an area of its own");
	ok = pthread_create(&t, NULL, make_and_exit, &p) == 0 && pthread_join(t, NULL) == 0;
	s1 = gs();
	tap_ok(ok && p && intact(p, 400 * KIB) && s1.areas == 2 && s1.live == 2 && p != q,
	       "a third thread after it exited takes its area (still 2 areas), beside its live block");
	free(p);
	free(q);

	/* 8-9: trim purges free slots: not resident, no longer counted */
	p = chain(700 * KIB);
	q = chain(900 * KIB);
	slot = ct_launder(q);
	free(q);
	m0 = __hak_os_mapped();
	s0 = gs();
	malloc_trim(0);
	s1 = gs();
	tap_ok(resident(slot, 900 * KIB) == 0 && s1.committed <= s0.committed - 900 * KIB &&
	       __hak_os_mapped() <= m0 - 900 * KIB,
	       "malloc_trim purges a free slot (%zu -> %zu bytes committed)", s0.committed,
	       s1.committed);
	tap_ok(intact(p, 700 * KIB) && resident(p, 700 * KIB) == 175,
	       "and leaves a live slot's pages alone");
	tap_ok(s0.areas == 2 && s1.areas == 1,
	       "and gives back the area of the exited threads, now unused (areas %zu -> %zu)",
	       s0.areas, s1.areas);

	/* 10-11: decay purges a free slot once it is older than the delay */
	q = chain(SLOT / 2);
	slot = ct_launder(q);
	free(q);
	tap_ok(__hak_grow_decay(__hak_now_ms(), 60000) == 0 && resident(slot, SLOT / 2) > 0,
	       "decay leaves a slot freed less than the delay ago");
	tst_sleep_ms(30);
	tap_ok(__hak_grow_decay(__hak_now_ms(), 20) >= SLOT / 2 && resident(slot, SLOT / 2) == 0,
	       "and purges it once it is older");

	/* 12-13: a hard memory limit refuses a growth past the slot's pages */
	free(p);
	malloc_trim(0);
	p = chain(300 * KIB);
	malloc_trim(0);		/* the pool's region the chain left: nothing to purge */
	lim = __hak_os_limit();
	__hak_os_set_limit(__hak_os_mapped() + 64 * KIB, true);
	errno = 0;
	q = ct_realloc(p, SLOT - 4 * KIB);
	tap_ok(p && !q && errno == ENOMEM && intact(p, 300 * KIB),
	       "past a hard limit the growth fails with ENOMEM, the block intact");
	__hak_os_set_limit(lim, false);
	q = realloc(p, SLOT - 4 * KIB);
	tap_ok(q == p && intact(q, 300 * KIB), "with the limit lifted it grows in place");
	free(q);

	/* 14: fault injection reaches the slot's commit */
	malloc_trim(0);
	p = chain(300 * KIB);
	sz = malloc_usable_size(p);
	if (IS_ENABLED(CONFIG_HAK_FAULT_INJECT) && sz + sz / 2 <= SLOT) {
		unsigned long f0 = hak_test_os_failed(HAK_OS_MAP);

		hak_test_os_fail(HAK_OS_MAP, 0, 1);
		q = realloc(p, sz + 4 * KIB);
		tap_ok(q == p && hak_test_os_failed(HAK_OS_MAP) == f0 + 1 && intact(q, 300 * KIB),
		       "an injected failure of the commit: realloc tries the exact size, in place");
		p = q;
	} else {
		tap_skip("fault injection not built");
	}

	/* 15: a fork child frees the parent's block and grows its own */
	fflush(stdout);
	{
		pid_t pid = fork();
		int st = 0;

		if (pid == 0) {
			unsigned char *c;

			free(p);
			c = chain(SLOT * 3 / 4);
			_exit(c && intact(c, SLOT * 3 / 4) && gs().live == 1 ? 0 : 1);
		}
		tap_ok(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		       WEXITSTATUS(st) == 0, "a fork child frees the parent's block and grows its own");
	}
	free(p);

	/* 16: HAKMEM_GROW_AREA=0 */
	__hak_opt.grow_area = 0;
	s0 = gs();
	p = chain(600 * KIB);
	s1 = gs();
	tap_ok(p && intact(p, 600 * KIB) && s1.takes == s0.takes && s1.live == 0,
	       "with the areas off the block grows the usual way");
	free(p);
	__hak_opt.grow_area = 1;

	/* 17: everything freed and trimmed: nothing left counted */
	malloc_trim(0);
	s1 = gs();
	tap_ok(s1.live == 0 && s1.committed == 0, "all freed and trimmed: no slot live or counted");
	tap_finish();
}
