// SPDX-License-Identifier: MIT
/*
 * Three known call sites for the heap profiler's checks (hp_pprof.sh):
 * site_keep64 keeps 64 MiB live, site_keep16 keeps 16 MiB live and
 * site_churn allocates and frees 256 MiB. Sizes vary (16 B .. 8 KiB) so
 * the samples' weights matter. The sites are compiled without frame
 * pointers whatever the configuration, so the .eh_frame walk is what
 * finds them.
 *
 *   hp_sites [plain|threads|fork] OUT
 *
 * plain: the sites in order, then hak_prof_dump(OUT). threads: each site
 * in its own thread. fork: plain, then a child adds site_child (32 MiB
 * live), dumps OUT.child and exits through exit() (its own exit profile).
 * Prints TAP: the dumps succeed with HAKMEM_PROF=1 and fail with EINVAL
 * without it.
 *
 * Every mode also runs the twins: twin_a and twin_b (16 MiB live each,
 * calls alternating) reach malloc through one helper, site_common, at
 * the same stack pointer, so their samples share the walk cache's key and
 * only the words further up tell them apart.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <hakmem/hakmem.h>
#include "tap.h"
#include "tcache.h"

#define MiB (1UL << 20)
/*
 * clang has neither noclone nor per-function optimize: its build keeps the
 * sites as the configuration compiles them (frame pointers or not), so
 * only gcc's build is sure to take the .eh_frame walk.
 */
#ifdef __clang__
#define NOFP __attribute__((noinline))
#else
#define NOFP __attribute__((noinline, noclone, optimize("omit-frame-pointer")))
#endif

static uint64_t rng = 88172645463325252ULL;

static size_t next_size(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return 16 + rng % 8176;
}

struct keep {
	void **p;
	size_t n;
};

static struct keep k64, k16, kchild, ktwin;
static uintptr_t twin_sp[2];
static unsigned long twin_calls[2];

/* Allocate total bytes in varied sizes, keep them all. */
static NOFP void fill(struct keep *k, size_t total, void *(*alloc)(size_t))
{
	size_t done = 0, cap = total / 16;

	k->p = calloc(cap, sizeof(void *));
	while (done < total) {
		size_t n = next_size();

		if (n > total - done)
			n = total - done < 16 ? 16 : total - done;
		k->p[k->n] = alloc(n);
		memset(k->p[k->n], 1, 8);
		k->n++;
		done += n;
	}
}

static NOFP void *site_keep64(size_t n)
{
	void *p = malloc(n);

	__asm__ volatile("" ::: "memory");
	return p;
}

static NOFP void *site_keep16(size_t n)
{
	void *p = malloc(n);

	__asm__ volatile("" ::: "memory");
	return p;
}

static NOFP void *site_child(size_t n)
{
	void *p = malloc(n);

	__asm__ volatile("" ::: "memory");
	return p;
}

static NOFP void *site_common(size_t n, int who)
{
	volatile char here = 0;

	twin_sp[who] = (uintptr_t)&here;
	return malloc(n + here);
}

/* Same shape, so the same frame size; different bodies, so not folded. */
static NOFP void *twin_a(size_t n)
{
	void *p = site_common(n, 0);

	twin_calls[0]++;
	return p;
}

static NOFP void *twin_b(size_t n)
{
	void *p = site_common(n, 1);

	twin_calls[1]++;
	return p;
}

/* 32 MiB live, every other block from each twin. */
static NOFP void fill_twins(struct keep *k, size_t total)
{
	void *(*twin[2])(size_t) = { twin_a, twin_b };
	size_t done = 0, cap = total / 16;

	k->p = calloc(cap, sizeof(void *));
	while (done < total) {
		size_t n = next_size();

		k->p[k->n] = twin[k->n & 1](n);
		memset(k->p[k->n], 1, 8);
		k->n++;
		done += n;
	}
}

static NOFP void site_churn(size_t total)
{
	size_t done = 0;

	while (done < total) {
		size_t n = next_size();
		void *p = malloc(n);

		memset(p, 2, 8);
		__asm__ volatile("" ::: "memory");
		free(p);
		done += n;
	}
}

static void *run_keep64(void *a) { (void)a; fill(&k64, 64 * MiB, site_keep64); return NULL; }
static void *run_keep16(void *a) { (void)a; fill(&k16, 16 * MiB, site_keep16); return NULL; }
static void *run_churn(void *a) { (void)a; site_churn(256 * MiB); return NULL; }

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "plain";
	const char *out = argc > 2 ? argv[2] : "hp_sites.pb.gz";
	char child_out[512];
	const char *on_env = getenv("HAKMEM_PROF");
	int on = on_env && !strcmp(on_env, "1");

	tap_plan(5);
	if (!strcmp(mode, "threads")) {
		pthread_t t[3];

		pthread_create(&t[0], NULL, run_keep64, NULL);
		pthread_create(&t[1], NULL, run_keep16, NULL);
		pthread_create(&t[2], NULL, run_churn, NULL);
		for (int i = 0; i < 3; i++)
			pthread_join(t[i], NULL);
	} else {
		run_keep64(NULL);
		run_keep16(NULL);
		/* HP_RAISE=sig: ask for a dump by signal; the churn then writes it */
		if (getenv("HP_RAISE"))
			raise(atoi(getenv("HP_RAISE")));
		run_churn(NULL);
	}
	fill_twins(&ktwin, 32 * MiB);
	/*
	 * Requests up to 1 KiB skip the countdown on the fast path; while the
	 * profiler samples, this thread's direct table must send them to it
	 * (lib/alloc.h), the initialising thread's included.
	 */
	tap_ok(__hak_tc.size_ix[64] == (on ? 4 * HAK_CLASS_NONE : __hak_size_ix[64]),
	       "%s: the direct size table %s (size_ix[64] = %u)", mode,
	       on ? "sends small requests to the countdown" : "is the size table",
	       __hak_tc.size_ix[64]);
	tap_ok(k64.n > 0 && k16.n > 0, "%s: sites allocated %zu and %zu blocks", mode, k64.n, k16.n);
	tap_ok(twin_sp[0] == twin_sp[1] && twin_calls[0] && twin_calls[1],
	       "%s: the twins reach site_common at one stack pointer", mode);
	if (on)
		tap_ok(hak_prof_dump(out) == 0, "%s: hak_prof_dump(%s)", mode, out);
	else
		tap_ok(hak_prof_dump(out) == -1 && errno == EINVAL,
		       "%s: hak_prof_dump fails with EINVAL while the profiler is off", mode);
	if (!strcmp(mode, "fork")) {
		pid_t pid;
		int st = -1;

		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			snprintf(child_out, sizeof(child_out), "%s.child", out);
			fill(&kchild, 32 * MiB, site_child);
			exit(!on || hak_prof_dump(child_out) == 0 ? 0 : 1);
		}
		waitpid(pid, &st, 0);
		tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork: the child dumped its profile");
	} else {
		tap_ok(1, "%s: no child", mode);
	}
	tap_finish();
	return 0;
}
