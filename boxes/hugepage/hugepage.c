// SPDX-License-Identifier: MIT
/*
 * Hugepage box (Documentation/boxes/hugepage.md): transparent hugepage
 * advice for superslabs.
 *
 * Policy, per superslab (state in ss->huge, under ss_lock):
 *   - any superslab that has had at least HUGE_DENSE of its 32 pages in
 *     slabs for a purge delay, with nothing purged in it meanwhile, is
 *     advised (MADV_HUGEPAGE) by the decay pass: khugepaged, or
 *     MADV_COLLAPSE below, may make it huge. Its pages were faulted in as
 *     4 KiB ones, so this costs nothing until then. The allocation path
 *     only notes the time it turned dense (HAK_HUGE_PEND, the pend list):
 *     advice there took the mm's locks for writing under ss_lock while
 *     other threads faulted (idle-rss's burst lost 10% to about 130
 *     advised and withdrawn superslabs, all freed within 60 ms), and a
 *     burst freed within the delay now gets no advice and no withdrawal.
 *     A pending superslab is purged as one with no advice (decayed
 *     pages, the dirty limit, a heap's holes), and such a purge cancels
 *     the advice to come as it would withdraw advice given (HAK_HUGE_COLD).
 *     It becomes a candidate (cand[], with the time it turned dense);
 *   - a new superslab is advised before its first touch (its header write
 *     then faults the whole 2 MiB in as one zeroed page) only once the
 *     heap has earned it: the process has HUGE_MIN_SS superslabs, and
 *     HUGE_MIN_SS candidates have stayed dense and advised for
 *     HUGE_PROVE_X times the purge delay (500 ms at the default 250), and
 *     fewer than one advice per HUGE_CHURN of them was withdrawn in the
 *     last one or two proof times. A burst that is freed again soon
 *     after (a 2 MiB page zeroed whole, then split by the purge of its
 *     holes) or a churning heap never earns it and keeps 4 KiB faults; a heap that fills and stays
 *     (large working sets) earns it about half a second into its fill.
 *     Withdrawals (below) past that share take it away again. A
 *     superslab advised at map time is a candidate too once it turns
 *     dense (at most half of cand[]; it is never collapsed: its pages
 *     are 2 MiB ones already), so the grant rests on the whole heap
 *     that stays, not only on the superslabs that turned dense before;
 *   - an advised superslab with at most HUGE_SPARSE pages in slabs gets
 *     MADV_NOHUGEPAGE: its free pages may then be purged one by one (which
 *     splits the 2 MiB page) and khugepaged will not collapse them back.
 *     It is advised again only when it turns dense;
 *   - before any part of an advised superslab is purged (free pages that
 *     decayed, the dirty limit, or 4 KiB pages of free blocks inside its
 *     live slabs), the advice is withdrawn (hak_huge_on_purge): with
 *     MADV_HUGEPAGE, khugepaged (max_ptes_none 511 by default) collapses
 *     a range with a single resident 4 KiB page back into a whole 2 MiB
 *     page, and the purge is undone within its scan period (10 s). Such a
 *     "cold" superslab is advised again only when it gains slabs past
 *     HUGE_DENSE after having had fewer (it is being filled again);
 *   - free 4 KiB pages inside the live slabs of an advised superslab are
 *     purged (and the advice withdrawn) only when the slab is cold (its
 *     heap idle for the delay) or at least 3/4 free (hak_huge_may_purge):
 *     the few pages of a busy heap's holes are not worth a 2 MiB page
 *     (the large-ws bench lost half its AnonHugePages to them otherwise).
 * The time decay leaves the free pages of a superslab that is advised and
 * still dense (hak_huge_keeps: at most 4 pages, 256 KiB, beside 1.75 MiB
 * in slabs) resident, so as not to split its hugepage; a less dense one
 * loses the advice and its decayed pages, and a wholly free one is
 * purged whole (its header page aside) or unmapped.
 *
 * MADV_COLLAPSE (HAKMEM_HUGEPAGE_COLLAPSE=1, off by default): each decay
 * pass collapses at most one candidate that has stayed dense and advised
 * for the proof time (a burst freed soon after is not copied) and was
 * not advised at map time; after a
 * failure none for HUGE_BACKOFF_MS. It copies up to 2 MiB under ss_lock,
 * so it never runs on an allocation path.
 * With the time decay off (HAKMEM_PURGE_DELAY_MS=0) there are no passes
 * to prove anything: new superslabs are advised from the HUGE_MIN_SS-th on.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <asm/atomic.h>
#include "box.h"
#include "boxes/hugepage/hugepage.h"

#define HUGE_MIN_SS		5	/* superslabs before new ones are advised */
#define HUGE_DENSE		HAK_HUGE_DENSE	/* pages in slabs to advise */
#define HUGE_SPARSE		8	/* pages in slabs to withdraw the advice */
#define HUGE_BACKOFF_MS		1000
#define HUGE_CAND		64	/* candidates remembered */
#define HUGE_CHURN		8	/* proven superslabs per withdrawal allowed */
#define HUGE_PASS_MAX		64	/* pending superslabs advised per pass */
#ifndef HUGE_PROVE_X
#define HUGE_PROVE_X		HAK_HUGE_PROVE_X	/* KCFLAGS=-DHUGE_PROVE_X=n to try */
#endif

static size_t nr_advised, nr_withdrawn, nr_collapses, nr_collapse_fails;	/* atomic */
static size_t nr_at_map, nr_earned, nr_proven;	/* atomic */
static unsigned collapse_after;		/* ms; ss_lock */
static size_t nr_ss;			/* superslabs mapped; ss_lock */
/*
 * Superslabs advised when they turned dense (their pages already faulted
 * as 4 KiB ones) or at map time and now dense, with the time: the proof of
 * a heap that stays, and (the former) the collapse candidates.
 */
static struct hak_superslab *cand[HUGE_CAND];	/* ss_lock */
static unsigned cand_ms[HUGE_CAND];		/* ss_lock */
static unsigned ncand;				/* ss_lock */
static bool earned;		/* new superslabs advised at map time; ss_lock */
/* Superslabs that turned dense (HAK_HUGE_LISTED), linked by huge_next. */
static struct hak_superslab *pend;	/* ss_lock */
/*
 * Withdrawals in this proof window and the one before (the window moves
 * at a pass once it is a proof time old), and the candidates proven at
 * the last pass: the heap churns when the withdrawals reach one per
 * HUGE_CHURN proven superslabs (a few decayed pages of the first, mixed
 * superslab do not take the grant from a heap of 64 that stays).
 */
static unsigned nwd, nwd_prev, wd_ms, nproven;	/* ss_lock */

static bool churns(void)
{
	return (nwd + nwd_prev) * HUGE_CHURN >= nproven;
}

static void advise(struct hak_superslab *ss, bool on)
{
	if (!__hak_os_advise_huge(ss, HAK_SS_SIZE, on))
		return;
	ss->huge = (ss->huge & HAK_HUGE_LISTED) | (on ? HAK_HUGE_ON : HAK_HUGE_OFF);
	arch_fetch_add(on ? &nr_advised : &nr_withdrawn, 1UL);
	if (!on) {
		nwd++;
		/* The heap churns: new superslabs fault 4 KiB pages again. */
		if (churns())
			earned = false;
	}
}

void hak_huge_on_new(struct hak_superslab *ss, size_t nr)
{
	nr_ss = nr;
	if (nr < HUGE_MIN_SS || !(earned || !__hak_opt.purge_delay_ms))
		return;
	advise(ss, true);
	if ((ss->huge & 3) == HAK_HUGE_ON) {
		/* Sparse while it fills: not a withdrawal (it is huge already). */
		ss->huge |= HAK_HUGE_FRESH | HAK_HUGE_ATMAP;
		arch_fetch_add(&nr_at_map, 1UL);
	}
}

static void cand_del(unsigned i)
{
	ncand--;
	cand[i] = cand[ncand];
	cand_ms[i] = cand_ms[ncand];
}

/*
 * ss dense since ms and advised: a proof of the heap, and to collapse
 * unless huge at map time.
 */
static void cand_add(struct hak_superslab *ss, unsigned ms)
{
	unsigned i, atmap = 0;

	if (ncand == HUGE_CAND || (ss->huge & HAK_HUGE_COLLAPSED))
		return;
	/* Those huge at map time take half the room at most: the rest is for collapses. */
	if (ss->huge & HAK_HUGE_ATMAP) {
		for (i = 0; i < ncand; i++)
			atmap += !!(cand[i]->huge & HAK_HUGE_ATMAP);
		if (atmap >= HUGE_CAND / 2)
			return;
	}
	cand_ms[ncand] = ms;
	cand[ncand++] = ss;
}

/* Still a candidate: advised, dense, not collapsed yet. */
static bool cand_live(const struct hak_superslab *ss)
{
	unsigned used = HAK_SS_PAGES - (unsigned)__builtin_popcount(ss->free_mask);

	return (ss->huge & (3 | HAK_HUGE_COLLAPSED)) == HAK_HUGE_ON &&
	       used >= HUGE_DENSE;
}

/* Advise ss, dense since ms; once huge, it is a candidate. */
static void advise_dense(struct hak_superslab *ss, unsigned ms)
{
	advise(ss, true);
	if ((ss->huge & 3) == HAK_HUGE_ON)
		cand_add(ss, ms);
}

/* ss turned dense (or is still): on the pend list, dense since now unless it was. */
static void pend_note(struct hak_superslab *ss)
{
	if (ss->huge & HAK_HUGE_PEND)
		return;
	ss->huge |= HAK_HUGE_PEND;
	ss->huge_ms = __hak_now_ms();
	if (ss->huge & HAK_HUGE_LISTED)
		return;
	ss->huge |= HAK_HUGE_LISTED;
	ss->huge_next = pend;
	pend = ss;
}

/*
 * From the decay pass: advise the pending superslabs that have stayed
 * dense for delay ms (at most HUGE_PASS_MAX a pass), and drop from the
 * list those that are no longer pending.
 */
static void pend_pass(unsigned now, unsigned delay)
{
	struct hak_superslab **pp = &pend, *ss;
	unsigned n = 0;

	while ((ss = *pp)) {
		if ((ss->huge & HAK_HUGE_PEND) &&
		    (__hak_ms_age(now, ss->huge_ms) < delay || n == HUGE_PASS_MAX)) {
			pp = &ss->huge_next;
			continue;
		}
		*pp = ss->huge_next;
		ss->huge_next = NULL;
		ss->huge &= ~(uint32_t)HAK_HUGE_LISTED;
		if (!(ss->huge & HAK_HUGE_PEND))
			continue;	/* turned sparse, or purged */
		ss->huge &= ~(uint32_t)HAK_HUGE_PEND;
		n++;
		advise_dense(ss, ss->huge_ms);
	}
}

void hak_huge_on_used(struct hak_superslab *ss, unsigned used)
{
	unsigned st = ss->huge & 3;

	if (ss->huge & HAK_HUGE_FRESH) {
		if (used < HUGE_DENSE)
			return;
		/*
		 * Dense: from now on it proves the heap stays like the
		 * superslabs advised when they turned dense (the grant would
		 * otherwise rest on the few of those made before it, and a
		 * handful of withdrawals would take it away again).
		 */
		ss->huge &= ~(uint32_t)HAK_HUGE_FRESH;
		cand_add(ss, __hak_now_ms());
		return;
	}
	if (used < HUGE_DENSE)
		ss->huge &= ~(uint32_t)HAK_HUGE_PEND;	/* not dense since */
	if (ss->huge & HAK_HUGE_COLD) {
		unsigned then = (ss->huge >> HAK_HUGE_COLD_SHIFT) & 0xff;

		/* Dense again only by gaining slabs: not at once. */
		if (used < then) {
			ss->huge = (ss->huge & ~(0xffu << HAK_HUGE_COLD_SHIFT)) |
				   used << HAK_HUGE_COLD_SHIFT;
			return;
		}
		if (used == then || used < HUGE_DENSE)
			return;
	}
	/* A heap of fewer superslabs fits the TLB's reach with 4 KiB pages. */
	if (st != HAK_HUGE_ON && used >= HUGE_DENSE && nr_ss >= HUGE_MIN_SS) {
		if (__hak_opt.purge_delay_ms) {
			pend_note(ss);	/* the decay pass advises it */
			return;
		}
		advise_dense(ss, __hak_now_ms());	/* no passes: at once */
	} else if (st == HAK_HUGE_ON && used <= HUGE_SPARSE)
		advise(ss, false);
}

void hak_huge_on_purge(struct hak_superslab *ss, unsigned used)
{
	if (ss->huge & HAK_HUGE_PEND) {
		/* Pending advice cancelled as given advice is withdrawn. */
		ss->huge = (ss->huge & ~(HAK_HUGE_PEND | 0xffu << HAK_HUGE_COLD_SHIFT)) |
			   HAK_HUGE_COLD | used << HAK_HUGE_COLD_SHIFT;
		return;
	}
	if ((ss->huge & 3) != HAK_HUGE_ON)
		return;
	advise(ss, false);
	if ((ss->huge & 3) == HAK_HUGE_OFF)
		ss->huge |= HAK_HUGE_COLD | used << HAK_HUGE_COLD_SHIFT;
}

bool hak_huge_may_purge(struct hak_superslab *ss, unsigned used, bool cold)
{
	if ((ss->huge & 3) == HAK_HUGE_ON && !cold)
		return false;
	hak_huge_on_purge(ss, used);
	return true;
}

void hak_huge_on_unmap(struct hak_superslab *ss)
{
	struct hak_superslab **pp = &pend;
	unsigned i = 0;

	nr_ss--;
	if (ss->huge & HAK_HUGE_LISTED) {
		while (*pp != ss)
			pp = &(*pp)->huge_next;
		*pp = ss->huge_next;
	}
	/* Every entry: a superslab advised again after a withdrawal is there twice. */
	while (i < ncand) {
		if (cand[i] == ss)
			cand_del(i);
		else
			i++;
	}
}

bool hak_huge_pass(unsigned now)
{
	unsigned prove = HUGE_PROVE_X * (unsigned)__hak_opt.purge_delay_ms;
	unsigned i = 0, proven = 0, pick = HUGE_CAND;
	struct hak_superslab *ss;

	pend_pass(now, (unsigned)__hak_opt.purge_delay_ms);
	while (i < ncand) {
		if (!cand_live(cand[i])) {
			cand_del(i);	/* withdrawn, sparse or collapsed */
			continue;
		}
		if (__hak_ms_age(now, cand_ms[i]) >= prove) {
			proven++;
			if (!(cand[i]->huge & HAK_HUGE_ATMAP))
				pick = i;	/* 4 KiB pages: worth a collapse */
		}
		i++;
	}
	nproven = proven;
	arch_store_relaxed(&nr_proven, (size_t)proven);
	if (__hak_ms_age(now, wd_ms) >= prove) {
		nwd_prev = nwd;
		nwd = 0;
		wd_ms = now;
	}
	if (!earned && proven >= HUGE_MIN_SS && !churns()) {
		earned = true;
		arch_fetch_add(&nr_earned, 1UL);
	}
	if (!__hak_opt.hugepage_collapse || pick == HUGE_CAND ||
	    !__hak_ms_due(now, collapse_after))
		return false;
	ss = cand[pick];
	cand_del(pick);
	ss->huge |= HAK_HUGE_COLLAPSED;
	if (__hak_os_collapse(ss, HAK_SS_SIZE)) {
		arch_fetch_add(&nr_collapses, 1UL);
	} else {
		arch_fetch_add(&nr_collapse_fails, 1UL);
		collapse_after = now + HUGE_BACKOFF_MS;
	}
	return true;
}

/*
 * AnonHugePages of /proc/self/smaps_rollup, read without stdio (and not in
 * a sandbox the program installed itself: __hak_os_read_file).
 */
static size_t anon_huge_bytes(void)
{
	char buf[2048];
	const char *key = "AnonHugePages:", *s;
	size_t v = 0;

	if (__hak_os_read_file("/proc/self/smaps_rollup", buf, sizeof(buf)) <= 0)
		return 0;
	s = strstr(buf, key);
	if (!s)
		return 0;
	for (s += strlen(key); *s == ' '; s++)
		;
	for (; *s >= '0' && *s <= '9'; s++)
		v = v * 10 + (size_t)(*s - '0');
	return v << 10;
}

void hak_huge_stats(struct hak_huge_stats *st)
{
	st->advised = arch_load_relaxed(&nr_advised);
	st->withdrawn = arch_load_relaxed(&nr_withdrawn);
	st->collapses = arch_load_relaxed(&nr_collapses);
	st->collapse_fails = arch_load_relaxed(&nr_collapse_fails);
	st->at_map = arch_load_relaxed(&nr_at_map);
	st->earned = arch_load_relaxed(&nr_earned);
	st->proven = arch_load_relaxed(&nr_proven);
	st->anon_huge_bytes = anon_huge_bytes();
}
