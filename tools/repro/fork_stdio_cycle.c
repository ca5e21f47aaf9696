// SPDX-License-Identifier: MIT
/*
 * The cycle a handler fork cannot get out of (Documentation/reliability.md,
 * "Fork residuals"): the stream-list lock held inside stdio by a thread that
 * waits, through a stream lock, for an allocator lock the fork's own
 * interrupted frame holds.
 *
 *   U (main): in malloc, right after its first allocator lock L, "a signal
 *      handler" (the wrapped try-lock) forks.
 *   S2: holds a stream's lock (flockfile, as getline/getdelim and every
 *      first write do) and allocates under it: waits for L.
 *   S1: fflush(NULL): holds the stream-list lock, waits for S2's stream.
 *   U's fork: hakmem's prepare, and glibc's fork after every prepare
 *      handler (posix/fork.c:65 in 2.36), take the stream-list lock: U
 *      waits for S1, S1 for S2, S2 for U's frame, which cannot let go of L
 *      before the handler's fork returns.
 *
 * Build and run (statically, so the wrap reaches the allocator's own calls):
 *   cc -O2 -pthread -o /tmp/fsc tools/repro/fork_stdio_cycle.c \
 *      build/def/libhakmem.a -Wl,--wrap=pthread_mutex_trylock && /tmp/fsc
 * It prints whether the fork completed within 5 s; with hakmem it hangs
 * (the scenario's child is killed by its alarm), by construction. With -n
 * (no S1: nobody holds the stream-list lock) the same fork completes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);

static volatile pid_t u_tid, s1_tid, s2_tid;
static volatile int arm, go_s2, go_s1, no_s1;
static FILE *fp;
/* kept, so the compiler does not drop a malloc/free pair */
static void *volatile keep;

static void big(void)
{
	keep = malloc(3u << 20);
	free(keep);
}

/* Is thread tid blocked in futex? */
static int in_futex(pid_t tid)
{
	char path[64], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return atoi(buf) == SYS_futex;
}

static int wait_futex(pid_t tid)
{
	for (int i = 0; i < 1000; i++) {
		if (in_futex(tid))
			return 1;
		usleep(1000);
	}
	return 0;
}

static void say(const char *s)
{
	if (write(2, s, strlen(s)) < 0)
		_exit(7);
}

int __wrap_pthread_mutex_trylock(pthread_mutex_t *m)
{
	int r = __real_pthread_mutex_trylock(m);
	pid_t pid;

	if (r || !arm || gettid() != u_tid)
		return r;
	arm = 0;
	/* as a handler that interrupted U right after it took m */
	go_s2 = 1;
	if (!wait_futex(s2_tid)) {
		say("S2 did not wait for the frame's lock: not set up\n");
		_exit(3);
	}
	go_s1 = 1;
	if (!no_s1 && !wait_futex(s1_tid)) {
		say("S1 did not wait for S2's stream: not set up\n");
		_exit(3);
	}
	say(no_s1 ? "U's handler forks: S2 holds its stream and waits for U's frame\n" :
	    "U's handler forks: S1 holds the stream-list lock, S2 its stream and waits for U's frame\n");
	pid = fork();
	if (pid == 0)
		_exit(0);
	say(pid > 0 ? "the fork completed\n" : "the fork failed\n");
	return r;
}

static void *s2(void *arg)
{
	(void)arg;
	s2_tid = gettid();
	while (!go_s2)
		usleep(100);
	flockfile(fp);
	big();				/* getdelim's realloc, under the stream lock */
	funlockfile(fp);
	return NULL;
}

static void *s1(void *arg)
{
	(void)arg;
	s1_tid = gettid();
	while (!go_s1)
		usleep(100);
	if (!no_s1)
		fflush(NULL);			/* the list lock, then every stream's lock */
	return NULL;
}

int main(int argc, char **argv)
{
	pid_t pid;
	int st;

	no_s1 = argc > 1 && !strcmp(argv[1], "-n");
	pid = fork();
	if (pid == 0) {
		pthread_t t1, t2;
		static char buf[64];

		alarm(5);
		fp = fmemopen(buf, sizeof(buf), "w");
		big();			/* the large path set up */
		if (!fp || pthread_create(&t2, NULL, s2, NULL) || pthread_create(&t1, NULL, s1, NULL))
			_exit(4);
		while (!s1_tid || !s2_tid)
			usleep(1000);
		u_tid = gettid();
		arm = 1;
		big();
		pthread_join(t2, NULL);
		pthread_join(t1, NULL);
		_exit(0);
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		printf("hung: the fork waited for the stream-list lock for good (killed after 5 s)\n");
	else
		printf("completed: status 0x%x\n", (unsigned)st);
	return 0;
}
