// SPDX-License-Identifier: MIT
/*
 * hp_cancel: a thread cancelled while a heap-profile dump it writes is
 * blocked must not leave the profile lock held.
 *
 * A dump holds the profile lock while it writes the file, and write() is
 * a cancellation point. A thread cancelled there was unwound with the lock
 * held: every later sample, sampled free, dump and fork then spun on it
 * for good (found by an exit-and-fork stress, branch fk16). Two ways in:
 *  1. hak_prof_dump() called by the thread;
 *  2. a dump asked for by HAKMEM_PROF_SIGNAL, written by the thread's next
 *     sampled malloc or free: malloc was a cancellation point too.
 * The file is a FIFO made full beforehand (its buffer shrunk to a page,
 * filled by a non-blocking writer of our own), so the dump's write blocks
 * until we read. The test waits until the thread sits in write(), cancels
 * it, drains the FIFO and joins it; then a dump and sampled allocations of
 * the main thread must complete (a watchdog fails the test after 20 s).
 *
 * Runs itself again in a child with HAKMEM_PROF=1 (read at the first
 * malloc), in a directory of its own that it removes after.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* F_SETPIPE_SZ */
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <hakmem/hakmem.h>
#include "tap.h"

#define KEEP	2000

static char dir[64], fifo[128];
static int mode;			/* 0: hak_prof_dump(), 1: signalled dump */
static volatile pid_t dumper_tid;
static volatile int dump_rc = 1;

static void *dumper(void *arg)
{
	(void)arg;
	dumper_tid = (pid_t)syscall(SYS_gettid);
	if (mode == 0) {
		dump_rc = hak_prof_dump(fifo);
		return NULL;
	}
	raise(SIGUSR2);			/* HAKMEM_PROF_SIGNAL: the next sample dumps */
	for (;;) {
		void *volatile p = malloc(50000);	/* volatile: not elided */

		free(p);
		pthread_testcancel();
	}
	return NULL;
}

static void *idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* Is thread tid inside write(2)? (/proc/self/task/tid/syscall) */
static int in_write(pid_t tid)
{
	char path[64], buf[64];
	int fd, n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = (int)read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return atoi(buf) == SYS_write && buf[0] != '-';
}

static void on_alarm(int sig)
{
	static const char msg[] = "not ok # hang: the profile lock left held, or a dump that never ends\n";

	(void)sig;
	if (write(STDOUT_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(2);
	_exit(1);
}

/* One round: the dump in a thread blocks on the full FIFO, is cancelled. */
static void round_cancel(const char *what)
{
	static char buf[65536];
	pthread_t t;
	int fd, waited = 0;

	unlink(fifo);
	if (mkfifo(fifo, 0600))
		tap_bail("mkfifo %s: %s", fifo, strerror(errno));
	/* read-write: opening it never blocks, for us or the dumper */
	fd = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		tap_bail("open %s: %s", fifo, strerror(errno));
	fcntl(fd, F_SETPIPE_SZ, 4096);
	memset(buf, 'x', sizeof(buf));
	while (write(fd, buf, sizeof(buf)) > 0)
		;
	dumper_tid = 0;
	dump_rc = 1;
	pthread_create(&t, NULL, dumper, NULL);
	while (waited < 20000 && !(dumper_tid && in_write(dumper_tid))) {
		struct timespec ts = { 0, 1000000 };

		nanosleep(&ts, NULL);
		waited++;
	}
	tap_ok(waited < 20000, "%s: the dump blocks in write() on the full FIFO", what);
	pthread_cancel(t);
	/* drain until the thread ends: a dump not cancelled finishes its writes */
	alarm(20);
	while (pthread_tryjoin_np(t, NULL)) {
		struct timespec ts = { 0, 1000000 };

		while (read(fd, buf, sizeof(buf)) > 0)
			;
		nanosleep(&ts, NULL);
	}
	alarm(0);
	close(fd);
	unlink(fifo);

	alarm(20);
	for (int i = 0; i < 20000; i++) {
		void *volatile p = malloc(5000 + (size_t)(i % 100));

		free(p);
	}
	tap_ok(hak_prof_dump("/dev/null") == 0, "%s: a dump and 20000 sampled mallocs complete after", what);
	alarm(0);
	if (mode == 0)
		tap_diag("hak_prof_dump in the cancelled thread returned %d", dump_rc);
}

/* Run the test in a child with the profiler on; remove its files after. */
static int run_child(char **argv)
{
	struct dirent *e;
	DIR *d;
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		tap_bail("fork/waitpid: %s", strerror(errno));
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		char path[384];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(int argc, char **argv)
{
	static void *keep[KEEP];

	if (!getenv("HP_CANCEL_CHILD")) {
		const char *tmp = getenv("TMPDIR");

		snprintf(dir, sizeof(dir), "%s/hp_cancel.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir))
			tap_bail("mkdtemp: %s", strerror(errno));
		setenv("HP_CANCEL_CHILD", dir, 1);
		setenv("HAKMEM_PROF", "1", 1);
		setenv("HAKMEM_PROF_SAMPLE", "4096", 1);
		setenv("HAKMEM_PROF_SIGNAL", "12", 1);	/* SIGUSR2 */
		setenv("HAKMEM_PROF_FORMAT", "collapsed", 1);
		snprintf(fifo, sizeof(fifo), "%s/out", dir);
		setenv("HAKMEM_PROF_OUT", fifo, 1);
		return run_child(argv);
	}
	(void)argc;
	snprintf(dir, sizeof(dir), "%s", getenv("HP_CANCEL_CHILD"));
	signal(SIGALRM, on_alarm);
	tap_plan(4);
	/*
	 * pthread_cancel() loads libgcc_s at its first call, and the loader
	 * allocates (samples, so takes the profile lock): load it now, not
	 * while the dumper holds the lock and waits for us to read.
	 */
	{
		pthread_t t;

		pthread_create(&t, NULL, idle, NULL);
		pthread_cancel(t);
		pthread_join(t, NULL);
	}
	/* live sampled blocks, so that a dump has lines to write */
	for (int i = 0; i < KEEP; i++)
		keep[i] = malloc(5000 + (size_t)i);

	mode = 0;
	snprintf(fifo, sizeof(fifo), "%s/dump", dir);
	round_cancel("hak_prof_dump");

	/* the signalled dump's name: HAKMEM_PROF_OUT.<pid>.<seq>.folded */
	mode = 1;
	snprintf(fifo, sizeof(fifo), "%s/out.%d.1.folded", dir, (int)getpid());
	round_cancel("HAKMEM_PROF_SIGNAL dump in malloc");

	for (int i = 0; i < KEEP; i++)
		free(keep[i]);
	tap_finish();
}
