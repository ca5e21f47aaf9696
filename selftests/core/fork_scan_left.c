// SPDX-License-Identifier: MIT
/*
 * fork_scan_left: the child of a handler fork that left a scan of other
 * heaps to its thread can still allocate on its own heap.
 *
 * The decay pass's scan of an idle heap holds that heap's scan lock
 * (scan_lk, HAK_SCAN_OTHER; lib/heap.c) while it collects and purges; the
 * heap's owner waits for it in heap_enter before any slow path. A handler
 * fork whose frame holds an allocator lock ("urgent") waits for a running
 * scan at most FORK_WAIT_MAX_NS (1 s; lib/init.c), then leaves it to its
 * thread. The child has no such thread: heap_scanning was reset there,
 * but the scan lock it held on the forking thread's own heap was not, and
 * the child's first slow path on that heap spun in heap_enter for good.
 *
 * Linked with --wrap=pthread_mutex_trylock, which stands in for the
 * timing. The main thread's blocks, freed by a thread that exits, sit on
 * its slabs' remote stacks; main sleeps past the delay (idle). Armed, the
 * main thread's try-lock that takes ss_lock (inside __hak_ssmap_open: its
 * frame holds a lock, as a handler's would) starts a scan in another
 * thread, whose collection of main's heap empties slabs and tries
 * ss_lock to give them back: there the scanner stalls (a preempted
 * scanner) until main has forked. The child allocates and frees 8 MiB of
 * 512 B blocks (refills: heap_enter) and exits 0; a hang is ended by
 * SIGALRM. The scenario runs in a child process. hakmem only.
 */
#include <pthread.h>
#include "core_test.h"
#if CT_HAKMEM
#include "heap.h"
#include "os.h"
#include "superslab.h"

static void scan(void)
{
	(void)__hak_heap_purge_idle(__hak_now_ms(), 1);
}

static bool lock_ss(void)
{
	/* a region no superslab uses: its registry granule is opened under ss_lock */
	return __hak_ssmap_open(0x580000000000UL);
}
#else
static void scan(void)
{
}

static bool lock_ss(void)
{
	return true;
}
#endif

#define HANG_S		30
#define CHILD_S		10
#define NBLK		8192
#define BSZ		256

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

static pid_t main_tid, scan_tid, main_pid;
static volatile int arm;		/* the main thread's next try-lock starts it all */
static volatile int stalled, released;	/* the scanner's stall */
static int scan_tries;			/* the scanner's try-locks in its scan */
static int go_scan[2];
static volatile int go;			/* the scanner is in its scan */
static void *blk[NBLK];

/* What the scenario saw, in a page shared with the test. */
static struct result {
	int stalled;		/* the scanner stalled inside its scan */
	int forked;		/* the fork returned in the parent */
	int child_status;	/* the fork's child's wait status */
	int joined;
} *res;

static void wait_flag(volatile int *f, unsigned ms)
{
	while (!*f && ms--)
		usleep(1000);
}

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	pid_t tid = gettid();

	/* the first is heap_lock's, for the list's head; the next, ss_lock's */
	if (scan_tid && tid == scan_tid && go && ++scan_tries == 2) {
		/* the scan's give-back of an emptied slab: a scanner preempted here */
		stalled = 1;
		wait_flag(&released, 20000);
	} else if (arm && tid == main_tid) {
		int r = __real_pthread_mutex_trylock(m);
		pid_t pid;

		if (r)
			return r;
		/* as a handler that interrupted the frame just past the lock */
		arm = 0;
		if (write(go_scan[1], "x", 1) != 1)
			_exit(5);
		wait_flag(&stalled, 5000);
		if (!stalled)
			return r;
		pid = fork();
		if (pid == 0)
			return r;	/* the child goes on in its frame (scenario) */
		if (pid > 0) {
			res->forked = 1;
			while (waitpid(pid, &res->child_status, 0) < 0 && errno == EINTR)
				;
		}
		released = 1;
		return r;
	}
	return __real_pthread_mutex_trylock(m);
}

static void *scanner(void *arg)
{
	char c;

	(void)arg;
	free(malloc(16));	/* the thread's heap, before it scans */
	__atomic_store_n(&scan_tid, gettid(), __ATOMIC_RELEASE);
	while (read(go_scan[0], &c, 1) < 0 && errno == EINTR)
		;
	go = 1;
	scan();
	return NULL;
}

/* Free main's blocks from another thread, which then exits (its cache flushed). */
static void *remote_free(void *arg)
{
	(void)arg;
	for (int i = 0; i < NBLK; i++)
		free(blk[i]);
	return NULL;
}

/* The fork's child: 8 MiB of 512 B blocks, allocated and freed; exits 0. */
static void child_allocates(void)
{
	static void *b[16384];

	alarm(CHILD_S);
	for (int i = 0; i < 16384; i++)
		if (!(b[i] = malloc(512)))
			_exit(2);
	for (int i = 0; i < 16384; i++)
		free(b[i]);
	_exit(0);
}

static void scenario(void)
{
	pthread_t t;

	alarm(HANG_S);
	main_tid = gettid();
	main_pid = getpid();
	for (int i = 0; i < NBLK; i++)
		if (!(blk[i] = malloc(BSZ)))
			_exit(5);
	if (pthread_create(&t, NULL, remote_free, NULL) || pthread_join(t, NULL))
		_exit(5);
	if (pipe(go_scan) || pthread_create(&t, NULL, scanner, NULL))
		_exit(5);
	while (!__atomic_load_n(&scan_tid, __ATOMIC_ACQUIRE))
		usleep(1000);
	usleep(20000);		/* main's heap idle past the scan's delay */
	arm = 1;
	if (!lock_ss())
		_exit(5);
	arm = 0;
	if (getpid() != main_pid)
		child_allocates();
	released = 1;
	res->stalled = stalled;
	if (pthread_join(t, NULL))
		_exit(5);
	res->joined = 1;
	_exit(0);
}

int main(void)
{
	int st, cs;

	if (!CT_HAKMEM)
		tap_skip_all("hakmem's fork handlers only");
	tap_plan(2);
	res = ct_shared(sizeof(*res));
	st = ct_scenario_child(scenario);
	if (!res->stalled)
		tap_bail("the scan of main's heap tried no lock (status 0x%x)", (unsigned)st);
	cs = res->child_status;
	tap_ok(res->forked && WIFEXITED(cs) && !WEXITSTATUS(cs),
	       "the child of a fork that left a scan allocates on its heap (status 0x%x%s)",
	       (unsigned)cs, ct_hung(cs));
	tap_ok(res->joined && WIFEXITED(st) && !WEXITSTATUS(st), "the scan went on after it");
	tap_finish();
}
