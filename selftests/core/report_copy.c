// SPDX-License-Identifier: MIT
/*
 * report_copy: the resident figures of a report (malloc_info) are the
 * same whichever way its ranges reach the kernel. Since mi20 each layer
 * copies its ranges under its lock into a buffer the report maps for
 * itself, dropping the lock around that mmap (lib/os.h,
 * __hak_os_rss_reserve), and counts them after; when the kernel refuses
 * the buffer, each range is counted at once, under the lock, as before.
 * With LIVE large blocks (the large shards' counts past the first buffer,
 * so it is remapped bigger from shard to shard), a few blocks in BigCache
 * and the rest quiet, compared with the buffer:
 *   1. every mmap refused while the report runs (linked with --wrap=mmap):
 *      the same large, cached and kept figures, errno left alone;
 *   2. the report in a fork's child (same pages, its own buffer);
 *   3. only the buffer's first mapping refused: the first shard counted
 *      under its lock, the others copied into the buffer mapped for the
 *      second.
 * The program runs itself again with HAKMEM_PURGE_DELAY_MS=0: a decay
 * pass (at any slow path, fprintf's mallocs included) would otherwise
 * purge the cached blocks between two reports of a slow run.
 * hakmem only (the C library's malloc_info makes no such figures).
 */
#include <stdarg.h>
#include "core_test.h"

#define LIVE		6000
#define LIVE_LEN	(600u << 10)
#define CACHED		6
#define CACHED_LEN	(1u << 20)

void *__real_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off);
void *__wrap_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off);

static volatile int refuse;	/* 0: none; 1: every mmap; 2: the first only */
static volatile unsigned refused;

void *__wrap_mmap(void *a, size_t len, int prot, int flags, int fd, off_t off)
{
	if (refuse == 1 || (refuse == 2 && !refused)) {
		refused++;
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return __real_mmap(a, len, prot, flags, fd, off);
}

struct figs {
	long long large, cached, kept;
};

/* <total type="key" size="N"/> in the large heap's section; -1: absent. */
static long long large_total(const char *xml, const char *key)
{
	const char *h = strstr(xml, "name=\"large\">"), *s;
	char pat[64];

	if (!h)
		return -1;
	snprintf(pat, sizeof(pat), "<total type=\"%s\" size=\"", key);
	s = strstr(h, pat);
	return s ? strtoll(s + strlen(pat), NULL, 10) : -1;
}

/* A report's figures; errno is checked to be left as it was. */
static int report(struct figs *f, int *errno_ok)
{
	static char xml[8192];
	FILE *fp = fmemopen(xml, sizeof(xml), "w");
	int rc;

	if (!fp)
		return -1;
	errno = 777;
	rc = malloc_info(0, fp);
	*errno_ok = errno == 777;
	fclose(fp);
	xml[sizeof(xml) - 1] = '\0';
	f->large = large_total(xml, "resident");
	f->cached = large_total(xml, "cached_resident");
	f->kept = large_total(xml, "kept_resident");
	return rc || f->large < 0 || f->cached < 0 || f->kept < 0 ? -1 : 0;
}

static bool same(const struct figs *a, const struct figs *b)
{
	return a->large == b->large && a->cached == b->cached && a->kept == b->kept;
}

int main(int argc, char **argv)
{
	static char *live[LIVE];
	char *c[CACHED];
	struct figs base, off, child, half;
	int eok, eok_off, eok_half, st;
	pid_t pid;
	unsigned i;

	if (!CT_HAKMEM)
		tap_skip_all("hakmem's reports only");
	if (argc > 0)
		ct_no_decay(argv);
	tap_plan(4);
	for (i = 0; i < LIVE; i++) {
		live[i] = malloc(ct_opaque(LIVE_LEN));
		if (!live[i])
			tap_bail("malloc");
		live[i][0] = 1;
		if (i & 1)
			live[i][LIVE_LEN - 1] = 1;
	}
	for (i = 0; i < CACHED; i++) {
		c[i] = malloc(ct_opaque(CACHED_LEN));
		if (!c[i])
			tap_bail("malloc");
		memset(c[i], 1, 3 * 4096);
	}
	for (i = 0; i < CACHED; i++)
		free(c[i]);	/* BigCache keeps them (when it is on) */

	if (report(&base, &eok))
		tap_bail("malloc_info");
	tap_diag("large resident %lld, cached %lld, kept %lld", base.large, base.cached,
		 base.kept);
	tap_ok(eok && base.large >= (long long)LIVE * 4096,
	       "the report counts the live blocks' touched pages (%lld bytes, errno kept: %d)",
	       base.large, eok);

	refused = 0;
	refuse = 1;
	st = report(&off, &eok_off);
	refuse = 0;
	tap_ok(!st && eok_off && refused && same(&base, &off),
	       "its buffer refused (%u mmaps): large %lld, cached %lld, kept %lld, as with it",
	       refused, off.large, off.cached, off.kept);

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		tap_bail("fork");
	if (!pid)
		_exit(report(&child, &eok) || !eok || !same(&base, &child) ? 1 : 0);
	tap_ok(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st),
	       "a fork's child reports the same figures");

	refused = 0;
	refuse = 2;
	st = report(&half, &eok_half);
	refuse = 0;
	tap_ok(!st && eok_half && refused == 1 && same(&base, &half),
	       "its first mapping refused (%u): large %lld, cached %lld, kept %lld",
	       refused, half.large, half.cached, half.kept);

	for (i = 0; i < LIVE; i++)
		free(live[i]);
	tap_finish();
}
