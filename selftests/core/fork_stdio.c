// SPDX-License-Identifier: MIT
/*
 * fork_stdio: fork() racing stdio and malloc in other threads.
 *
 * Threads fork (the child allocates, flushes stdio and exits), others read
 * lines with getline() (which allocates while it holds the stream's lock),
 * others call fflush(NULL) (which takes the C library's list-of-streams
 * lock, then each stream's lock), others allocate and free every size
 * range. The fork path takes the allocator's fork locks and the C
 * library's own; a wrong order between them deadlocks within seconds.
 *
 * Proves that for DURATION seconds (argv[1]; 20 is the full scenario, run
 * by tools/stress.sh; without an argument a bounded slice of 3 s, 1 with
 * HAKMEM_SELFTEST_QUICK=1) every thread keeps making progress, every child
 * exits 0, and the lines read are the lines written. A hang is a failure:
 * a watchdog thread (which never allocates) reports it and ends the
 * process with exit 1 after 30 s without progress.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <sys/wait.h>

#include "core_test.h"

#define NFORK	2
#define NLINE	4
#define NFLUSH	1
#define NALLOC	2
#define NTHREAD	(NFORK + NLINE + NFLUSH + NALLOC)

static int stop;
static long progress[NTHREAD];		/* __atomic */
static long forks, bad_child, bad_line, fork_failed;
static char path[64];

/*
 * Line n of the file: one long line in 25 (getline grows its buffer into
 * the mid-size and large paths, which take allocator locks while getline
 * holds the stream's lock), short ones otherwise.
 */
static size_t line_len(unsigned long n)
{
	return n % 25 == 0 ? 50000 + n % 20000 : 1 + (n * 37) % 500;
}

static void bump(long *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static int stopping(void)
{
	return __atomic_load_n(&stop, __ATOMIC_RELAXED);
}

static void *forker(void *arg)
{
	long *me = arg;

	while (!stopping()) {
		pid_t pid = fork();
		int st;

		if (pid == 0) {
			void *p = malloc(100), *q = malloc(100000), *r = malloc(1 << 20);

			if (!p || !q || !r)
				_exit(2);
			memset(q, 1, 100000);
			free(p);
			free(q);
			free(r);
			fflush(NULL);
			_exit(0);
		}
		if (pid < 0) {
			bump(&fork_failed);
			continue;
		}
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			bump(&bad_child);
		bump(&forks);
		bump(me);
	}
	return NULL;
}

static void *reader(void *arg)
{
	long *me = arg;
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned long n = 0;

	if (!f) {
		bump(&bad_line);
		return NULL;
	}
	while (!stopping()) {
		ssize_t got = getline(&line, &cap, f);

		if (got < 0) {
			rewind(f);
			n = 0;
			continue;
		}
		if ((size_t)got != line_len(n) + 1 || line[0] != 'a' + (char)(n % 26))
			bump(&bad_line);
		n++;
		/* a fresh buffer most of the time, so getline allocates under its lock */
		if (n % 4 != 1) {
			free(line);
			line = NULL;
			cap = 0;
		}
		bump(me);
	}
	free(line);
	fclose(f);
	return NULL;
}

static void *flusher(void *arg)
{
	long *me = arg;

	while (!stopping()) {
		fflush(NULL);
		bump(me);
	}
	return NULL;
}

static void *allocator(void *arg)
{
	long *me = arg;
	uint64_t x = (uintptr_t)arg * 0x9e3779b97f4a7c15ull;
	void *v[32] = { 0 };

	while (!stopping()) {
		unsigned i;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = (unsigned)(x % 32);
		free(v[i]);
		v[i] = malloc((x >> 8) % 8 ? 1 + (x >> 16) % 4096 : 1 + (x >> 16) % (512 * 1024));
		bump(me);
	}
	for (int i = 0; i < 32; i++)
		free(v[i]);
	return NULL;
}

static void die_hung(void)
{
	static const char msg[] = "not ok 1 # hang: a thread made no progress for 30 s\n";

	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : ct_quick() ? 1 : 3;
	void *(*fn[NTHREAD])(void *);
	pthread_t th[NTHREAD];
	long last[NTHREAD] = { 0 };
	int idle[NTHREAD] = { 0 };
	int joined[NTHREAD] = { 0 };
	FILE *w;
	int fd;

	tap_plan(3);
	strcpy(path, "/tmp/hak-fork-stdio-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || !(w = fdopen(fd, "w")))
		tap_bail("cannot create a temporary file");
	for (unsigned long n = 0; n < 500; n++) {
		size_t len = line_len(n);

		for (size_t k = 0; k < len; k++)
			fputc('a' + (char)(n % 26), w);
		fputc('\n', w);
	}
	fclose(w);

	for (int i = 0; i < NTHREAD; i++)
		fn[i] = i < NFORK ? forker : i < NFORK + NLINE ? reader :
			i < NFORK + NLINE + NFLUSH ? flusher : allocator;
	fflush(stdout);
	for (int i = 0; i < NTHREAD; i++)
		if (pthread_create(&th[i], NULL, fn[i], &progress[i]))
			tap_bail("pthread_create failed");

	/* the watchdog: only loads, sleeps and write() */
	for (int t = 0; t < secs * 10; t++) {
		struct timespec ts = { 0, 100000000 };

		nanosleep(&ts, NULL);
		for (int i = 0; i < NTHREAD; i++) {
			long now = __atomic_load_n(&progress[i], __ATOMIC_RELAXED);

			idle[i] = now == last[i] ? idle[i] + 1 : 0;
			last[i] = now;
			if (idle[i] > 300)
				die_hung();
		}
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (int t = 0; t < 300; t++) {
		struct timespec ts = { 0, 100000000 };
		int alive = 0;

		for (int i = 0; i < NTHREAD; i++) {
			if (!joined[i])
				joined[i] = pthread_tryjoin_np(th[i], NULL) == 0;
			alive += !joined[i];
		}
		if (!alive)
			break;
		if (t == 299)
			die_hung();
		nanosleep(&ts, NULL);
	}
	unlink(path);

	tap_diag("%d s: %ld forks, progress per thread:", secs, forks);
	for (int i = 0; i < NTHREAD; i++)
		tap_diag("  thread %d: %ld", i, last[i]);
	tap_ok(forks > 0 && fork_failed == 0, "%ld forks raced getline, fflush(NULL) and malloc",
	       forks);
	tap_ok(bad_child == 0, "every child allocated, flushed and exited 0 (%ld did not)", bad_child);
	tap_ok(bad_line == 0, "getline read back every line as written (%ld wrong)", bad_line);
	tap_finish();
}
