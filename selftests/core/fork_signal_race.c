// SPDX-License-Identifier: MIT
/*
 * fork_signal_race: a fork from a signal handler whose interrupted frame
 * holds an allocator lock, while another thread forks too.
 * runner: long (8-13 s: the runner starts it first, so it does not end the run alone)
 *
 * glibc does not serialise forks. Another fork's prepare took the stream-
 * list lock and the allocator locks before the held one, and waited for it;
 * the handler fork waited for the stream-list lock, and the frame cannot
 * give its lock back before the handler returns: both hung for good (51 of
 * 246 runs of tools/repro/fork_storm -s, branch fk16). A prepare whose
 * thread holds no lock now backs off while such a handler fork is waiting,
 * and two such handler forks leave each other's frame its locks (lib/init.c,
 * "Fork, back-off").
 *
 * Each run is a process of its own (this program again, "run a|b"):
 *   a: one thread spends most of its time inside the allocator's locks
 *      (mallinfo2, malloc_trim, large blocks and their realloc) and is
 *      signalled every 20-80 us, its handler forks; another thread forks
 *      back to back;
 *   b: two such threads, signalled in turn, no plain forker.
 * Every child _exit()s at once. A run lasts 400 ms (longer until a signal
 * was handled and a plain fork made, at most 5 s more); one that has not ended
 * within 10 s hangs: its process group is killed and the test fails.
 * argv[1]: runs per case (default 25, 8 with HAKMEM_SELFTEST_QUICK=1).
 * hakmem only: glibc's malloc hangs here (its fork takes its arena locks).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include "core_test.h"
#if CT_HAKMEM
#include "init.h"
#endif

#define RUN_MS		400
#define HANG_MS		10000

static volatile int stop;
static volatile long handled, plain, bad_child, fork_failed;
static pthread_t workers[2];

static void on_usr1(int sig)
{
	int saved = errno;

	(void)sig;
	ct_fork_reap(&bad_child, &fork_failed);
	__atomic_add_fetch(&handled, 1, __ATOMIC_RELAXED);
	errno = saved;
}

/* Inside the locks most of the time: the walks, the purges, large blocks. */
static void *worker(void *arg)
{
	void *keep[16] = { 0 };
	unsigned x = (unsigned)(uintptr_t)arg * 7919u + 1;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
		ct_fork_churn_step(keep, &x);
	for (unsigned k = 0; k < 16; k++)
		free(keep[k]);
	return NULL;
}

static void *forker(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		ct_fork_reap(&bad_child, &fork_failed);
		__atomic_add_fetch(&plain, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *signaller(void *arg)
{
	int n = (int)(intptr_t)arg;
	unsigned x = 99, i = 0;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		struct timespec ts = { 0, 20000 };

		x = x * 1103515245u + 12345u;
		ts.tv_nsec += (x >> 8) % 60000;
		pthread_kill(workers[i++ % n], SIGUSR1);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* One run; writes its figures to fd 3 (the harness's pipe), exits 0 when sound. */
static void one_run(char mode)
{
	int nw = mode == 'a' ? 1 : 2;
	struct timespec ts = { 0, RUN_MS * 1000000L };
	pthread_t f = 0, s;
	sigset_t usr1;
	unsigned long fig[4] = { 0 };

	ct_handle(SIGUSR1, on_usr1);
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);	/* only the workers take it */
	if (mode == 'a' && pthread_create(&f, NULL, forker, NULL))
		_exit(3);
	for (int i = 0; i < nw; i++) {
		pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
		if (pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i))
			_exit(3);
		pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	}
	if (pthread_create(&s, NULL, signaller, (void *)(intptr_t)nw))
		_exit(3);
	nanosleep(&ts, NULL);
	/*
	 * A loaded machine (CI, load 20 on 2 CPUs) once let a whole run
	 * pass without one handled signal (exit 64, no hang): the signals
	 * (and the plain forks) go on until one is, for up to 5 s more, so
	 * "no handler fork" means none could happen, not that the run was
	 * starved.
	 */
	for (int i = 0; i < 500 && (!__atomic_load_n(&handled, __ATOMIC_RELAXED) ||
				    (mode == 'a' && !__atomic_load_n(&plain, __ATOMIC_RELAXED))); i++) {
		struct timespec ms10 = { 0, 10000000 };

		nanosleep(&ms10, NULL);
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(s, NULL);
	for (int i = 0; i < nw; i++)
		pthread_join(workers[i], NULL);
	if (f)
		pthread_join(f, NULL);
#if CT_HAKMEM
	{
		struct hak_fork_stats fs;

		__hak_fork_stats(&fs);
		fig[0] = fs.urgent;
		fig[1] = fs.backoffs;
		fig[2] = fs.skips;
	}
#endif
	fig[3] = (unsigned long)handled;
	if (write(3, fig, sizeof(fig)) != sizeof(fig))
		_exit(3);
	/* which check failed, for the harness's diagnostic (3 and 127: set-up) */
	_exit((bad_child ? 16 : 0) | (fork_failed ? 32 : 0) | (!handled ? 64 : 0) |
	      (mode == 'a' && !plain ? 8 : 0));
}

/* Runs of one case; true when none hung or failed. */
static int run_case(const char *self, char mode, int runs, const char *what)
{
	int hung = 0, failed = 0;
	unsigned long sum[4] = { 0 };

	for (int r = 0; r < runs; r++) {
		char arg[2] = { mode, 0 };
		int p[2], st = 0, k;
		pid_t pid;

		if (pipe2(p, O_CLOEXEC))
			tap_bail("pipe: %s", strerror(errno));
		pid = fork();
		if (pid < 0)
			tap_bail("fork: %s", strerror(errno));
		if (pid == 0) {
			setpgid(0, 0);	/* its children too, for the kill below */
			if ((p[1] == 3 ? fcntl(3, F_SETFD, 0) : dup2(p[1], 3)) < 0)
				_exit(127);
			execl("/proc/self/exe", self, "run", arg, (char *)NULL);
			_exit(127);
		}
		setpgid(pid, pid);
		close(p[1]);
		for (k = 0; k < HANG_MS / 10; k++) {
			struct timespec ts = { 0, 10000000 };

			if (waitpid(pid, &st, WNOHANG) == pid)
				break;
			nanosleep(&ts, NULL);
		}
		if (k == HANG_MS / 10) {
			hung++;
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
		} else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			failed++;
			tap_diag("%s, run %d: status 0x%x (exit 16: a child did not exit 0, 32: a fork "
				 "failed, 64: no handler fork, 8: no plain fork)", what, r, (unsigned)st);
		} else {
			unsigned long fig[4];

			if (read(p[0], fig, sizeof(fig)) == sizeof(fig))
				for (int i = 0; i < 4; i++)
					sum[i] += fig[i];
		}
		kill(-pid, SIGKILL);	/* a child left behind */
		close(p[0]);
	}
	tap_diag("%s: %lu handler forks; %lu of them with a lock held, %lu back-offs, "
		 "%lu locks left to another handler fork's frame",
		 what, sum[3], sum[0], sum[1], sum[2]);
	tap_ok(!hung && !failed, "%s: %d runs, %d hung, %d failed", what, runs, hung, failed);
	return !hung && !failed;
}

int main(int argc, char **argv)
{
	int runs = ct_quick() ? 8 : 25;

	if (argc > 2 && !strcmp(argv[1], "run"))
		one_run(argv[2][0]);
	if (argc > 1)
		runs = atoi(argv[1]);
	tap_plan(2);
	if (!CT_HAKMEM)
		tap_skip_all("glibc's malloc hangs here (its fork takes its arena locks)");
	run_case(argv[0], 'a', runs, "a handler fork and a plain fork");
	run_case(argv[0], 'b', runs, "two handler forks");
	tap_finish();
}
