// SPDX-License-Identifier: MIT
/*
 * rlimit_run: a program that lowers RLIMIT_AS to 200 MiB once it runs,
 * before its first allocation, keeps that budget for itself: threads
 * with small stacks start, and malloc serves blocks until it fails with
 * ENOMEM (glibc's tst-malloc-thread-fail does the same with every
 * allocation function).
 *
 * The fixed page map (lib/superslab.h) took its 4 GiB of address space
 * while the library was relocated: VmSize was 4.2 GB before main, so
 * under this limit pthread_create failed with EAGAIN and the first
 * superslab with ENOMEM. Now only its first page is reserved then, and
 * the rest at the first superslab, under the limits of that moment: here
 * none. Eight threads (256 KiB stacks) allocate 144 B, 4 KiB or 17-page
 * blocks until NULL, free them and are joined; then the main thread
 * alone must get at least a quarter of what the limit left it in 4 KiB
 * blocks (the freed memory came back). Also built against the C
 * library's malloc; it passes there too.
 */
#include <pthread.h>
#include <stdbool.h>
#include <sys/resource.h>

#include "core_test.h"

#define LIMIT		(200UL << 20)
#define NTHREADS	8
#define STACK		(256UL << 10)

static void *(*volatile const v_malloc)(size_t) = malloc;

struct worker {
	pthread_t t;
	size_t size;
	size_t got;	/* blocks served before the NULL */
	int err;	/* errno with the NULL */
};

/* Allocate until NULL, the blocks chained through their first word; free all. */
static void *work(void *arg)
{
	struct worker *w = arg;
	void *head = NULL, *p;

	for (;;) {
		errno = 0;
		p = v_malloc(w->size);
		if (!p)
			break;
		*(void **)p = head;
		head = p;
		w->got++;
	}
	w->err = errno;
	while (head) {
		p = *(void **)head;
		free(head);
		head = p;
	}
	return NULL;
}

/*
 * One round: NTHREADS threads at size n; the blocks they got in all, or
 * 0 with *why set when a thread did not start or did not end on ENOMEM.
 */
static size_t round_at(size_t n, const char **why)
{
	struct worker w[NTHREADS];
	pthread_attr_t attr;
	size_t sum = 0;
	int started = 0;

	*why = NULL;
	memset(w, 0, sizeof(w));
	if (pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, STACK))
		tap_bail("pthread_attr");
	for (int i = 0; i < NTHREADS; i++) {
		w[i].size = n;
		if (pthread_create(&w[i].t, &attr, work, &w[i])) {
			*why = "pthread_create failed";
			break;
		}
		started++;
	}
	pthread_attr_destroy(&attr);
	for (int i = 0; i < started; i++) {
		if (pthread_join(w[i].t, NULL))
			tap_bail("pthread_join");
		if (w[i].err != ENOMEM && !*why)
			*why = "a NULL without ENOMEM";
		sum += w[i].got;
	}
	return *why ? 0 : sum;
}

int main(void)
{
	static const size_t sizes[] = { 144, 4096, 17 * 4096 };
	struct rlimit rl;
	bool can;
	long vm;

	/* before anything that may allocate (stdio's buffer is the first) */
	can = !getrlimit(RLIMIT_AS, &rl) &&
	      (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= LIMIT);
	if (can) {
		rl.rlim_cur = LIMIT;
		can = !setrlimit(RLIMIT_AS, &rl);
	}
	vm = proc_status_kib("VmSize");
	if (!can)
		tap_skip_all("cannot set RLIMIT_AS to 200 MiB");
	tap_plan(2 + ARRAY_SIZE_CT(sizes));
	tap_ok(vm >= 0 && (unsigned long)vm < (LIMIT >> 10) / 2,
	       "RLIMIT_AS 200 MiB before the first allocation: VmSize %ld KiB, under half of it", vm);
	for (size_t i = 0; i < ARRAY_SIZE_CT(sizes); i++) {
		const char *why;
		size_t got = round_at(sizes[i], &why);

		tap_ok(got > 0, "%zu B: %d threads started, every one got blocks until ENOMEM "
		       "(%zu in all)%s%s", sizes[i], NTHREADS, got, why ? ": " : "",
		       why ? why : "");
	}
	{
		/*
		 * What the rounds freed came back: alone, a quarter of the room
		 * at least (hakmem 129 of 133 MiB; glibc about a third, its
		 * threads' arenas stay reserved).
		 */
		size_t room = LIMIT - ((size_t)(vm > 0 ? vm : 0) << 10), got;
		struct worker w = { .size = 4096 };

		work(&w);
		got = w.got * 4096;
		tap_ok(w.err == ENOMEM && got >= room / 4,
		       "then alone: 4 KiB blocks until ENOMEM, %zu MiB of the %zu MiB left",
		       got >> 20, room >> 20);
	}
	tap_finish();
}
