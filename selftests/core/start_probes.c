// SPDX-License-Identifier: MIT
/*
 * start_probes: what a process's first malloc costs it besides memory:
 * the files it opens and the pages of the library's .bss it touches.
 *
 * A build or a shell script is thousands of short processes (benchmarks.md,
 * "Process start"). The first malloc opened /proc/self/status (the sandbox
 * probe), /proc/self/cgroup and a memory limit file per level of the
 * cgroup (three or four here), and /proc/sys/vm/overcommit_memory; and the
 * variables it read or wrote lay on 7 pages of .bss, a fault each (10-13 us
 * on the VM of the measurements). Now the cgroup's limit is read late
 * (lib/limit.c: past HAK_LIMIT_LAZY_BYTES mapped, or a purge delay into the
 * process's life), the superslab stock's first refill asks nothing
 * (lib/os.c, __hak_os_stock_fill), and those variables sit in the
 * hak_boot_* sections, on the page the loader clears anyway
 * (include/hak/compiler.h).
 *
 * A fresh process (this program run again through /proc/self/exe by
 * child_exec, its HAKMEM_MEMORY_LIMIT* unset and a purge delay of an hour,
 * so that only the size brings the cgroup's read) makes one malloc and one
 * free, then counts: the openat calls hakmem made (linked with
 * -Wl,--wrap=syscall: every system call of the library goes through
 * syscall(), and the wrapper counts SYS_openat) and the resident pages of
 * [__bss_start, _end) past the page .bss starts on (mincore: a page read
 * maps the zero page, which counts as resident, so reads count too). Then
 * it maps 16 MiB (past HAK_LIMIT_LAZY_BYTES): the cgroup's limit is read
 * then, and agrees with the one read whole (__hak_cgroup_limit). It
 * reports on its stderr, which child_exec captures.
 *
 * Bars: at most 2 opens (the sandbox probe's /proc/self/status, and one
 * to spare; main opened /proc/self/cgroup whether it exists or not, a
 * limit file per level and overcommit_memory: 7 here), at most 3 pages
 * of .bss (the page map's open bits: 1 or 2; main touched 8 in this
 * test). Deterministic, a few ms.
 */
#include <stdarg.h>
#include <sys/mman.h>
#include "core_test.h"
#include "child.h"
#include "os.h"
#include "purge.h"

#define MAX_OPENS	2
/*
 * The hugepage box's start-up state is not gathered (its collapse
 * candidates and counters, 2 pages with allyesconfig): left for later.
 */
#ifdef CONFIG_HAK_HUGEPAGE
# define MAX_BSS_PAGES	5
#else
# define MAX_BSS_PAGES	3
#endif

extern char __bss_start[], _end[];

/* In .data, not .bss (initialised): this test's own state is not counted. */
static volatile long nr_openat = -1;	/* counted from -1; volatile: gcc takes malloc for pure */
static char opened[1024] = "-";		/* the paths, for the report */

long __real_syscall(long nr, ...);
long __wrap_syscall(long nr, ...);

long __wrap_syscall(long nr, ...)
{
	long a[6];
	va_list ap;

	va_start(ap, nr);
	for (unsigned i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_openat) {
		size_t len = strlen(opened);

		nr_openat++;
		snprintf(opened + len, sizeof(opened) - len, " %s", (const char *)a[1]);
	}
	return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static char pages_at[512] = "-";	/* their addresses, for the report */

/* Resident pages of .bss from the first page boundary in it on. */
static long bss_pages(void)
{
	uintptr_t lo = ((uintptr_t)__bss_start + 4095) & ~(uintptr_t)4095;
	uintptr_t hi = ((uintptr_t)_end + 4095) & ~(uintptr_t)4095;
	unsigned char vec[4096];
	size_t n = (hi - lo) / 4096;
	long got = 0;

	if (hi <= lo)
		return 0;
	if (n > sizeof(vec) || mincore((void *)lo, hi - lo, vec))
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(pages_at);

		if (!(vec[i] & 1))
			continue;
		got++;
		snprintf(pages_at + len, sizeof(pages_at) - len, " __bss_start+%#lx",
			 (unsigned long)(lo + i * 4096 - (uintptr_t)__bss_start));
	}
	return got;
}

static int child(void)
{
	void *volatile p = malloc(16);
	long opens, pages, later;
	size_t lim, cg;
	char out[2000];
	int len;

	free((void *)p);
	opens = nr_openat + 1;
	pages = bss_pages();
	strncat(opened, " | then:", sizeof(opened) - strlen(opened) - 1);
	/* past HAK_LIMIT_LAZY_BYTES: the cgroup's limit is read now */
	p = malloc(2 * HAK_LIMIT_LAZY_BYTES);
	later = nr_openat + 1 - opens;
	lim = __hak_os_limit();
	cg = __hak_cgroup_limit();
	free((void *)p);
	len = snprintf(out, sizeof(out), "%ld %ld %ld %zu %zu %s\n# .bss pages touched:%s\n",
		       opens, pages, later, lim, cg, opened, pages_at + 1);
	return write(2, out, (size_t)len) == len ? 0 : 1;
}

/* The child's options: read at its first malloc, in the exec'd image. */
static void unset_limits(void)
{
	unsetenv("HAKMEM_MEMORY_LIMIT");
	unsetenv("HAKMEM_MEMORY_LIMIT_HARD");
}

int main(int argc, char **argv)
{
	static char *const env[] = { "HAKMEM_PURGE_DELAY_MS", "3600000", NULL };
	char *const args[] = { argv[0], "--child", NULL };
	struct child_result r;
	char paths[1400] = "";
	long opens = -1, pages = -1, later = -1;
	size_t lim = 0, cg = 1;

	if (argc == 2 && !strcmp(argv[1], "--child"))
		return child();
	tap_plan(3);
	child_exec(NULL, args, env, unset_limits, &r);
	if (r.status == -1 || !WIFEXITED(r.status) || WEXITSTATUS(r.status) ||
	    sscanf(r.err, "%ld %ld %ld %zu %zu %1399[^\n]", &opens, &pages, &later, &lim, &cg,
		   paths) < 5)
		tap_bail("the child failed (status %#x, output \"%s\")", r.status, r.err);
	printf("# files opened by the first malloc%s\n", paths + 1);
	if (strchr(r.err, '#'))
		printf("%s", strchr(r.err, '#'));
	tap_ok(opens >= 0 && opens <= MAX_OPENS,
	       "a process's first malloc and free open %ld files (at most %d)", opens, MAX_OPENS);
	tap_ok(pages >= 0 && pages <= MAX_BSS_PAGES,
	       "and touch %ld pages of .bss (at most %d)", pages, MAX_BSS_PAGES);
	tap_ok(later >= 1 && lim == cg,
	       "mapping past %zu MiB reads the cgroup's limit: %ld opens, limit %zu (read whole: %zu)",
	       HAK_LIMIT_LAZY_BYTES >> 20, later, lim, cg);
	tap_finish();
}
