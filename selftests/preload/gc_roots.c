// SPDX-License-Identifier: MIT
/*
 * gc_roots: what a conservative collector sees of hakmem.
 *
 * "segs": the bytes of libhakmem.so's writable PT_LOAD segments, which
 * Boehm GC (dl_iterate_phdr) scans at every collection and counts in its
 * root size, from which it decides how much to allocate before the next
 * collection; "none" when the library is not loaded.
 * "rss CMD ARGS...": runs CMD, its output to /dev/null, and prints its
 * peak resident set (KiB, getrusage of the child).
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static int seg_sum(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long *sum = arg;

	(void)size;
	if (!info->dlpi_name || !strstr(info->dlpi_name, "libhakmem"))
		return 0;
	sum[1] = 1;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD && (info->dlpi_phdr[i].p_flags & PF_W))
			sum[0] += info->dlpi_phdr[i].p_memsz;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "segs")) {
		unsigned long sum[2] = { 0, 0 };

		dl_iterate_phdr(seg_sum, sum);
		if (sum[1])
			printf("%lu\n", sum[0]);
		else
			printf("none\n");
		return 0;
	}
	if (argc > 2 && !strcmp(argv[1], "rss")) {
		struct rusage ru;
		int st;
		pid_t pid = fork();

		if (pid < 0)
			return 2;
		if (!pid) {
			if (!freopen("/dev/null", "w", stdout))
				_exit(126);
			execvp(argv[2], argv + 2);
			_exit(127);
		}
		if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			return 3;
		printf("%ld\n", ru.ru_maxrss);
		return 0;
	}
	fprintf(stderr, "usage: gc_roots segs | gc_roots rss CMD ARGS...\n");
	return 2;
}
