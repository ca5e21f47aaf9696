// SPDX-License-Identifier: MIT
/*
 * Hugepage box (Documentation/boxes/hugepage.md): transparent hugepage
 * advice for superslabs.
 *
 * Policy, per superslab (state in ss->huge, under ss_lock):
 *   - a new superslab is advised (MADV_HUGEPAGE) before its first touch
 *     once the process has HUGE_MIN_SS superslabs: the header write then
 *     faults the whole 2 MiB in as one page. A small heap stays on 4 KiB
 *     pages (2 MiB of RSS for a few KiB of blocks would be a bad trade);
 *   - any superslab with at least HUGE_DENSE of its 32 pages in slabs is
 *     advised too (khugepaged, or MADV_COLLAPSE below, makes it huge);
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
 * MADV_COLLAPSE (HAKMEM_HUGEPAGE_COLLAPSE=1, off by default): a superslab
 * advised when it turned dense (its pages already faulted as 4 KiB ones)
 * is remembered (up to HUGE_CAND, forgotten when unmapped); each decay
 * pass collapses at most one, if it is still dense and advised; after a
 * failure none for HUGE_BACKOFF_MS. It copies up to 2 MiB under ss_lock,
 * so it never runs on an allocation path.
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
#define HUGE_CAND		64	/* collapse candidates remembered */

static size_t nr_advised, nr_withdrawn, nr_collapses, nr_collapse_fails;	/* atomic */
static unsigned collapse_after;		/* ms; ss_lock */
/* Superslabs advised when already partly faulted: collapse candidates. */
static struct hak_superslab *cand[HUGE_CAND];	/* ss_lock */
static unsigned ncand;				/* ss_lock */

static void advise(struct hak_superslab *ss, bool on)
{
	if (!__hak_os_advise_huge(ss, HAK_SS_SIZE, on))
		return;
	ss->huge = on ? HAK_HUGE_ON : HAK_HUGE_OFF;
	arch_fetch_add(on ? &nr_advised : &nr_withdrawn, 1UL);
}

void hak_huge_on_new(struct hak_superslab *ss, size_t nr)
{
	if (nr >= HUGE_MIN_SS)
		advise(ss, true);
}

void hak_huge_on_used(struct hak_superslab *ss, unsigned used)
{
	unsigned st = ss->huge & 3;

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
	if (st != HAK_HUGE_ON && used >= HUGE_DENSE) {
		advise(ss, true);
		if ((ss->huge & 3) == HAK_HUGE_ON && ncand < HUGE_CAND &&
		    !(ss->huge & HAK_HUGE_COLLAPSED))
			cand[ncand++] = ss;
	} else if (st == HAK_HUGE_ON && used <= HUGE_SPARSE)
		advise(ss, false);
}

void hak_huge_on_purge(struct hak_superslab *ss, unsigned used)
{
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
	unsigned i = 0;

	/* Every entry: a superslab advised again after a withdrawal is there twice. */
	while (i < ncand) {
		if (cand[i] == ss)
			cand[i] = cand[--ncand];
		else
			i++;
	}
}

bool hak_huge_collapse(unsigned now)
{
	struct hak_superslab *ss;
	unsigned used;

	if (!__hak_opt.hugepage_collapse || !ncand || (int)(now - collapse_after) < 0)
		return false;
	ss = cand[--ncand];
	used = HAK_SS_PAGES - (unsigned)__builtin_popcount(ss->free_mask);
	if ((ss->huge & 3) != HAK_HUGE_ON || (ss->huge & HAK_HUGE_COLLAPSED) ||
	    used < HUGE_DENSE)
		return false;
	ss->huge |= HAK_HUGE_COLLAPSED;
	if (__hak_os_collapse(ss, HAK_SS_SIZE)) {
		arch_fetch_add(&nr_collapses, 1UL);
	} else {
		arch_fetch_add(&nr_collapse_fails, 1UL);
		collapse_after = now + HUGE_BACKOFF_MS;
	}
	return true;
}

/* AnonHugePages of /proc/self/smaps_rollup, read without stdio. */
static size_t anon_huge_bytes(void)
{
	char buf[2048];
	const char *key = "AnonHugePages:", *s;
	ssize_t n;
	size_t v = 0;
	int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
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
	st->anon_huge_bytes = anon_huge_bytes();
}
