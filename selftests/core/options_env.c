// SPDX-License-Identifier: MIT
/*
 * options_env: HAKMEM_* variables with good and bad values (lib/options.c).
 *
 * The program runs itself again with one variable set, and the child
 * prints the value the allocator took. Proves that
 *  - a number, with or without a k/m/g suffix (either case), in bounds,
 *    is taken, silently;
 *  - anything else (empty, a sign, a space, a suffix alone, a suffix
 *    unknown or followed by more, digits past SIZE_MAX, a suffix that
 *    shifts past SIZE_MAX, under the minimum or over the maximum) is
 *    ignored: the default stays, and one line "hakmem: ignoring NAME=VALUE"
 *    goes to stderr;
 *  - the program runs on normally in every case (exit 0).
 */
#include "core_test.h"
#include "init.h"

struct row {
	const char *name;	/* the variable */
	const char *value;
	size_t *field;		/* where __hak_opt keeps it */
	long long want;		/* the value taken; -1: the default kept, reported */
};

#define OPT(f)	(&__hak_opt.f)

static const struct row rows[] = {
	{ "HAKMEM_PURGE_DELAY_MS", "250", OPT(purge_delay_ms), 250 },
	{ "HAKMEM_PURGE_DELAY_MS", "0", OPT(purge_delay_ms), 0 },
	{ "HAKMEM_PURGE_DELAY_MS", "2k", OPT(purge_delay_ms), 2048 },
	{ "HAKMEM_PURGE_DELAY_MS", "3M", OPT(purge_delay_ms), 3 << 20 },
	{ "HAKMEM_PURGE_DELAY_MS", "4g", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_PURGE_DELAY_MS", "3600001", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_PURGE_DELAY_MS", "", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_PURGE_DELAY_MS", "-5", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_PURGE_DELAY_MS", "+5", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_PURGE_DELAY_MS", " 5", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_PURGE_DELAY_MS", "5 ", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_PURGE_DELAY_MS", "k", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_PURGE_DELAY_MS", "M", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_PURGE_DELAY_MS", "5x", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_PURGE_DELAY_MS", "5kk", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_PURGE_DELAY_MS", "0x10", OPT(purge_delay_ms), -1 },
	{ "HAKMEM_BIGCACHE_MAX", "64m", OPT(bigcache_max), 64 << 20 },
	{ "HAKMEM_BIGCACHE_MAX", "1G", OPT(bigcache_max), 1 << 30 },
	{ "HAKMEM_BIGCACHE_MAX", "18446744073709551615", OPT(bigcache_max), -1 },
	{ "HAKMEM_BIGCACHE_MAX", "184467440737095516150", OPT(bigcache_max), -1 },
	{ "HAKMEM_BIGCACHE_MAX", "17179869184g", OPT(bigcache_max), -1 },
	{ "HAKMEM_BIGCACHE_MAX", "9223372036854775807", OPT(bigcache_max), 9223372036854775807LL },
	{ "HAKMEM_PROF_SAMPLE", "0", OPT(prof_sample), -1 },
	{ "HAKMEM_PROF_DEPTH", "65", OPT(prof_depth), -1 },
	{ "HAKMEM_STATS", "2", OPT(stats), -1 },
};

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* The child: take the options (a malloc runs the first slow path), print one. */
static int show(unsigned i)
{
	void *volatile p = malloc(100);

	free(p);
	printf("%zu\n", *rows[i].field);
	return 0;
}

/* Run row i in a child: its stdout (the value) and stderr (the reports). */
static int run_row(const char *self, unsigned i, size_t *value, char *err, size_t errlen,
		   int *status)
{
	int out[2], ep[2];
	char buf[64], idx[16];
	ssize_t n;
	size_t got = 0, egot = 0;
	pid_t pid;

	if (pipe(out) || pipe(ep))
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(out[1], 1);
		dup2(ep[1], 2);
		close(out[0]);
		close(ep[0]);
		snprintf(idx, sizeof(idx), "%u", i);
		setenv(rows[i].name, rows[i].value, 1);
		execl(self, self, "show", idx, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	close(ep[1]);
	while ((n = read(out[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	while ((n = read(ep[0], err + egot, errlen - 1 - egot)) > 0)
		egot += (size_t)n;
	err[egot] = 0;
	close(out[0]);
	close(ep[0]);
	if (waitpid(pid, status, 0) != pid)
		return -1;
	*value = strtoull(buf, NULL, 10);
	return got ? 0 : -1;
}

int main(int argc, char **argv)
{
	char self[4096], err[4096], line[256];
	unsigned i;

	if (argc == 3 && !strcmp(argv[1], "show"))
		return show((unsigned)atoi(argv[2]));
	{
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

		if (n <= 0)
			tap_skip_all("no /proc/self/exe");
		self[n] = 0;
	}
	/* the defaults, as a child with none of the variables set sees them */
	for (i = 0; i < ARRAY_SIZE_CT(rows); i++)
		unsetenv(rows[i].name);
	tap_plan(ARRAY_SIZE_CT(rows));
	for (i = 0; i < ARRAY_SIZE_CT(rows); i++) {
		const struct row *r = &rows[i];
		size_t v = 0, def = *r->field;
		int st = -1, ok;
		bool reported;

		/* this process read its options at its first malloc: defaults */
		if (run_row(self, i, &v, err, sizeof(err), &st))
			tap_bail("could not run the child for row %u", i);
		snprintf(line, sizeof(line), "hakmem: ignoring %s=%s (", r->name, r->value);
		reported = strstr(err, line) != NULL;
		if (r->want < 0)
			ok = v == def && reported && lines(err) == 1;
		else
			ok = v == (size_t)r->want && !err[0];
		ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
		tap_ok(ok, "%s=\"%s\": %s (took %zu%s)", r->name, r->value,
		       r->want < 0 ? "ignored, reported, default kept" : "taken",
		       v, reported ? ", reported" : "");
		if (!ok)
			tap_diag("status %#x, stderr: %s", st, err);
	}
	tap_finish();
}
