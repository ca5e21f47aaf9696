// SPDX-License-Identifier: MIT
/*
 * fork_storm: forks, thread exits, cancels, exit() and handler forks while
 * other threads malloc/calloc/posix_memalign/realloc/free blocks of every
 * size range (small, 32 KiB-1 MiB, 1-64 MiB); a child allocates, frees
 * blocks of the parent's other threads, may start threads and fork again
 * (two levels). Branch fk16; Documentation/reliability.md, "Fork, exit and
 * signals".
 *   -w N  allocating threads     -f N  forking threads (fork, vfork, posix_spawn)
 *   -t S  seconds                -c    threads exit and are replaced (with -s:
 *                                      the handler fork's child returns and allocates)
 *   -C    threads cancelled      -e    a thread calls exit() after 100-400 ms
 *   -s    threads signalled every 20-220 us; the handler forks (child _exit)
 * Build: cc -O2 -pthread -o X tools/repro/fork_storm.c; run under a timeout
 * (a hang is the failure): LD_PRELOAD=build/def/libhakmem.so timeout 60 ./X -w 16 -f 2 -e
 * Exit 0 and an "ok" line (not with -e) when every check and child passed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;
#define SLOTS 128
#define MAXT 64

static int nworkers = 4, nforkers = 2, secs = 2, mode_sig = 0, child_cont = 0, churn = 0, cancel_mode = 0, exit_mode = 0;
static volatile int stop;
static void *volatile slots[MAXT][SLOTS];
static volatile long progress, forks_done, bad;
static pthread_t workers[MAXT];

#define BAD() do { if (getenv("STORM_DBG")) fprintf(stderr, "bad at %d pid %d\n", __LINE__, getpid()); __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED); } while (0)
static uint64_t rnd(uint64_t *s) { *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return *s; }

static size_t pick_size(uint64_t *s)
{
	unsigned r = rnd(s) % 1000;
	if (r < 850) return 2 + rnd(s) % (r < 600 ? 512 : 32768);
	if (r < 985) return 32768 + rnd(s) % (1u << 20);
	return (1u << 20) + rnd(s) % (r < 997 ? (8u << 20) : (64u << 20));
}

static void stamp(void *p, size_t n) { ((unsigned char *)p)[0] = 0xa5; ((unsigned char *)p)[n - 1] = 0x5a; }
static void check(void *p) { if (((unsigned char *)p)[0] != 0xa5) { BAD(); } }

static void one_op(void *volatile *sl, uint64_t *s)
{
	unsigned i = rnd(s) % SLOTS;
	void *p = __atomic_exchange_n(&sl[i], NULL, __ATOMIC_ACQ_REL);
	unsigned r = rnd(s) % 10;
	size_t n = pick_size(s);
	if (!p) {
		if (r == 0) p = calloc(1, n);
		else if (r == 1) { if (posix_memalign(&p, 64 << (rnd(s) % 8), n)) p = NULL; }
		else p = malloc(n);
		if (!p) { if (n < (1u << 26)) BAD(); return; }
		stamp(p, n);
	} else if (r < 5) {
		check(p);
		free(p);
		return;
	} else {
		check(p);
		void *q = realloc(p, n);
		if (!q) { free(p); return; }
		p = q;
		check(p);
		stamp(p, n);
	}
	__atomic_store_n(&sl[i], p, __ATOMIC_RELEASE);
}

static void drain(void *volatile *sl)
{
	for (int i = 0; i < SLOTS; i++) {
		void *p = __atomic_exchange_n(&sl[i], NULL, __ATOMIC_ACQ_REL);
		if (p) { check(p); free(p); }
	}
}

static void *child_thr(void *a)
{
	uint64_t s = (uintptr_t)a * 77 + 1;
	void *volatile loc[SLOTS] = { 0 };
	for (int k = 0; k < 400; k++) one_op(loc, &s);
	drain(loc);
	return NULL;
}

/* child work: allocate heavily, free others' blocks, maybe thread + nested fork */
static void child_work(uint64_t s, int depth)
{
	void *volatile loc[SLOTS] = { 0 };
	/* free some orphan blocks of parent threads */
	for (int t = 0; t < nworkers; t++)
		for (int i = 0; i < SLOTS; i += 7) {
			void *p = slots[t][i];
			if (p) { slots[t][i] = NULL; check(p); free(p); }
		}
	for (int k = 0; k < 600; k++) one_op(loc, &s);
	if (depth < 2) {
		pthread_t th[2];
		int nt = rnd(&s) % 3;
		for (int i = 0; i < nt; i++) pthread_create(&th[i], NULL, child_thr, (void *)(uintptr_t)(s + i));
		pid_t pid = fork();
		if (pid == 0) { child_work(s * 3 + 1, depth + 1); drain(loc); _exit(bad ? 3 : 0); }
		for (int k = 0; k < 200; k++) one_op(loc, &s);
		for (int i = 0; i < nt; i++) pthread_join(th[i], NULL);
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
			if (pid >= 0) _exit(4);
		}
	}
	drain(loc);
}

static volatile int in_child;
static void *worker(void *a)
{
	int id = (int)(intptr_t)a;
	uint64_t s = id * 0x9e3779b97f4a7c15ull + 12345;
	long n = 0;
	if (cancel_mode) pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
	while (!stop) {
		if (in_child) {
			void *volatile loc[SLOTS] = { 0 };
			for (int k = 0; k < 300; k++) one_op(loc, &s);
			drain(loc);
			_exit(bad ? 3 : 0);
		}
		one_op(slots[id], &s);
		if (cancel_mode) pthread_testcancel();
		if (!(++n & 255)) __atomic_add_fetch(&progress, 1, __ATOMIC_RELAXED);
		if (churn && n > 2000) return NULL; /* exit; heap handed over, slots keep blocks */
	}
	return NULL;
}

static void do_fork(uint64_t *s)
{
	unsigned r = rnd(s) % 8;
	pid_t pid;
	int st;
	if (r == 0) {
		char *argv[] = { "/bin/true", NULL };
		if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ)) { BAD(); return; }
	} else if (r == 1) {
		pid = vfork();
		if (pid == 0) _exit(0);
	} else {
		pid = fork();
		if (pid == 0) {
			if (r == 2) _exit(0);
			child_work(*s, 0);
			if (r == 3) exit(bad ? 3 : 0);
			_exit(bad ? 3 : 0);
		}
	}
	if (pid < 0) { BAD(); return; }
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "child %d bad status %x (r=%u)\n", pid, st, r);
		BAD();
	}
	__atomic_add_fetch(&forks_done, 1, __ATOMIC_RELAXED);
}

static void *forker(void *a)
{
	uint64_t s = (uintptr_t)a * 31 + 7;
	void *volatile loc[SLOTS] = { 0 };
	while (!stop) {
		do_fork(&s);
		for (int k = 0; k < 20; k++) one_op(loc, &s);
	}
	drain(loc);
	return NULL;
}

/* signal handler fork */
static void on_sig(int sig)
{
	int e = errno;
	(void)sig;
	if (in_child) { errno = e; return; }
	pid_t pid = fork();
	if (pid == 0) {
		if (child_cont) { in_child = 1; errno = e; return; }
		_exit(0);
	}
	if (pid > 0) {
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st)) BAD();
		__atomic_add_fetch(&forks_done, 1, __ATOMIC_RELAXED);
	}
	errno = e;
}

static void *signaller(void *a)
{
	uint64_t s = 99;
	(void)a;
	while (!stop) {
		struct timespec ts = { 0, 20000 + rnd(&s) % 200000 };
		pthread_kill(workers[rnd(&s) % nworkers], SIGALRM);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void *exiter(void *a)
{
	(void)a;
	struct timespec ts = { 0, 100000000 + (getpid() % 7) * 50000000 };
	nanosleep(&ts, NULL);
	exit(0);
}

static void on_exit_h(void) { void *p = malloc(100); free(p); p = malloc(3 << 20); free(p); }

int main(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "w:f:t:sccCeh")) != -1) {
		switch (c) {
		case 'w': nworkers = atoi(optarg); break;
		case 'f': nforkers = atoi(optarg); break;
		case 't': secs = atoi(optarg); break;
		case 's': mode_sig = 1; break;
		case 'c': if (mode_sig) child_cont = 1; else churn = 1; break;
		case 'C': cancel_mode = 1; break;
		case 'e': exit_mode = 1; break;
		}
	}
	if (mode_sig) {
		struct sigaction sa = { 0 };
		sa.sa_handler = on_sig;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGALRM, &sa, NULL);
	}
	atexit(on_exit_h);
	pthread_t fk[MAXT], sg, ex;
	for (int i = 0; i < nworkers; i++) pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i);
	for (int i = 0; i < nforkers; i++) pthread_create(&fk[i], NULL, forker, (void *)(intptr_t)(i + 1));
	if (mode_sig) pthread_create(&sg, NULL, signaller, NULL);
	if (exit_mode) pthread_create(&ex, NULL, exiter, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	uint64_t s = 4242;
	for (;;) {
		struct timespec ts = { 0, 20000000 };
		nanosleep(&ts, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec >= secs) break;
		if (cancel_mode || churn) {
			int i = rnd(&s) % nworkers;
			if (cancel_mode) pthread_cancel(workers[i]);
			pthread_join(workers[i], NULL);
			pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i);
		}
	}
	stop = 1;
	if (mode_sig) pthread_join(sg, NULL);
	for (int i = 0; i < nworkers; i++) pthread_join(workers[i], NULL);
	for (int i = 0; i < nforkers; i++) pthread_join(fk[i], NULL);
	for (int i = 0; i < nworkers; i++) drain(slots[i]);
	printf("ok progress=%ld forks=%ld bad=%ld\n", progress, forks_done, bad);
	return bad ? 1 : 0;
}
