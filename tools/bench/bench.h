/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the hakmem benchmark programs (tools/bench/).
 *
 * Every program is plain C linked against the system libc only, so any
 * allocator can be swapped in with LD_PRELOAD.  Each prints exactly one
 * result line on stdout:
 *
 *   RESULT bench=<name> threads=<n> ops=<count> seconds=<s> ops_per_sec=<x>
 *          rss_peak_kb=<VmHWM> rss_end_kb=<VmRSS> [cpu_seconds=<c>]
 *          [key=value ...]
 *
 * (on one line).  tools/bench/run.sh parses the key=value pairs.
 * cpu_seconds is the process's user + system time between bench_start()
 * and bench_stop() (all threads, getrusage), printed by the programs that
 * time one window with those two: the CPU of the timed work alone, without
 * the process's start (the allocator's load and init) and exit, which
 * perf stat's task-clock includes (tools/bench/ab.py reads both).
 */
#ifndef HAK_BENCH_H
#define HAK_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <unistd.h>

#define BENCH_NOINLINE	__attribute__((noinline))
#define BENCH_UNUSED	__attribute__((unused))

/* splitmix64: used to seed and for one-off draws. */
static inline uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* xorshift64*: the per-thread fast generator. */
struct rng {
	uint64_t s;
};

static inline void rng_seed(struct rng *r, uint64_t seed)
{
	uint64_t t = seed;

	r->s = splitmix64(&t) | 1;
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t x = r->s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [lo, hi] (inclusive), multiply-shift instead of modulo. */
static inline size_t rng_range(struct rng *r, size_t lo, size_t hi)
{
	uint64_t span = (uint64_t)(hi - lo) + 1;

	return lo + (size_t)(((rng_next(r) >> 32) * span) >> 32);
}

/*
 * Log-uniform in [lo, hi]: every power-of-two band gets the same share of
 * draws, the shape of real size distributions over a wide range.
 */
static inline size_t rng_log_range(struct rng *r, size_t lo, size_t hi)
{
	unsigned lo_bits = 63 - __builtin_clzll(lo);
	unsigned hi_bits = 63 - __builtin_clzll(hi);
	unsigned b = (unsigned)rng_range(r, lo_bits, hi_bits);
	size_t base = (size_t)1 << b;
	size_t v = base + rng_range(r, 0, base - 1);

	if (v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	return v;
}

static inline double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Read a "Key:  N kB" line of a /proc file (status, smaps_rollup); 0 if not
 * found. With open/read into a stack buffer, not stdio: fopen calls malloc,
 * and an allocator that purges lazily would do its purge in that call, so
 * a reading meant to be taken "before any allocator call" (idle-rss's
 * rss_idle_kb) came after one.
 */
static BENCH_UNUSED long proc_file_kb(const char *path, const char *key)
{
	char buf[8192], *line;
	size_t klen = strlen(key), got = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	while (got < sizeof(buf) - 1 &&
	       (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = 0;
	for (line = buf; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
		if (!strncmp(line, key, klen) && line[klen] == ':')
			return strtol(line + klen + 1, NULL, 10);
	return 0;
}

/* A "Key:  N kB" line of /proc/self/status; 0 if not found. */
static BENCH_UNUSED long proc_status_kb(const char *key)
{
	return proc_file_kb("/proc/self/status", key);
}

static BENCH_UNUSED void die(const char *msg)
{
	fprintf(stderr, "bench: %s\n", msg);
	exit(2);
}

static BENCH_UNUSED void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		die("out of memory");
	return p;
}

/* Strict integer argument parsing: the runner passes numbers only. */
/*
 * Run fn once per element of the array arg (n elements of size bytes), each
 * in its own thread, and wait for all of them. The thread ids live on the
 * stack, so the allocator under test sees no call from here.
 */
static BENCH_UNUSED void run_threads(int n, void *(*fn)(void *), void *arg, size_t size)
{
	pthread_t tids[n > 0 ? n : 1];

	for (int i = 0; i < n; i++)
		if (pthread_create(&tids[i], NULL, fn, (char *)arg + (size_t)i * size))
			die("pthread_create failed");
	for (int i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
}

static BENCH_UNUSED long arg_long(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < 0) {
		fprintf(stderr, "bench: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}
/* The timed window's start and end: now_sec(), and the process's CPU then. */
static double bench_cpu[2] = { -1, -1 };

static inline double bench_cpu_now(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return -1;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static BENCH_UNUSED double bench_start(void)
{
	bench_cpu[0] = bench_cpu_now();
	return now_sec();
}

static BENCH_UNUSED double bench_stop(void)
{
	double t = now_sec();

	bench_cpu[1] = bench_cpu_now();
	return t;
}

/*
 * Print the result line.  extra is NULL or " key=value ..." (leading space).
 * The RSS numbers are read after the measured work, so rss_end_kb is what
 * the allocator still holds with the workload's end state live.
 */
static BENCH_UNUSED void bench_report(const char *name, int threads,
				      double ops, double secs,
				      const char *extra)
{
	long hwm = proc_status_kb("VmHWM");
	long rss = proc_status_kb("VmRSS");

	char cpu[40] = "";

	if (secs <= 0)
		secs = 1e-9;
	if (bench_cpu[0] >= 0 && bench_cpu[1] >= bench_cpu[0])
		snprintf(cpu, sizeof(cpu), " cpu_seconds=%.6f",
			 bench_cpu[1] - bench_cpu[0]);
	printf("RESULT bench=%s threads=%d ops=%.0f seconds=%.6f "
	       "ops_per_sec=%.0f rss_peak_kb=%ld rss_end_kb=%ld%s%s\n",
	       name, threads, ops, secs, ops / secs, hwm, rss, cpu,
	       extra ? extra : "");
	fflush(stdout);
}

/* Keep the compiler from proving a block is never read. */
static inline void touch(void *p, size_t n, unsigned char v)
{
	volatile unsigned char *c = p;

	c[0] = v;
	c[n - 1] = v;
}

#endif /* HAK_BENCH_H */
