// SPDX-License-Identifier: MIT
/*
 * errno_first: the first allocator call of a process, and the first of a
 * new thread, keep errno when they succeed.
 *
 * The first call runs the allocator's set-up (options, the cgroup memory
 * limit read from files that may not exist, fork handlers, a thread key)
 * and a thread's first call attaches a heap: system calls whose failures
 * must not show. A program that does `errno = 0; x = malloc(n); ...
 * strtol(...); if (errno)` would otherwise see ENOENT from a cgroup file
 * hakmem looked for. (Under LD_PRELOAD the first malloc of a C program
 * that allocates nothing before main is its own, in main.)
 *
 * Each function gets a fresh process: this program runs itself again
 * (/proc/self/exe) with the function's number, and the child's main makes
 * that call before anything else (stdio included), with errno = EDOM.
 * Also built against the C library's malloc; it passes there too.
 */
#include <pthread.h>
#include <sys/wait.h>

#include "core_test.h"

#define SENTINEL	EDOM

/* Through volatile pointers: gcc may assume its builtins keep errno. */
static void *(*volatile const v_malloc)(size_t) = malloc;
static void *(*volatile const v_calloc)(size_t, size_t) = calloc;
static void *(*volatile const v_realloc)(void *, size_t) = realloc;
static int (*volatile const v_pm)(void **, size_t, size_t) = posix_memalign;
static void *(*volatile const v_aligned)(size_t, size_t) = aligned_alloc;
static void *(*volatile const v_memalign)(size_t, size_t) = memalign;
static void *(*volatile const v_valloc)(size_t) = valloc;
static void (*volatile const v_free)(void *) = free;
static size_t (*volatile const v_usable)(void *) = malloc_usable_size;
static int (*volatile const v_trim)(size_t) = malloc_trim;

static const char *const calls[] = {
	"malloc(64)", "malloc(100000)", "malloc(300000)", "malloc(8 MiB)",
	"malloc(40 MiB)", "calloc(1, 64)", "calloc(1, 8 MiB)", "realloc(NULL, 64)",
	"posix_memalign(&p, 64, 64)", "posix_memalign(&p, 1 MiB, 100)",
	"aligned_alloc(64, 64)", "memalign(4096, 100000)", "valloc(64)",
	"free(NULL)", "malloc_usable_size(NULL)", "malloc_trim(0)",
};

/* The call of number i; 1 for a success (a block, or no result to check). */
static int call(int i)
{
	void *p = NULL;

	switch (i) {
	case 0: p = v_malloc(64); break;
	case 1: p = v_malloc(100000); break;
	case 2: p = v_malloc(300000); break;
	case 3: p = v_malloc(8 << 20); break;
	case 4: p = v_malloc(40 << 20); break;
	case 5: p = v_calloc(1, 64); break;
	case 6: p = v_calloc(1, 8 << 20); break;
	case 7: p = v_realloc(NULL, 64); break;
	case 8: if (v_pm(&p, 64, 64)) p = NULL; break;
	case 9: if (v_pm(&p, 1 << 20, 100)) p = NULL; break;
	case 10: p = v_aligned(64, 64); break;
	case 11: p = v_memalign(4096, 100000); break;
	case 12: p = v_valloc(64); break;
	case 13: v_free(NULL); return 1;
	case 14: return v_usable(NULL) == 0;
	case 15: v_trim(0); return 1;
	}
	return p != NULL;
}

/* The child: the call first, then the verdict as the exit status. */
static int child(int i)
{
	int ok, err;

	errno = SENTINEL;
	ok = call(i);
	err = errno;
	if (!ok)
		return 2;
	if (err != SENTINEL) {
		printf("# %s: errno %d after a success\n", calls[i], err);
		return 1;
	}
	return 0;
}

static void *thread_first(void *arg)
{
	int *err = arg;
	void *p;

	errno = SENTINEL;
	p = v_malloc(64);
	*err = p ? errno : -1;
	v_free(p);
	return NULL;
}

int main(int argc, char **argv)
{
	int err = 0;
	pthread_t t;

	if (argc == 3 && !strcmp(argv[1], "--call"))
		return child(atoi(argv[2]));
	tap_plan(ARRAY_SIZE_CT(calls) + 1);
	for (size_t i = 0; i < ARRAY_SIZE_CT(calls); i++) {
		char num[16];
		int st = 0, rc;
		pid_t pid;

		snprintf(num, sizeof(num), "%zu", i);
		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			execl("/proc/self/exe", argv[0], "--call", num, (char *)NULL);
			_exit(3);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid)
			tap_bail("fork/waitpid failed");
		rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		tap_ok(rc == 0, "first call of a process: %s keeps errno%s", calls[i],
		       rc == 2 ? " (the call failed)" : rc == 3 ? " (exec failed)" :
		       rc < 0 ? " (killed)" : "");
	}
	if (pthread_create(&t, NULL, thread_first, &err) || pthread_join(t, NULL))
		tap_bail("pthread_create failed");
	tap_ok(err == SENTINEL, "first malloc of a new thread keeps errno (got %d)", err);
	tap_finish();
}
