// SPDX-License-Identifier: MIT
/*
 * limit_cgroup: near its cgroup's memory limit by memory that is not
 * hakmem's, a process gets its caches purged.
 *
 * The OS layer counts hakmem's own mappings against the limit, and only
 * those raised the "near" flag. The kernel counts all of the cgroup's
 * memory: python3's own arenas (mmap'd by the interpreter), shared memory,
 * the other processes of a container. ml34: python3 churning a dict with
 * four threads needed a 232 MiB cgroup under perf where glibc needed 225;
 * hakmem's 155 MiB of mappings never came within 1/8 of the limit, so its
 * caches stayed while the cgroup's OOM killer struck. The tick now reads
 * the cgroup's usage, less its page cache, every quarter of the delay.
 *
 * A child runs in a fresh memory cgroup (v1, or v2 where it is mounted
 * unified and the memory controller reaches the new directory) of 64 MiB:
 * it caches two 1 MiB blocks, touches directly mapped pages until the
 * cgroup's usage (read here with stdio) is within 1/8 of the limit, then
 * takes and frees a 1 MiB block (a tick each) for up to 2 s: a purge near
 * the limit must come, with hakmem's own mappings far below the mark.
 * Skipped where no cgroup directory can be made (not root, no memory
 * controller, v2 without it delegated).
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "core_test.h"
#include "os.h"
#include "purge.h"

#define LIMIT		(64UL << 20)

static char cg[512];
static int cg_v2;

static size_t limit_purges(void)
{
	struct hak_purge_stats st;

	__hak_purge_stats(&st);
	return st.limit_purges;
}

static unsigned long long file_num(const char *dir, const char *name)
{
	char path[600];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* The cgroup's usage less its page cache, read with stdio. */
static unsigned long long cg_used(const char *dir, int v2)
{
	char path[600], key[64];
	unsigned long long used = file_num(dir, v2 ? "memory.current" : "memory.usage_in_bytes");
	unsigned long long v, file = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	f = fopen(path, "r");
	if (!f)
		return used;
	while (fscanf(f, "%63s %llu", key, &v) == 2)
		if (!strcmp(key, v2 ? "active_file" : "total_active_file") ||
		    !strcmp(key, v2 ? "inactive_file" : "total_inactive_file"))
			file += v;
	fclose(f);
	return file < used ? used - file : 0;
}

/* In the cgroup (argv: dir, v2): 0 passed, 1 failed, 3 no limit read. */
static int child(const char *dir, int v2)
{
	void *a = malloc(1UL << 20), *b = malloc(1UL << 20);	/* the first: init */
	size_t lim = __hak_os_limit(), base, mapped, touched = 0, got = 0;
	unsigned long long used;
	unsigned char *m;
	unsigned long t0;

	if (lim != LIMIT) {
		printf("# the limit read: %zu, not the cgroup's %lu\n", lim, LIMIT);
		return 3;
	}
	free(a);
	free(b);			/* two 1 MiB blocks cached */
	m = mmap(NULL, LIMIT, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	while ((used = cg_used(dir, v2)) <= LIMIT - LIMIT / 8 + (1UL << 20) &&
	       touched < LIMIT - (4UL << 20)) {
		memset(m + touched, 1, 1UL << 20);
		touched += 1UL << 20;
	}
	base = limit_purges();
	mapped = __hak_os_mapped();
	t0 = tst_coarse_ms();
	while (tst_coarse_ms() - t0 < 2000 && limit_purges() == base) {
		void *volatile c = malloc(1UL << 20);

		free((void *)c);
		tst_sleep_ms(5);
	}
	got = limit_purges() - base;
	printf("# cgroup %s: %zu MiB touched outside hakmem, usage less page cache %llu MiB "
	       "of %lu; hakmem's mappings %zu MiB; %zu purges near the limit in %lu ms\n",
	       v2 ? "v2" : "v1", touched >> 20, used >> 20, LIMIT >> 20, mapped >> 20, got,
	       tst_coarse_ms() - t0);
	munmap(m, LIMIT);
	return mapped < LIMIT - LIMIT / 8 && got ? 0 : 1;
}

/* A fresh directory below this process's memory cgroup, its limit set. */
static bool make_cgroup(void)
{
	char line[600], base[600] = "", path[700];
	FILE *f = fopen("/proc/self/cgroup", "r");
	struct stat sb;
	int fd;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2, *nl = strchr(line, '\n'), *mem;

		if (nl)
			*nl = '\0';
		c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		mem = strstr(c1, "memory");
		if (mem && mem < c2 && (mem[-1] == ':' || mem[-1] == ',') &&
		    (mem[6] == ':' || mem[6] == ',')) {
			snprintf(base, sizeof(base), "/sys/fs/cgroup/memory%s", c2 + 1);
			cg_v2 = 0;
			break;
		}
		if (!strncmp(line, "0::", 3) && !stat("/sys/fs/cgroup/cgroup.controllers", &sb)) {
			snprintf(base, sizeof(base), "/sys/fs/cgroup%s", c2 + 1);
			cg_v2 = 1;
		}
	}
	fclose(f);
	if (!base[0])
		return false;
	snprintf(cg, sizeof(cg), "%s/hak-limit-cgroup.%d", base, (int)getpid());
	if (mkdir(cg, 0755))
		return false;
	snprintf(path, sizeof(path), "%s/%s", cg,
		 cg_v2 ? "memory.max" : "memory.limit_in_bytes");
	fd = open(path, O_WRONLY);
	snprintf(line, sizeof(line), "%lu\n", LIMIT);
	if (fd < 0 || write(fd, line, strlen(line)) != (ssize_t)strlen(line)) {
		if (fd >= 0)
			close(fd);
		rmdir(cg);
		return false;
	}
	close(fd);
	return true;
}

int main(int argc, char **argv)
{
	char path[700], pid[32], v2s[4];
	int status = -1, fd;
	pid_t p;

	if (argc > 3 && !strcmp(argv[1], "child"))
		return child(argv[2], atoi(argv[3]));
	tap_plan(1);
	if (geteuid() != 0 || !make_cgroup())
		tap_skip_all("no memory cgroup directory can be made here");
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	snprintf(v2s, sizeof(v2s), "%d", cg_v2);
	fflush(stdout);
	p = fork();
	if (p == 0) {
		char *args[] = { argv[0], "child", cg, v2s, NULL };

		fd = open(path, O_WRONLY);
		snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		if (fd < 0 || write(fd, pid, strlen(pid)) < 0)
			_exit(4);
		close(fd);
		execv(argv[0], args);	/* the first malloc reads the limit */
		_exit(5);
	}
	if (p > 0)
		waitpid(p, &status, 0);
	for (int i = 0; i < 50 && rmdir(cg); i++)
		tst_sleep_ms(20);
	if (WIFEXITED(status) && WEXITSTATUS(status) >= 3)
		tap_skip_all("the child could not run in the cgroup or read its limit (%d)",
			     WEXITSTATUS(status));
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	       "near the cgroup's limit by memory not hakmem's: its caches purged (status 0x%x)",
	       status);
	tap_finish();
}
