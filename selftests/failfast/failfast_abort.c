// SPDX-License-Identifier: MIT
/*
 * failfast_abort: every kind of bad free or corrupted free list ends the
 * process with abort() and one line on stderr that names the check and the
 * address, and a clean workload at level 2 runs without a false alarm.
 *
 * Pointers pass through the volatile stash so the compiler can neither
 * drop a malloc/free pair nor warn about the deliberate misuse.
 *
 * Each scenario runs in a child (selftests/lib/child.h) at the level it
 * needs (set through __hak_ff_level, the value HAKMEM_TINY_REFILL_FAILFAST
 * sets at start-up; a re-exec of this program checks that variable too).
 */
#include <stdint.h>
#include <string.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#include "tap.h"
#include "child.h"
#include "crowd.h"
#include "tcache.h"
#include "boxes/failfast/failfast.h"
#include "boxes/header_classidx/header.h"

static char global_buf[64];

struct scenario {
	const char *name;
	int level;
	void (*run)(void);
	const char *expect;	/* substring of the diagnostic */
};

static void *launder(void *p)
{
	__asm__ __volatile__("" : "+r"(p) :: "memory");
	return p;
}

/* Keeps a pointer out of the compiler's use-after-free analysis. */
static void *volatile stash;

static void do_double_free(void)
{
	stash = malloc(64);
	free(stash);
	free(stash);
}

/*
 * A block of this thread's that a thread B cached (B, which allocates too,
 * freed 300 of this thread's blocks first, 30 ms after this thread's
 * last tick, so this thread counts as idle to B), freed again by a third thread C while it sits in B's cache. B
 * says on stderr if p is not in its bin (the scenario then fails: two
 * lines). A crowd of parked threads runs beside (selftests/lib/crowd.h),
 * so that B still caches if that is kept to when threads outnumber the
 * CPUs (Documentation/benchmarks.md, "larson 1 thread").
 */
static void *third_blocks[300];
static pthread_barrier_t third_bar;

static void *third_cacher(void *arg)
{
	unsigned i;

	(void)arg;
	free(launder(malloc(1000)));	/* a thread that allocates caches */
	/*
	 * This thread's clock past the owner's last tick by HAK_IDLE_MS
	 * (10 ms, lib/heap.c): sleep three times that, then tick (4 MiB).
	 */
	usleep(30 * 1000);
	free(launder(malloc(4u << 20)));
	for (i = 0; i < ARRAY_SIZE(third_blocks); i++)
		free(third_blocks[i]);
	free(launder(stash));
	if (__hak_tc.bins[__hak_class_of(64)].head != stash)
		fprintf(stderr, "failfast_abort: %p is not in the caching thread's bin\n", stash);
	pthread_barrier_wait(&third_bar);
	pthread_barrier_wait(&third_bar);
	return NULL;
}

static void *third_free(void *arg)
{
	free(launder(arg));
	return NULL;
}

static void do_third_thread_free(void)
{
	struct crowd crowd;
	pthread_t b, c;
	unsigned i;

	if (crowd_start(&crowd))
		return;
	for (i = 0; i < ARRAY_SIZE(third_blocks); i++)
		third_blocks[i] = malloc(64);
	stash = malloc(64);
	pthread_barrier_init(&third_bar, NULL, 2);
	if (pthread_create(&b, NULL, third_cacher, NULL))
		return;
	pthread_barrier_wait(&third_bar);
	if (!pthread_create(&c, NULL, third_free, stash))
		pthread_join(c, NULL);
	pthread_barrier_wait(&third_bar);
	pthread_join(b, NULL);
	crowd_stop(&crowd);
}

static void do_stack_free(void)
{
	char buf[64];

	free(launder(buf));
}

static void do_global_free(void)
{
	free(launder(global_buf));
}

static void do_mmap_free(void)
{
	void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	free(launder((char *)m + 4096));
}

static void do_interior_free(void)
{
	char *p = malloc(64);

	free(launder(p + 16));
}

static void do_corrupt_link(void)
{
	void *p = malloc(64), *q = malloc(64);

	stash = p;
	free(q);
	free(p);	/* the cache now holds p -> q */
	*(uintptr_t *)stash = 0x5a5a5a5a5a50UL;	/* use-after-free write */
	stash = malloc(64);	/* pops p and exposes the bad link */
	free(stash);
}

static void do_realloc_freed(void)
{
	stash = malloc(64);
	free(stash);
	free(realloc(stash, 128));
}

static void do_usable_freed(void)
{
	stash = malloc(200);
	free(stash);
	fprintf(stdout, "%zu\n", malloc_usable_size(stash));
}

#if IS_ENABLED(CONFIG_HAK_HEADER_CLASSIDX)
/*
 * Header box: an aligned block whose header names a slot that is no block
 * (its distance byte overwritten, as an underflow of the block would).
 */
static void do_aligned_bad_slot(void)
{
	char *p = aligned_alloc(256, 16);

	hak_hdr_of(p)->delta++;
	free(launder(p));
}
#endif

static const struct scenario scenarios[] = {
	{ "double free", 2, do_double_free, "double free" },
	{ "double free of a block in a third thread's cache", 2, do_third_thread_free,
	  "double free" },
	{ "free of a stack address", 1, do_stack_free, "not allocated by hakmem" },
	{ "free of a global", 1, do_global_free, "not allocated by hakmem" },
	{ "free of an mmap'd pointer", 1, do_mmap_free, "not allocated by hakmem" },
	{ "free of an interior pointer", 1, do_interior_free, "not a block boundary" },
	{ "corrupted free-list link", 1, do_corrupt_link, "corrupted free-list link" },
	{ "realloc of a freed block", 2, do_realloc_freed, "use of a freed block" },
	{ "usable size of a freed block", 2, do_usable_freed, "use of a freed block" },
#if IS_ENABLED(CONFIG_HAK_HEADER_CLASSIDX)
	{ "free of an aligned block with a forged slot distance", 1, do_aligned_bad_slot,
	  "slot is not a block boundary" },
#endif
};

static void run_scenario(void *arg)
{
	const struct scenario *s = arg;

	__hak_ff_level = s->level;
	s->run();
}

/* A workload that must pass every level-2 check. */
static void clean_workload(void *arg)
{
	void *v[2000];
	unsigned i, r;

	(void)arg;
	__hak_ff_level = 2;
	for (r = 0; r < 20; r++) {
		for (i = 0; i < 2000; i++)
			v[i] = malloc((i * 37 + r) % 3000 + 1);
		for (i = 0; i < 2000; i += 2)
			free(v[i]);
		for (i = 0; i < 2000; i += 2)
			v[i] = realloc(malloc(8), (i % 500) + 16);
		for (i = 0; i < 2000; i++)
			free(v[i]);
	}
}

int main(int argc, char **argv)
{
	struct child_result r;
	unsigned i;

	if (argc > 1 && !strcmp(argv[1], "--level")) {
		stash = malloc(1);	/* the first slow path reads the options */
		free(stash);
		printf("%d\n", __hak_ff_level);
		return 0;
	}
	tap_plan(ARRAY_SIZE(scenarios) + 3);
	for (i = 0; i < ARRAY_SIZE(scenarios); i++) {
		const struct scenario *s = &scenarios[i];
		char *line;

		child_run(run_scenario, (void *)s, &r);
		line = strstr(r.err, "hakmem: ");
		tap_ok(child_aborted(&r) && line && strstr(line, s->expect) &&
		       strstr(line, "0x") && child_err_lines(&r) == 1,
		       "%s (level %d): abort with \"%s\"", s->name, s->level, s->expect);
		if (!child_aborted(&r) || !line || !strstr(line, s->expect))
			tap_diag("status %#x, stderr: %s", r.status, r.err);
	}
	child_run(clean_workload, NULL, &r);
	tap_ok(child_exited_ok(&r) && !r.err[0], "clean workload passes level 2");

	/* HAKMEM_TINY_REFILL_FAILFAST sets the level at start-up. */
	for (i = 0; i <= 2; i += 2) {
		char cmd[4200];
		FILE *f;
		int level = -1;

		snprintf(cmd, sizeof(cmd), "HAKMEM_TINY_REFILL_FAILFAST=%u %s --level",
			 i, argv[0]);
		f = popen(cmd, "r");
		if (f) {
			if (fscanf(f, "%d", &level) != 1)
				level = -1;
			pclose(f);
		}
		tap_ok(level == (int)i, "HAKMEM_TINY_REFILL_FAILFAST=%u gives level %d", i, level);
	}
	tap_finish();
}
