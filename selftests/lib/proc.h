/* SPDX-License-Identifier: MIT */
/*
 * What the tests read about their own process: a /proc file, a value of
 * /proc/self/status, the CPUs they may run on. Reads use open and read
 * only, never stdio: a test may call them with an allocator lock held by a
 * frozen frame (the fork tests), before a resource limit it is about to
 * set, or in an idle window that an allocation would disturb (a malloc
 * ticks the decay pass: the purge and background-purge tests).
 */
#ifndef HAK_SELFTEST_PROC_H
#define HAK_SELFTEST_PROC_H

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read path whole into buf (NUL-terminated). Its length, or -1. */
static inline ssize_t proc_read_raw(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return n;
}

/*
 * Threads of this process whose name starts with name; *tid (may be NULL)
 * the first one's id. -1 if /proc/self/task cannot be read. Not for the
 * windows above: opendir allocates.
 */
static inline int proc_threads_named(const char *name, pid_t *tid)
{
	char path[300], comm[64];
	struct dirent *d;
	DIR *dir = opendir("/proc/self/task");
	int n = 0;

	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", d->d_name);
		if (proc_read_raw(path, comm, sizeof(comm)) <= 0 ||
		    strncmp(comm, name, strlen(name)))
			continue;
		if (!n++ && tid)
			*tid = (pid_t)atoi(d->d_name);
	}
	closedir(dir);
	return n;
}

/* A value of /proc/self/status in KiB ("VmRSS", "VmSize"), or -1. */
static inline long proc_status_kib(const char *key)
{
	char buf[4096], *p = buf;
	size_t kl = strlen(key);

	if (proc_read_raw("/proc/self/status", buf, sizeof(buf)) <= 0)
		return -1;
	/* A key starts a line and ends at its colon ("VmRSS:" only). */
	while ((p = strstr(p, key))) {
		if ((p == buf || p[-1] == '\n') && p[kl] == ':')
			return strtol(p + kl + 1, NULL, 10);
		p += kl;
	}
	return -1;
}

/* The CPUs this process may run on (1 when it cannot be read). */
static inline unsigned proc_cpus(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	n = CPU_COUNT(&set);
	return n > 0 ? (unsigned)n : 1;
}

/*
 * The machine's runnable tasks per online CPU (the 1-minute load average
 * over the CPU count), 0 when it cannot be read. A test whose bound is a
 * wait for a default-policy thread scales it by this: such a thread gets
 * its CPU in turn with every other runnable task there.
 */
static inline double proc_load_per_cpu(void)
{
	char buf[128];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (proc_read_raw("/proc/loadavg", buf, sizeof(buf)) <= 0 || cpus < 1)
		return 0;
	return strtod(buf, NULL) / (double)cpus;
}

#endif
