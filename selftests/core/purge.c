// SPDX-License-Identifier: MIT
/*
 * Giving memory back: after the purge delay (250 ms by default) with no
 * change, whole 4 KiB pages of free blocks inside live slabs are purged
 * (RSS falls although every slab keeps live blocks), the survivors keep
 * their contents and the purged blocks are handed out again without
 * overlapping anything; the free pages of released slabs decay too, and
 * so do those of a thread that went idle right after freeing (at another
 * thread's next call). The
 * memory limit: a hard limit makes malloc fail with ENOMEM instead of
 * mapping past it, after purging the caches; HAKMEM_MEMORY_LIMIT (a
 * re-executed child) sets one; the cgroup limit reader agrees with the
 * cgroup files. A burst of frees that empties slabs past the dirty limit
 * leaves their pages resident (young) up to eight times the limit, and
 * purges them at once without a purge delay. The coarse clock counts from
 * the process's start.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "../lib/idle_burst.h"
#include "../lib/coarse_sleep.h"
#include "init.h"
#include "os.h"
#include "purge.h"

#define NB	(1u << 17)	/* 128 Ki blocks of 512 B: 64 MiB */
#define BS	512

static void test_pages(void)
{
	static unsigned char *b[NB], *again[NB];
	long before, after;
	size_t i, kept = 0, bad = 0, dup = 0, n2 = 0;
	struct hak_stats st;

	for (i = 0; i < NB; i++) {
		b[i] = malloc(BS);
		memset(b[i], (int)(i & 0xff), BS);
	}
	/* Slow builds purge while the loop below still frees: measure here. */
	before = proc_status_kib("VmRSS");
	/* Keep every 64th block: one per 32 KiB, so every slab stays live. */
	for (i = 0; i < NB; i++) {
		if (i % 64 == 0) {
			kept++;
			continue;
		}
		free(b[i]);
		b[i] = NULL;
	}
	ct_decay_tick();
	tst_sleep_ms(3 * CONFIG_HAK_PURGE_DELAY_MS + 30);
	ct_decay_tick();
	tst_sleep_ms(CONFIG_HAK_PURGE_DELAY_MS + 30);
	ct_decay_tick();
	after = proc_status_kib("VmRSS");
	hak_stats_get(&st);
	/*
	 * One live block per 32 KiB: at most an eighth of the pages stay,
	 * plus ct_decay_tick()'s own 4 MiB block, which BigCache keeps resident (the
	 * program takes one every tick: a block it still requests). The
	 * same with the hugepage box: it withdraws its advice from a
	 * superslab before purging pages inside its slabs, so khugepaged
	 * does not collapse them back (72 -> 27 MiB was seen before it did).
	 */
	tap_ok(after < before / 3 + (IS_ENABLED(CONFIG_HAK_BIGCACHE) ? 4096 : 0),
	       "pages of free blocks in live slabs purged: RSS %ld -> %ld KiB (%zu blocks live)",
	       before, after, kept);
	for (i = 0; i < NB; i += 64) {
		size_t k;

		for (k = 0; k < BS; k++)
			bad += b[i][k] != (unsigned char)(i & 0xff);
	}
	tap_ok(bad == 0, "survivors keep their contents (%zu bad bytes)", bad);
	/* Take the purged blocks back: unparked, zero or stale, all distinct. */
	for (i = 0; i < NB - kept; i++) {
		again[i] = malloc(BS);
		memset(again[i], 0xa5, BS);
		n2++;
	}
	for (i = 0; i < NB; i += 64) {
		size_t k;

		for (k = 0; k < BS; k++)
			bad += b[i][k] != (unsigned char)(i & 0xff);
	}
	for (i = 0; i < n2; i++) {
		size_t k;

		for (k = 0; k < BS; k += 64)
			dup += again[i][k] != 0xa5;
	}
	tap_ok(bad == 0 && dup == 0,
	       "%zu blocks handed out again overlap nothing (%zu bad, %zu overwritten)",
	       n2, bad, dup);
	for (i = 0; i < n2; i++)
		free(again[i]);
	for (i = 0; i < NB; i += 64)
		free(b[i]);
}

static void test_decay(void)
{
	struct hak_stats st;

	/*
	 * The first ticks flush the thread cache's bins (a bin two checks an
	 * eighth of the delay apart find unchanged): the slabs that empties
	 * go back to their superslabs, dirty from then on, and decay one
	 * delay later.
	 */
	for (int i = 0; i < 3; i++) {
		ct_decay_tick();
		tst_sleep_ms(CONFIG_HAK_PURGE_DELAY_MS / 4 + 30);
	}
	ct_decay_tick();
	tst_sleep_ms(2 * CONFIG_HAK_PURGE_DELAY_MS + 30);
	ct_decay_tick();
	hak_stats_get(&st);
	/*
	 * The hugepage box keeps the few free pages (4 at most, 256 KiB) of
	 * a superslab it advised that is still dense, not to split its 2 MiB
	 * page; the others decay as without it.
	 */
	tap_ok(st.dirty_bytes <= (IS_ENABLED(CONFIG_HAK_HUGEPAGE) ?
				  st.superslabs * (256u << 10) : 0),
	       "free superslab pages decay after the delay (%zu dirty bytes left, "
	       "%zu superslabs)", st.dirty_bytes, st.superslabs);
}

/*
 * A thread that frees a burst of small blocks and then waits without
 * calling the allocator: the next call of another thread, a delay later,
 * purges the free pages of its slabs (without the background purge box).
 */
enum { IDLE_NB = 32 << 10 };	/* 32 MiB in the burst */
static void *idle_b[IDLE_NB], *idle_keep[IDLE_NB / IDLE_BURST_KEEP];

static void test_idle_thread(void)
{
	struct idle_burst ib;
	long before, after;
	int bad;

	if (idle_burst_start(&ib, IDLE_NB, idle_b, idle_keep)) {
		tap_ok(0, "pthread_create");
		return;
	}
	before = ib.peak_kib > 0 ? ib.peak_kib : proc_status_kib("VmRSS");
	/*
	 * 31 MiB freed; the idle thread's cache may keep a few MiB of it.
	 * Usually one call three delays later purges the rest; a loaded
	 * machine can leave part of it to a later call, so this thread
	 * calls up to four times, a delay apart. The idle thread never
	 * calls the allocator meanwhile. With the hugepage box the burst's
	 * superslabs are advised (from the 5th on) and khugepaged collapsed
	 * the purged pages back into 2 MiB pages within its 10 s period
	 * (38728 -> 22592 KiB once), until the box withdrew its advice
	 * before the purge: the same bar holds.
	 */
	tst_sleep_ms(2 * CONFIG_HAK_PURGE_DELAY_MS);
	for (int i = 0; i < 4; i++) {
		tst_sleep_ms(CONFIG_HAK_PURGE_DELAY_MS + 30);
		ct_decay_tick();
		after = proc_status_kib("VmRSS");
		if (after + 16 * 1024 < before)
			break;
	}
	bad = idle_burst_stop(&ib);
	tap_ok(!bad && after + 16 * 1024 < before,
	       "an idle thread's free pages go at another thread's next call: "
	       "RSS %ld -> %ld KiB (%d survivors changed)", before, after, bad);
}

static void test_hard_limit(void)
{
	void *p, *q[8];
	unsigned i;
	bool need;
	struct hak_purge_stats ps, ps2;

	malloc_trim(0);
	__hak_purge_stats(&ps);
	__hak_os_set_limit(__hak_os_mapped() + (24u << 20), true);
	/* Cached large blocks count against the limit until purged. */
	for (i = 0; i < 8; i++)
		q[i] = malloc(2u << 20);
	for (i = 0; i < 8; i++)
		free(q[i]);
	errno = 0;
	p = malloc(64u << 20);
	tap_ok(!p && errno == ENOMEM, "hard limit: malloc past it fails with ENOMEM "
	       "(mapped %zu, limit %zu, got %p)", __hak_os_mapped(), __hak_os_limit(), p);
	/*
	 * The caches go at its retry, or before it at a tick's purge near the
	 * limit (the 64 MiB request, past the limit by itself, purges
	 * nothing since rv30; a slow build passes the delay before this).
	 * Without BigCache nothing is cached: no purge is needed.
	 */
	need = __hak_os_mapped() + (20u << 20) > __hak_os_limit();
	p = malloc(20u << 20);
	__hak_purge_stats(&ps2);
	tap_ok(p != NULL && (!need || ps2.retries + ps2.limit_purges >
				      ps.retries + ps.limit_purges),
	       "hard limit: a request that fits once the caches are purged succeeds "
	       "(%s; retries %zu -> %zu, purges near the limit %zu -> %zu)",
	       need ? "a purge needed" : "nothing cached", ps.retries, ps2.retries,
	       ps.limit_purges, ps2.limit_purges);
	free(p);
	__hak_os_set_limit(0, false);
}

static int child_limit(void)
{
	void *p;

	errno = 0;
	p = malloc(256u << 20);
	if (p || errno != ENOMEM)
		return 1;
	p = malloc(1u << 20);
	if (!p)
		return 2;
	free(p);
	return __hak_os_limit() == (64u << 20) ? 0 : 3;
}

static void test_env_limit(const char *self)
{
	pid_t pid = fork();
	int status = -1;

	if (pid == 0) {
		char *argv[] = { (char *)self, (char *)"child-limit", NULL };

		setenv("HAKMEM_MEMORY_LIMIT", "64m", 1);
		setenv("HAKMEM_MEMORY_LIMIT_HARD", "1", 1);
		execv("/proc/self/exe", argv);
		_exit(9);
	}
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "HAKMEM_MEMORY_LIMIT=64m HAKMEM_MEMORY_LIMIT_HARD=1: 256 MiB fails, 1 MiB works "
	       "(child status %d)", status);
}

/*
 * A re-executed child (HAKMEM_DIRTY_MAX and HAKMEM_PURGE_DELAY_MS set by
 * the parent) frees 64 MiB of 4 KiB blocks in one burst, emptying their
 * slabs, alone or while another thread (with a heap) lives; its status is
 * the free superslab memory still resident, in MiB.
 */
#define BURST_NB	16384

static pthread_mutex_t burst_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t burst_cv = PTHREAD_COND_INITIALIZER;
static int burst_state;		/* 1: the other thread has a heap; 2: done */

static void *burst_other(void *arg)
{
	void *volatile p = malloc(64);	/* attaches a heap */

	free(p);
	pthread_mutex_lock(&burst_mu);
	burst_state = 1;
	pthread_cond_broadcast(&burst_cv);
	while (burst_state != 2)
		pthread_cond_wait(&burst_cv, &burst_mu);
	pthread_mutex_unlock(&burst_mu);
	return arg;
}

static int child_burst(bool other)
{
	static void *b[BURST_NB];
	struct hak_stats st;
	pthread_t t;
	size_t mib;
	unsigned i;

	if (other) {
		if (pthread_create(&t, NULL, burst_other, NULL))
			return 255;
		pthread_mutex_lock(&burst_mu);
		while (burst_state != 1)
			pthread_cond_wait(&burst_cv, &burst_mu);
		pthread_mutex_unlock(&burst_mu);
	}
	for (i = 0; i < BURST_NB; i++) {
		b[i] = malloc(4096);
		if (!b[i])
			return 255;
		((volatile char *)b[i])[0] = 1;
	}
	for (i = 0; i < BURST_NB; i++)
		free(b[i]);
	hak_stats_get(&st);
	mib = st.dirty_bytes >> 20;
	if (other) {
		pthread_mutex_lock(&burst_mu);
		burst_state = 2;
		pthread_cond_broadcast(&burst_cv);
		pthread_mutex_unlock(&burst_mu);
		pthread_join(t, NULL);
	}
	return mib < 254 ? (int)mib : 254;
}

static int run_burst(const char *self, const char *how, const char *dirty_max,
		     const char *delay)
{
	pid_t pid = fork();
	int status = -1;

	if (pid == 0) {
		char *argv[] = { (char *)self, (char *)how, NULL };

		setenv("HAKMEM_DIRTY_MAX", dirty_max, 1);
		setenv("HAKMEM_PURGE_DELAY_MS", delay, 1);
		execv("/proc/self/exe", argv);
		_exit(255);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

static void test_burst(const char *self)
{
	int mib;

	/* 20 s delay: pages freed within 2.5 s are young */
	mib = run_burst(self, "child-burst", "16m", "20000");
	tap_ok(mib >= 32 && mib < 255,
	       "a 64 MiB burst of frees past a 16 MiB dirty limit, another thread live: "
	       "the young pages stay (%d MiB free and resident)", mib);
	mib = run_burst(self, "child-burst", "4m", "20000");
	tap_ok(mib <= 33,
	       "the same burst past 8 times a 4 MiB limit: purged down (%d MiB left)", mib);
	mib = run_burst(self, "child-burst", "16m", "0");
	tap_ok(mib <= 16,
	       "the same burst without a purge delay: purged as it goes (%d MiB left)", mib);
	mib = run_burst(self, "child-burst1", "16m", "20000");
	tap_ok(mib <= 16,
	       "the same burst in a thread alone: purged as it goes (%d MiB left)", mib);
}

/* The memory cgroup files, read here with stdio: the least limit found. */
static size_t stdio_cgroup_limit(void)
{
	char line[1024], path[1400];
	size_t best = 0;
	FILE *f = fopen("/proc/self/cgroup", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *c2 = strchr(line, ':'), *nl = strchr(line, '\n');
		const char *fmt = NULL;

		if (nl)
			*nl = '\0';
		c2 = c2 ? strchr(c2 + 1, ':') : NULL;
		if (!c2)
			continue;
		if (!strncmp(line, "0::", 3))
			fmt = "/sys/fs/cgroup%s/memory.max";
		else if (strstr(line, "memory"))
			fmt = "/sys/fs/cgroup/memory%s/memory.limit_in_bytes";
		if (!fmt)
			continue;
		for (;;) {
			FILE *g;
			unsigned long long v;
			char *slash;

			snprintf(path, sizeof(path), fmt, c2 + 1);
			g = fopen(path, "r");
			if (g) {
				if (fscanf(g, "%llu", &v) == 1 && v < (1ULL << 62) &&
				    (!best || v < best))
					best = (size_t)v;
				fclose(g);
			}
			slash = strrchr(c2 + 1, '/');
			if (!slash || !c2[1])
				break;
			*slash = '\0';
		}
	}
	fclose(f);
	return best;
}

/* malloc_info: glibc's XML, on a stream whose buffer stdio allocates. */
static void test_malloc_info(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc, bad;

	rc = malloc_info(0, f);
	fclose(f);
	tap_ok(rc == 0 && buf && strstr(buf, "<malloc version=") &&
	       strstr(buf, "name=\"small\"") && strstr(buf, "type=\"purged\"") &&
	       strstr(buf, "name=\"large\"") && strstr(buf, "</malloc>"),
	       "malloc_info(0, fp) writes the XML (%zu bytes)", len);
	free(buf);
	f = tmpfile();
	errno = 0;
	bad = malloc_info(1, f);
	tap_ok(bad == -1 && errno == EINVAL, "malloc_info(1, fp): -1, EINVAL");
	if (f)
		fclose(f);
}

/*
 * The batched page purge (lib/os.h): every other page of a region, more
 * ranges than one batch holds; the queued pages read as zero after the
 * flush, the others keep their bytes, and the count is exact. Once as the
 * kernel allows (process_madvise where it takes MADV_DONTNEED), once with
 * batching off (one madvise per range, HAKMEM_PURGE_BATCH=0).
 */
static void test_purge_batch(const char *how)
{
	enum { PAGES = 5 * HAK_PURGE_BATCH / 2 * 2 };
	struct hak_purge_batch b;
	size_t done, bad = 0, i;
	unsigned char *m = mmap(NULL, PAGES * 4096UL, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED) {
		tap_ok(0, "mmap");
		return;
	}
	memset(m, 0xa5, PAGES * 4096UL);
	b.n = 0;
	b.done = 0;
	for (i = 0; i < PAGES; i += 2)
		__hak_os_purge_add(&b, m + i * 4096, 4096);
	done = __hak_os_purge_flush(&b);
	for (i = 0; i < PAGES * 4096UL; i++)
		bad += m[i] != ((i / 4096) % 2 ? 0xa5 : 0);
	tap_ok(done == PAGES / 2 * 4096UL && bad == 0,
	       "%s: %d scattered pages purged in batches: %zu bytes reported, %zu wrong bytes",
	       how, PAGES / 2, done, bad);
	munmap(m, PAGES * 4096UL);
}

/*
 * BigCache's memory-pressure sample: MemAvailable as stdio reads it, give
 * or take what moved between the two reads, and errno left alone.
 */
static void test_mem_available(void)
{
	size_t avail = 0, total = 0, kb = 0, tkb = 0, slack = 64UL << 20;
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	bool ok;

	if (!f) {
		tap_skip("no /proc/meminfo");
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "MemTotal: %zu kB", &tkb);
		sscanf(line, "MemAvailable: %zu kB", &kb);
	}
	fclose(f);
	errno = 4242;
	ok = __hak_mem_available(&avail, &total);
	tap_ok(ok && errno == 4242 && total == tkb << 10 && avail <= total &&
	       avail + slack >= kb << 10 && avail <= (kb << 10) + slack,
	       "available memory read without stdio: %zu of %zu MiB (stdio: %zu of %zu)",
	       avail >> 20, total >> 20, kb >> 10, tkb >> 10);
}

/*
 * The coarse clock counts from the process's start, not from boot: stamps
 * of the boot clock in metadata read to memcheck as pointers into blocks
 * once the machine has been up about 23 h (lib/os.c).
 */
/*
 * The library's clock is CLOCK_MONOTONIC_COARSE counted from its first
 * read. It is checked against that same clock read around the sleep,
 * not against the sleep's length: on a loaded VM the coarse clock has
 * lagged a 50 ms sleep by 20 ms and more (tick updates are late there).
 */
static void test_clock(void)
{
	unsigned long t0, t1;
	unsigned a, b;

	a = __hak_now_ms();
	t0 = tst_coarse_ms();
	tst_sleep_ms(50);
	t1 = tst_coarse_ms();
	b = __hak_now_ms();
	tap_ok(a >= 1 && b < 60000 && b >= a && b - a >= t1 - t0,
	       "the coarse clock counts from the start: %u then %u ms (the boot clock moved %lu ms over the 50 ms sleep)",
	       a, b, t1 - t0);
}

int main(int argc, char **argv)
{
	size_t cg;

	if (argc > 1 && !strcmp(argv[1], "child-limit"))
		return child_limit();
	if (argc > 1 && !strcmp(argv[1], "child-burst"))
		return child_burst(true);
	if (argc > 1 && !strcmp(argv[1], "child-burst1"))
		return child_burst(false);
	tap_plan(0);
	test_clock();
	test_pages();
	test_decay();
	test_idle_thread();
	test_hard_limit();
	test_env_limit(argv[0]);
	test_burst(argv[0]);
	test_malloc_info();
	test_purge_batch("batched purge");
	__hak_os_purge_batch_off();
	test_purge_batch("HAKMEM_PURGE_BATCH=0");
	cg = stdio_cgroup_limit();
	tap_ok(__hak_cgroup_limit() == cg,
	       "cgroup memory limit read without stdio: %zu (stdio: %zu)",
	       __hak_cgroup_limit(), cg);
	test_mem_available();
	tap_finish();
}
