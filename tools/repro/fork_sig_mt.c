// SPDX-License-Identifier: MIT
/* fork() from a signal handler that interrupted malloc, in a process with
 * a second (idle) thread. The handler's child _exit()s at once.
 * Build: cc -O2 -pthread -o X tools/repro/fork_sig_mt.c; run with
 * LD_PRELOAD=build/def/libhakmem.so timeout 100 ./X 20000 (a hang is probabilistic;
 * selftests/core/fork_signal_mt makes it likelier).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile long forks;

static void on_sig(int sig)
{
	(void)sig;
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	if (p > 0) {
		int st;
		waitpid(p, &st, 0);
	}
	forks++;
}

static void *idle(void *a) { (void)a; for (;;) pause(); return NULL; }

static void *sender(void *a)
{
	pthread_t main_t = *(pthread_t *)a;
	for (;;) { pthread_kill(main_t, SIGUSR1); usleep(200); }
	return NULL;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 2000000;
	static const size_t sz[] = { 16, 100, 1000, 5000, 40000, 300000, 2 << 20 };
	void *keep[64] = { 0 };
	unsigned x = 1;
	pthread_t t, me = pthread_self();
	sigset_t s;

	sigemptyset(&s); sigaddset(&s, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	pthread_create(&t, NULL, idle, NULL);
	pthread_create(&t, NULL, sender, &me);
	signal(SIGUSR1, on_sig);
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	for (long i = 0; i < iters; i++) {
		x = x * 1103515245 + 12345;
		unsigned k = (x >> 8) % 64;
		size_t n = sz[(x >> 16) % 7] + (x >> 24) % 64;
		if (keep[k] && (x & 1))
			keep[k] = realloc(keep[k], n);
		else { free(keep[k]); keep[k] = malloc(n); }
	}
	printf("done, %ld forks\n", forks);
	return 0;
}
