// SPDX-License-Identifier: MIT
/* A signal handler that mallocs and frees while the interrupted thread is
 * inside malloc/free/realloc of every size range. Not async-signal-safe by
 * POSIX: this records what happens (hang = deadlock on a lock this thread
 * holds; crash = state corrupted by the re-entry).
 * Build: cc -O2 -pthread -o X tools/repro/sig_malloc.c; run with
 * LD_PRELOAD=build/def/libhakmem.so timeout 30 ./X 300000 3000000 [threads 0|1].
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile long handled;
static int hsize;

static void on_sig(int sig)
{
	(void)sig;
	size_t n = (size_t)hsize;
	void *p = malloc(n);
	if (p) { memset(p, 1, n < 64 ? n : 64); free(p); }
	handled++;
}

static void *other(void *a)
{
	(void)a;
	for (;;) { void *p = malloc(1000); free(p); usleep(100); }
	return NULL;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 2000000;
	hsize = argc > 2 ? atoi(argv[2]) : 100;
	int threads = argc > 3 ? atoi(argv[3]) : 0;
	static const size_t sz[] = { 16, 100, 1000, 5000, 40000, 300000, 2 << 20 };
	void *keep[64] = { 0 };
	struct sigaction sa;
	struct itimerval it = { { 0, 50 }, { 0, 50 } };
	unsigned x = 1;

	if (threads) { pthread_t t; pthread_create(&t, NULL, other, NULL); }
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sigaction(SIGPROF, &sa, NULL);
	setitimer(ITIMER_PROF, &it, NULL);
	for (long i = 0; i < iters; i++) {
		x = x * 1103515245 + 12345;
		unsigned k = (x >> 8) % 64;
		size_t n = sz[(x >> 16) % 7] + (x >> 24) % 64;
		if (keep[k] && (x & 1))
			keep[k] = realloc(keep[k], n);
		else { free(keep[k]); keep[k] = malloc(n); }
	}
	printf("done, %ld signals handled\n", handled);
	return 0;
}
