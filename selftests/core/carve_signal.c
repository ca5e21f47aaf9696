// SPDX-License-Identifier: MIT
/*
 * carve_signal: a signal handler that allocates inside the carve window
 * (lib/heap.c, carve_open/carve_close: past the cores the owner drops its
 * scan lock while it writes blocks into pages never touched). The handler
 * runs at the carve's first page fault: the page after the last block
 * handed out is made PROT_NONE beforehand, so the carve's write there
 * raises SIGSEGV with the reservation made and the lock let go; the
 * handler gives the page back its access, checks that it finds the heap
 * at depth 0 (the window open: elsewhere it would nest beside the
 * interrupted refill, which no test asks of it), and allocates HB blocks
 * of the same class (its refill carves the same slab on past the
 * reservation, and fills it: the slab leaves the partial list under the
 * interrupted frame, whose own partial_del must then not run), a few
 * others, and frees some. Then:
 *   1. the handler ran in the window (skipped where the window is not
 *      used: hardened carve order, fail-fast checks, sharding);
 *   3. every block the two handed out is distinct (no overlap), and all
 *      hold a pattern written after the fact;
 *   2. the class's partial list is whole: each slab on it marked so and
 *      linked both ways, and the slab of the handler's last block on it
 *      when it has room (the interrupted frame's partial_del of a slab the
 *      handler took off already set the list's head to NULL: every other
 *      slab of the class was lost to it, rv34 checked by undoing the
 *      HAK_SLAB_PARTIAL test);
 *   4. the heap works on: all freed, the class allocated and freed again;
 *   5. the handler's fork: the child, back in the interrupted carve, does
 *      the same checks and allocates on (exit 0).
 * Threads past the cores (CPUs + 3) each allocate once and wait, so the
 * window's rule (__hak_tcache_past_cores) holds for the main thread.
 */
#include <pthread.h>
#include <hakmem/hakmem.h>
#include "core_test.h"
#include "heap.h"
#include "tcache.h"

#define BS	1800		/* a class the main thread never used */
#define OUTER_N	256		/* blocks the main thread takes, at most */
#define HB	96		/* the handler's blocks of that class: its slab fills */

static uintptr_t prot_page;		/* the page made PROT_NONE */
static volatile sig_atomic_t hits, depth_seen = -1, in_child;
static pid_t child = -1;
static void *hblk[HB + 8];
static unsigned hn;
static pthread_barrier_t start, stop;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;
	unsigned i;

	(void)sig;
	(void)uc;
	if (!prot_page || a < prot_page || a >= prot_page + 4096) {
		signal(SIGSEGV, SIG_DFL);
		return;		/* not ours: the fault again, by default */
	}
	if (mprotect((void *)prot_page, 4096, PROT_READ | PROT_WRITE))
		_exit(3);
	prot_page = 0;
	hits++;
	depth_seen = (sig_atomic_t)__hak_tc.heap->depth;
	if (depth_seen)
		return;		/* no window here: do not nest beside the frame */
	for (i = 0; i < HB; i++)
		hblk[hn++] = malloc(BS);
	hblk[hn++] = malloc(40);
	hblk[hn++] = malloc(3000);
	free(hblk[--hn]);
	free(hblk[--hn]);
	free(hblk[0]);
	hblk[0] = NULL;
	/* and a fork: the child goes on with the interrupted carve */
	child = fork();
	if (child == 0)
		in_child = 1;
}

static void *waiter(void *arg)
{
	(void)arg;
	free(ct_launder(malloc(64)));	/* counted: its first refill */
	pthread_barrier_wait(&start);
	pthread_barrier_wait(&stop);
	return NULL;
}

static struct hak_slab *slab_of(const void *p)
{
	return __hak_slab_head(__hak_page_of((uintptr_t)p));
}

/* 0, or what is wrong with the class's partial list (room: a slab that must be on it). */
static const char *partial_check(const struct hak_slab *room)
{
	struct hak_heap *h = __hak_tc.heap;
	unsigned c = room->class_idx, k = 0;
	const struct hak_slab *s, *prev = NULL;
	bool found = false;

	for (s = h->partial[c]; s && k < 100000; prev = s, s = s->next, k++) {
		if (s->prev != prev)
			return "a slab's prev link is wrong";
		if (!(s->flags & HAK_SLAB_PARTIAL))
			return "a slab on the list is not marked partial";
		found |= s == room;
	}
	if (s)
		return "the list loops";
	if (!found && (room->free || room->carved < room->capacity))
		return "the slab of the handler's last block has room but is not on the list";
	return NULL;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

int main(void)
{
	static void *outer[OUTER_N], *all[OUTER_N + HB + 8];
	unsigned nthr = __hak_nr_cpus() + 3, i, n = 0, m = 0, bad = 0;
	pthread_t *t = calloc(nthr, sizeof(*t));
	struct sigaction sa;
	uintptr_t top;

	if (!t)
		tap_bail("calloc");
	tap_plan(5);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	pthread_barrier_init(&start, NULL, nthr + 1);
	pthread_barrier_init(&stop, NULL, nthr + 1);
	for (i = 0; i < nthr; i++)
		if (pthread_create(&t[i], NULL, waiter, NULL))
			tap_bail("pthread_create");
	pthread_barrier_wait(&start);
	if (!__hak_tcache_past_cores())
		tap_diag("not past the cores with %u threads", nthr + 1);

	/* the first refill; its blocks come out falling, the highest first */
	outer[n++] = malloc(BS);
	top = (uintptr_t)outer[0];
	prot_page = (top + 4096) & ~(uintptr_t)4095;	/* the next refill carves into it */
	if (mprotect((void *)prot_page, 4096, PROT_NONE))
		tap_bail("mprotect: %s", strerror(errno));
	while (n < OUTER_N && !hits) {
		outer[n] = malloc(BS);
		if (!outer[n])
			tap_bail("malloc");
		n++;
	}
	if (in_child) {		/* the child's points count, unprinted */
		int fd = open("/dev/null", O_WRONLY);

		if (fd < 0 || dup2(fd, 1) < 0)
			_exit(2);
	}
	if (prot_page) {
		mprotect((void *)prot_page, 4096, PROT_READ | PROT_WRITE);
		prot_page = 0;
	}
	if (!hits || depth_seen) {
		tap_skip("no carve window in this configuration (%s)",
			 hits ? "the fault came at depth 1" : "no fault in the carve");
	} else {
		tap_ok(1, "the handler ran in the carve window (depth 0, %u blocks before it)", n);
	}
	if (hits && !depth_seen) {
		const struct hak_slab *s0 = slab_of(outer[0]), *s1 = slab_of(hblk[HB - 1]);
		const char *why = partial_check(s1);

		tap_diag("the carved slab: %u of %u carved; the handler's last: %s, %u of %u",
			 s0->carved, s0->capacity, s1 == s0 ? "the same" : "another",
			 s1->carved, s1->capacity);
		tap_ok(!why, "the class's partial list is whole after the window (%s)",
		       why ? why : "ok");
	} else {
		tap_skip("no carve window");
	}
	/* a few more past the window: the rest of the interrupted refill */
	for (i = 0; i < 64 && n < OUTER_N; i++)
		outer[n++] = malloc(BS);

	for (i = 0; i < n; i++)
		all[m++] = outer[i];
	for (i = 0; i < hn; i++)
		if (hblk[i])
			all[m++] = hblk[i];
	qsort(all, m, sizeof(all[0]), cmp_ptr);
	for (i = 1; i < m; i++)
		if ((uintptr_t)all[i] - (uintptr_t)all[i - 1] < BS)
			bad++;
	for (i = 0; i < m; i++)
		memset(all[i], (int)(i & 0xff), BS);
	for (i = 0; i < m; i++) {
		unsigned char *c = all[i];

		if (c[0] != (i & 0xff) || c[BS - 1] != (i & 0xff))
			bad++;
	}
	tap_ok(!bad, "%u blocks (%u by the handler): none overlaps another, all intact (%u bad)",
	       m, hn, bad);
	for (i = 0; i < m; i++)
		free(all[i]);
	for (i = 0; i < OUTER_N; i++)
		outer[i] = malloc(BS);
	for (i = 0; i < OUTER_N; i++) {
		if (!outer[i])
			bad++;
		else
			memset(outer[i], 0x5a, BS);
	}
	for (i = 0; i < OUTER_N; i++)
		free(outer[i]);
	malloc_trim(0);
	tap_ok(!bad, "the class allocated and freed again, trimmed");
	if (in_child)
		_exit(bad || tap_state.failed ? 1 : 0);
	if (child > 0) {
		int st;

		while (waitpid(child, &st, 0) < 0 && errno == EINTR)
			;
		tap_ok(WIFEXITED(st) && !WEXITSTATUS(st), "the handler's fork child: its checks pass (%s %d)",
		       WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
	} else {
		tap_skip("no fork in a carve window");
	}
	pthread_barrier_wait(&stop);
	for (i = 0; i < nthr; i++)
		pthread_join(t[i], NULL);
	free(t);
	tap_finish();
}
