// SPDX-License-Identifier: MIT
/*
 * The reports tell the truth (issue 11, item 6): malloc_info's resident
 * figures, per layer and in all, checked against the kernel after each of
 * the scenarios that change them: small blocks written, then mostly freed
 * and purged (inside live slabs too); mid blocks (L2.5) written, freed and
 * decayed; a large block cached half touched, taken back by calloc (which
 * gives its absent pages back: zero_purged), written and cached again; a
 * thread that allocates and exits; and, in a re-executed child with
 * HAKMEM_BACKGROUND_PURGE=1, an idle spell the background thread purges;
 * and a calloc'ed block only read, whose pages map the kernel's zero page.
 *
 * Two truths, both read without calling the allocator:
 *   - mincore over the ranges the test knows (its blocks' superslabs and
 *     L2.5 regions, its large blocks): the layer's resident figure holds
 *     at least that, and at most that plus what the layer held before the
 *     scenario (its other blocks) plus LAYER_TOL; what left it when blocks
 *     were freed and purged was counted purged (or unmapped), within
 *     LAYER_TOL;
 *   - Anonymous of /proc/self/smaps_rollup (the kernel's Rss of every
 *     private anonymous page) minus malloc_info's <system type="resident">
 *     is what is not hakmem's (the program's stack and .bss, libc's data,
 *     the registry's and the page map's touched pages): it may not move
 *     from its value at the start by more than TOTAL_TOL at any check.
 * Before this test the small layer's "resident" was its bytes in slabs
 * (32 MiB after the frees where 1 MiB was resident) and BigCache's
 * cached_resident counted a block's untouched pages (16 MiB for 2).
 */
#include <fcntl.h>
#include <stdarg.h>
#include <pthread.h>
#include <sys/mman.h>
#include "core_test.h"
#include "os.h"
#include "../lib/coarse_sleep.h"

#define MIB		(1UL << 20)
#define LAYER_TOL	(256UL << 10)	/* pages the report's own calls touch */
#define TOTAL_TOL	(2 * MIB)	/* the program's own, see above */
#define SS		(2 * MIB)
#define NSMALL		(1u << 16)	/* 64 Ki blocks of 512 B: 32 MiB */
#define BSMALL		512
#define NMID		256		/* 256 blocks of 96 KiB: 24 MiB */
#define BMID		(96u << 10)
#define BIG		(16 * MIB)
#define DELAY_MS	CONFIG_HAK_PURGE_DELAY_MS

static void *small[NSMALL], *mid[NMID];
static uintptr_t bases[4096];
static unsigned nbases;
static char xml[16384];

/* What the test reads of malloc_info: "<heap>.<type>" -> size. */
struct report {
	size_t small_res, small_slabs, small_dirty, mid_res, mid_dirty, large_res, zero_purged;
	size_t cached, cached_res, cached_unpurged, grow_res, kept_res;
	size_t small_purged, mid_purged, mid_mapped;
	size_t huge;		/* the layers' hugepage figures, summed */
	size_t total, meta_res, bg_passes;
};

static size_t field(const char *heap, const char *type)
{
	char key[64];
	const char *h = xml, *t;

	if (heap) {
		snprintf(key, sizeof(key), "name=\"%s\"", heap);
		h = strstr(xml, key);
		if (!h)
			return 0;
	}
	snprintf(key, sizeof(key), "type=\"%s\"", type);
	t = strstr(h, key);
	if (!t || (heap && strstr(h, "</heap>") < t))
		return 0;
	t = strstr(t, "size=\"");
	return t ? strtoul(t + 6, NULL, 10) : 0;
}

static void report(struct report *r)
{
	FILE *f;
	const char *b;

	memset(xml, 0, sizeof(xml));
	f = fmemopen(xml, sizeof(xml) - 1, "w");
	if (!f || malloc_info(0, f) != 0)
		tap_bail("malloc_info");
	fclose(f);
	r->small_res = field("small", "resident");
	r->small_slabs = field("small", "in_slabs");
	r->mid_res = field("mid", "resident");
	r->small_dirty = field("small", "dirty");
	r->mid_dirty = field("mid", "dirty");
	r->large_res = field("large", "resident");
	r->zero_purged = field("large", "zero_purged");
	r->small_purged = field("small", "purged") + field("small", "purged_in_slabs");
	r->mid_purged = field("mid", "purged");
	r->mid_mapped = field("mid", "mapped");
	r->huge = field("small", "hugepage") + field("mid", "hugepage") +
		  field("large", "hugepage");
	r->cached = field("large", "cached");
	r->cached_res = field("large", "cached_resident");
	r->cached_unpurged = field("large", "cached_unpurged");
	r->grow_res = field("large", "grow_resident");
	r->kept_res = field("large", "kept_resident");
	b = strstr(xml, "<system type=\"resident\" size=\"");
	r->total = b ? strtoul(b + 30, NULL, 10) : 0;
	r->meta_res = field(NULL, "meta_resident");
	b = strstr(xml, "background_passes=\"");
	r->bg_passes = b ? strtoul(b + 19, NULL, 10) : 0;
}

/* A field of /proc/self/smaps_rollup in bytes, read with no allocation. */
static size_t rollup(const char *key)
{
	static char buf[8192];
	char *p;

	if (proc_read_raw("/proc/self/smaps_rollup", buf, sizeof(buf)) <= 0)
		return 0;
	p = strstr(buf, key);
	return p ? strtoul(p + strlen(key), NULL, 10) << 10 : 0;
}

static size_t anon_bytes(void)
{
	return rollup("\nAnonymous:");
}

/* The kernel's count of resident bytes in [p, p + len): the test's own. */
static size_t resident(uintptr_t p, size_t len)
{
	static unsigned char vec[BIG / 4096];
	size_t i, n = len / 4096, r = 0;

	if (n > sizeof(vec) || mincore((void *)p, len, vec))
		return 0;
	for (i = 0; i < n; i++)
		r += (vec[i] & 1) * 4096UL;
	return r;
}

static void base_add(const void *p)
{
	uintptr_t b = (uintptr_t)p & ~(SS - 1);
	unsigned i;

	for (i = 0; i < nbases; i++)
		if (bases[i] == b)
			return;
	if (nbases < ARRAY_SIZE_CT(bases))
		bases[nbases++] = b;
}

/* Resident bytes of the 2 MiB units the test's blocks are in. */
static size_t bases_resident(void)
{
	size_t r = 0;
	unsigned i;

	for (i = 0; i < nbases; i++)
		r += resident(bases[i], SS);
	return r;
}

static long other0;	/* Anonymous minus hakmem's resident, at the start */

/*
 * The re-executed child reports in comment lines (one TAP stream: the
 * parent's) and by its exit status.
 */
static int in_child, child_failed;

__attribute__((format(printf, 2, 3)))
static void check(int cond, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (!in_child) {
		tap_ok(cond, "%s", line);
		return;
	}
	child_failed |= !cond;
	printf("# child: %s %s\n", cond ? "ok" : "not ok", line);
}

/* The whole-process check: what is not hakmem's stays what it was. */
static void check_total(const char *when)
{
	struct report r;
	long other;

	report(&r);
	other = (long)anon_bytes() - (long)r.total;
	check(labs(other - other0) <= (long)TOTAL_TOL,
	       "%s: Anonymous - reported resident %+ld KiB from the start "
	       "(tolerance %lu KiB; hakmem's resident %zu KiB)",
	       when, (other - other0) >> 10, TOTAL_TOL >> 10, r.total >> 10);
}

/*
 * A layer's purged counters against the kernel: what left its resident
 * bytes was counted as purged (or unmapped, where the layer says so).
 */
static void check_purged(const char *what, const struct report *a, size_t res_a,
			 const struct report *b, size_t res_b, size_t purged, size_t unmapped)
{
	size_t drop = res_a > res_b ? res_a - res_b : 0;

	(void)a;
	(void)b;
	check(purged + unmapped + LAYER_TOL >= drop,
	      "%s: %zu KiB left the resident bytes, %zu KiB counted purged, %zu KiB unmapped",
	      what, drop >> 10, purged >> 10, unmapped >> 10);
}

/* A layer's figure against the kernel's count of the test's ranges. */
static void check_layer(const char *what, size_t got, size_t known, size_t before)
{
	tap_ok(got + LAYER_TOL >= known && got <= known + before + LAYER_TOL,
	       "%s: reported %zu KiB, the test's ranges %zu KiB (+ %zu KiB held before)",
	       what, got >> 10, known >> 10, before >> 10);
}

static int tick_bases;	/* the small scenario: tick's superslabs count as known */

/* A slow path (a refill) that runs the decay pass when it is due. */
static void tick(void)
{
	static void *p[512];
	unsigned i;

	for (i = 0; i < ARRAY_SIZE_CT(p); i++) {
		p[i] = malloc(4000);
		if (tick_bases)
			base_add(p[i]);	/* its superslabs are the test's too */
	}
	for (i = 0; i < ARRAY_SIZE_CT(p); i++)
		free(p[i]);
}

/*
 * Five purge delays of ticks an eighth of a delay apart: the thread's
 * bins that stay unchanged go back to their slabs, then the slabs' free
 * pages are purged (Documentation/design.md, "Giving memory back").
 */
static void decay(void)
{
	unsigned i;

	for (i = 0; i < 40; i++) {
		tick();
		ct_decay_tick();
		tst_sleep_ms(DELAY_MS / 8 + 1);
	}
	tick();
}

static void test_small(void)
{
	struct report r0, w, r;
	unsigned i;

	report(&r0);
	nbases = 0;
	tick_bases = 1;
	for (i = 0; i < NSMALL; i++) {
		small[i] = malloc(BSMALL);
		memset(small[i], 0x5a, BSMALL);
		base_add(small[i]);
	}
	report(&w);
	check_layer("small blocks written", w.small_res, bases_resident(), r0.small_res);
	check_total("small blocks written");
	/* one block in 64 kept: every slab stays live, most pages purgeable */
	for (i = 0; i < NSMALL; i++)
		if (i % 64) {
			free(small[i]);
			small[i] = NULL;
		}
	decay();
	report(&r);
	check_layer("small blocks freed and purged", r.small_res, bases_resident(), r0.small_res);
	/* every slab keeps a live block: nothing is unmapped */
	check_purged("small blocks freed and purged", &w, w.small_res, &r, r.small_res,
		     r.small_purged - w.small_purged, 0);
	tap_diag("small: resident %zu KiB, in slabs %zu KiB (the old 'resident'), "
		 "dirty %zu KiB", r.small_res >> 10, r.small_slabs >> 10, r.small_dirty >> 10);
	check_total("small blocks freed and purged");
	for (i = 0; i < NSMALL; i++)
		free(small[i]);
	decay();
	report(&r);
	check_layer("small blocks all freed", r.small_res, bases_resident(), r0.small_res);
	check_total("small blocks all freed");
	tick_bases = 0;
}

static void test_mid(void)
{
	struct report r0, w, r;
	unsigned i;

	report(&r0);
	nbases = 0;
	for (i = 0; i < NMID; i++) {
		mid[i] = malloc(BMID);
		memset(mid[i], 0x33, BMID);
		base_add(mid[i]);
	}
	report(&w);
	if (IS_ENABLED(CONFIG_HAK_L25_POOL))
		check_layer("mid blocks written", w.mid_res, bases_resident(), r0.mid_res);
	else
		tap_skip("mid blocks: no L2.5 pool (they are large blocks)");
	check_total("mid blocks written");
	for (i = 0; i < NMID; i++)
		free(mid[i]);
	decay();
	report(&r);
	if (IS_ENABLED(CONFIG_HAK_L25_POOL))
		check_layer("mid blocks freed and decayed", r.mid_res, bases_resident(), r0.mid_res);
	else
		tap_skip("mid blocks: no L2.5 pool");
	check_purged("mid blocks freed and decayed", &w, w.mid_res, &r, r.mid_res,
		     r.mid_purged - w.mid_purged,
		     w.mid_mapped > r.mid_mapped ? w.mid_mapped - r.mid_mapped : 0);
	tap_diag("mid: resident %zu KiB, dirty %zu KiB", r.mid_res >> 10, r.mid_dirty >> 10);
	check_total("mid blocks freed and decayed");
}

static void test_big(void)
{
	struct report r0, r;
	char *p, *q;
	size_t absent, res;

	report(&r0);
	p = malloc(BIG);
	memset(p, 0x77, 2 * MIB);		/* an eighth touched */
	report(&r);
	check_layer("large block, 2 of 16 MiB written", r.large_res,
		    resident((uintptr_t)p, BIG), r0.large_res);
	free(p);
	report(&r);
	res = IS_ENABLED(CONFIG_HAK_BIGCACHE) ? resident((uintptr_t)p, BIG) : 0;
	/* with the hardened box's guard the block may sit a page further: its range is the test's */
	check_layer("large block cached, 2 of 16 MiB touched", r.cached_res, res, r0.cached_res);
	tap_diag("cached %zu KiB: resident %zu KiB, not purged %zu KiB (the old 'cached_resident')",
		 r.cached >> 10, r.cached_res >> 10, r.cached_unpurged >> 10);
	check_total("large block cached");
	absent = BIG - res;
	r0 = r;
	q = calloc(1, BIG);
	report(&r);
	if (IS_ENABLED(CONFIG_HAK_BIGCACHE) && q == p)
		tap_ok(r.zero_purged - r0.zero_purged + LAYER_TOL >= absent &&
		       r.zero_purged - r0.zero_purged <= absent + LAYER_TOL,
		       "calloc of the cached block gave back %zu KiB (zero_purged), "
		       "%zu KiB of it were absent", (r.zero_purged - r0.zero_purged) >> 10,
		       absent >> 10);
	else
		tap_skip("calloc did not take the cached block (no BigCache, or another fit)");
	check_layer("calloc'ed block", r.large_res, resident((uintptr_t)q, BIG), r0.large_res);
	check_total("calloc of a cached block");
	memset(q, 0x11, 4 * MIB);
	free(ct_launder(q));		/* the stores are not dead */
	report(&r);
	res = IS_ENABLED(CONFIG_HAK_BIGCACHE) ? resident((uintptr_t)q, BIG) : 0;
	check_layer("large block cached again, 4 MiB written", r.cached_res, res, r0.cached_res);
	check_total("large block cached again");
	decay();
	report(&r);
	res = IS_ENABLED(CONFIG_HAK_BIGCACHE) ? resident((uintptr_t)q, BIG) : 0;
	check_layer("cached block after the purge delay", r.cached_res, res, r0.cached_res);
	check_total("cached block after the purge delay");
	malloc_trim(0);
	report(&r);
	tap_ok(r.cached_res == 0 && r.cached == 0, "malloc_trim: nothing cached (%zu KiB, "
	       "%zu KiB resident)", r.cached >> 10, r.cached_res >> 10);
	check_total("after malloc_trim");
}

/*
 * A calloc'ed block the program only reads (gdk-pixbuf's test, lib/zero.c)
 * maps the kernel's zero page: mincore calls it resident, the kernel's
 * Rss does not, and neither may the report (PAGEMAP_SCAN, Linux 6.7 on).
 */
static void test_read_only(void)
{
	struct hak_os_rss rss;
	volatile unsigned char *p;
	unsigned sum = 0;
	size_t i;

	__hak_os_rss_open(&rss);
	if (rss.fd < 0) {
		tap_skip("a calloc'ed block only read: no PAGEMAP_SCAN (mincore counts the zero page)");
		return;
	}
	__hak_os_rss_close(&rss);
	p = calloc(1, BIG);
	if (!p)
		tap_bail("calloc");
	for (i = 0; i < BIG; i += 4096)
		sum += p[i];
	tap_diag("read %zu KiB of zeros (sum %u); mincore says %zu KiB resident", BIG >> 10,
		 sum, resident((uintptr_t)p, BIG) >> 10);
	check_total("a calloc'ed block only read (the zero page)");
	free((void *)p);
}

/*
 * Huge pages: the program asks for them on its own large block
 * (MADV_HUGEPAGE, allowed in the "madvise" THP mode), and the layers'
 * hugepage figures, summed, are the process's AnonHugePages.
 */
static void test_huge(void)
{
	struct hak_os_rss rss;
	struct report r;
	size_t ahp;
	char *p, *a;

	__hak_os_rss_open(&rss);
	if (rss.fd < 0) {
		tap_skip("huge pages: no PAGEMAP_SCAN");
		return;
	}
	__hak_os_rss_close(&rss);
	malloc_trim(0);		/* a fresh mapping: no cached 4 KiB pages in it */
	p = malloc(8 * MIB);
	a = (char *)(((uintptr_t)p + SS - 1) & ~(SS - 1));
	if (madvise(a, 4 * MIB, MADV_HUGEPAGE))
		tap_diag("madvise(MADV_HUGEPAGE): %s", strerror(errno));
	memset(a, 0x66, 4 * MIB);
	report(&r);
	ahp = rollup("\nAnonHugePages:");
	if (!ahp)
		tap_skip("huge pages: the kernel gave none (THP off or no 2 MiB page free)");
	else
		tap_ok(r.huge <= ahp && r.huge + 2 * MIB >= ahp,
		       "huge pages: the layers report %zu KiB, AnonHugePages %zu KiB",
		       r.huge >> 10, ahp >> 10);
	free(ct_launder(p));
}

static void *thread_main(void *arg)
{
	static void *b[1u << 14];
	unsigned i;

	(void)arg;
	for (i = 0; i < ARRAY_SIZE_CT(b); i++) {
		b[i] = malloc(256);
		memset(b[i], 0x42, 256);
	}
	for (i = 0; i < ARRAY_SIZE_CT(b); i += 2)
		free(b[i]);
	b[1] = realloc(b[1], 3 * MIB);		/* a grown large block, freed */
	memset(b[1], 0x42, 3 * MIB);
	free(ct_launder(b[1]));
	for (i = 3; i < ARRAY_SIZE_CT(b); i += 2)
		free(b[i]);
	return NULL;
}

static void test_thread(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, thread_main, NULL))
		tap_bail("pthread_create");
	pthread_join(t, NULL);
	check_total("a thread exited");
	decay();
	check_total("a thread exited, after the purge delay");
}

/* The child: HAKMEM_BACKGROUND_PURGE=1, idle after a burst. */
static int bg_child(void)
{
	struct report r;
	size_t idle, after;
	unsigned i;

	report(&r);
	other0 = (long)anon_bytes() - (long)r.total;
	for (i = 0; i < NSMALL; i++) {
		small[i] = malloc(BSMALL);
		memset(small[i], 0x5a, BSMALL);
	}
	for (i = 0; i < NSMALL; i++)
		if (i % 64)
			free(small[i]);
	tst_sleep_ms(6 * DELAY_MS + 200);	/* no allocator call */
	idle = anon_bytes();
	report(&r);
	after = anon_bytes();
	check(r.bg_passes > 0, "background passes while idle: %zu", r.bg_passes);
	check(idle <= after + TOTAL_TOL,
	       "the background thread purged while idle: Anonymous %zu KiB idle, "
	       "%zu KiB after the report's calls", idle >> 10, after >> 10);
	check_total("idle with the background purge box");
	fflush(stdout);
	return child_failed;
}

int main(int argc, char **argv)
{
	struct report r;

	if (argc > 1 && !strcmp(argv[1], "bg")) {
		in_child = 1;
		return bg_child();
	}
	if (access("/proc/self/smaps_rollup", R_OK))
		tap_skip_all("no /proc/self/smaps_rollup");
	/* the test's own arrays resident before the baseline */
	memset(small, 0, sizeof(small));
	memset(bases, 0, sizeof(bases));
	memset(xml, 0, sizeof(xml));
	resident((uintptr_t)small & ~4095UL, 4096);
	report(&r);
	other0 = (long)anon_bytes() - (long)r.total;
	tap_diag("start: Anonymous - reported resident = %ld KiB", other0 >> 10);
	test_small();
	test_mid();
	test_big();
	test_read_only();
	test_huge();
	test_thread();
	if (IS_ENABLED(CONFIG_HAK_BACKGROUND_PURGE)) {
		pid_t pid;
		int st;

		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			setenv("HAKMEM_BACKGROUND_PURGE", "1", 1);
			execl("/proc/self/exe", argv[0], "bg", (char *)NULL);
			_exit(127);
		}
		waitpid(pid, &st, 0);
		tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		       "child with HAKMEM_BACKGROUND_PURGE=1 passed (its lines above)");
	} else {
		tap_skip("no background purge box");
	}
	tap_finish();
}
