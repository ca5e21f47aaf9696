// SPDX-License-Identifier: MIT
/*
 * The memory limit: the cgroup's (v2 memory.max, v1 memory.limit_in_bytes,
 * the least over the process's cgroup and its ancestors) unless
 * HAKMEM_MEMORY_LIMIT says otherwise (0: no limit). Read once, with
 * open/read into stack buffers: no stdio and no malloc, since this runs
 * inside malloc. The limit goes to the OS layer, which counts every
 * mapping against it (lib/os.c, lib/purge.c).
 *
 * The cgroup's is read late (design.md, "What the first malloc reads"):
 * not at start-up but when hakmem's mappings first pass
 * HAK_LIMIT_LAZY_BYTES, at the first purge tick a purge delay into the
 * process's life, or when something asks for the limit (__hak_os_limit:
 * the stats). Before that, a soft limit could only have raised the near
 * flag, and only past 7/8 of it: a purge of caches that are at most the
 * bytes mapped. A hard one (HAKMEM_MEMORY_LIMIT_HARD=1) is read at
 * start-up, as before: its refusals hold from the first mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <asm/atomic.h>
#include "init.h"
#include "os.h"
#include "purge.h"

#define CG_PATH_MAX	512
#define CG_NONE		((size_t)1 << 62)	/* v1 "unlimited" is just below 2^63 */

/*
 * The directory whose limit is the least, when the limit is the cgroup's
 * (set once by __hak_limit_init, read after): the kernel holds that
 * directory's usage against the limit, all of the process's memory and
 * its siblings' (an interpreter's own arenas, shared memory, other
 * processes of the container), of which hakmem's mappings may be a small
 * share (ml34: python3 near a cgroup limit, hakmem's caches not purged).
 */
struct cg_where {
	char dir[CG_PATH_MAX];
	size_t len;		/* 0: none */
	bool v2;
};
static struct cg_where cg_limit_at;
static int cg_lazy __boot_once;		/* atomic: 1 not read yet, 2 being read, 0 read */
/*
 * When the purge tick's wait for the late read began, in this thread: 0
 * (the process's clock start), or HAK_LIMIT_FORKED from the fork of a
 * fork child's thread until its first tick puts the time there. TLS, and
 * set by lib/init.c's fork_child itself: a fork child writes its own
 * thread's block anyway, where a store into the hak_boot_* page, a call
 * into this file's text or a clock reading (the vDSO's data page) each
 * cost every child of a shell a page fault.
 */
__thread unsigned __hak_limit_from_ms __attribute__((tls_model("initial-exec")));
static char cg_stat_buf[4096];	/* one reader at a time: cg_busy */
static int cg_busy;		/* atomic */

/*
 * The decimal number at *s into *v, *s moved past its digits (0 when
 * there are none); false when a digit would come while *v is over
 * limit / 10, the caller's bound before its scaling.
 */
static bool parse_dec(const char **s, size_t limit, size_t *v)
{
	for (*v = 0; **s >= '0' && **s <= '9'; (*s)++) {
		if (*v > limit / 10)
			return false;
		*v = *v * 10 + (size_t)(**s - '0');
	}
	return true;
}

/* The number in file dir/name ("max" or anything unparsable: none). */
static size_t read_limit(const char *dir, size_t dlen, const char *name)
{
	char path[CG_PATH_MAX + 64], buf[64];
	size_t nlen = strlen(name), v;
	const char *s;

	if (dlen + nlen + 2 > sizeof(path))
		return CG_NONE;
	memcpy(path, dir, dlen);
	path[dlen] = '/';
	memcpy(path + dlen + 1, name, nlen + 1);
	if (__hak_os_read_file(path, buf, sizeof(buf)) <= 0)
		return CG_NONE;
	s = buf;
	if (!parse_dec(&s, SIZE_MAX - 9, &v))
		return CG_NONE;
	return s == buf ? CG_NONE : v;
}

/*
 * Least limit over root/path and its ancestors down to root; the
 * directory holding it into *at when it is less than *best (which it
 * then becomes).
 */
static void walk_up(const char *root, const char *path, size_t plen, const char *name,
		    size_t *best, struct cg_where *at, bool v2)
{
	char dir[CG_PATH_MAX];
	size_t rlen = strlen(root), len, v;

	while (plen && path[plen - 1] == '/')
		plen--;
	if (rlen + plen + 1 > sizeof(dir))
		return;
	memcpy(dir, root, rlen);
	memcpy(dir + rlen, path, plen);
	len = rlen + plen;
	for (;;) {
		v = read_limit(dir, len, name);
		if (v < *best) {
			*best = v;
			memcpy(at->dir, dir, len);
			at->len = len;
			at->v2 = v2;
		}
		if (len <= rlen)
			break;
		while (len > rlen && dir[len - 1] != '/')
			len--;
		if (len > rlen)
			len--;		/* drop the '/' */
	}
}

static size_t cgroup_limit(struct cg_where *at)
{
	char buf[4096];
	size_t best = CG_NONE;
	char *line, *end;

	at->len = 0;
	if (__hak_os_read_file("/proc/self/cgroup", buf, sizeof(buf)) <= 0)
		return 0;
	for (line = buf; *line; line = end) {
		char *c1, *c2, *nl;

		nl = strchr(line, '\n');
		end = nl ? nl + 1 : line + strlen(line);
		c1 = memchr(line, ':', (size_t)(end - line));
		c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
		if (!c2)
			continue;
		if (c1 == line + 1 && line[0] == '0' && c2 == c1 + 1) {
			/* v2: "0::/path" */
			walk_up("/sys/fs/cgroup", c2 + 1, (size_t)((nl ? nl : end) - c2 - 1),
				"memory.max", &best, at, true);
		} else {
			/* v1: "N:ctrl,ctrl:/path", the memory controller's */
			const char *p = c1 + 1;
			bool mem = false;

			while (p < c2) {
				const char *q = memchr(p, ',', (size_t)(c2 - p));

				if (!q)
					q = c2;
				if (q - p == 6 && !memcmp(p, "memory", 6))
					mem = true;
				p = q + 1;
			}
			if (!mem)
				continue;
			walk_up("/sys/fs/cgroup/memory", c2 + 1,
				(size_t)((nl ? nl : end) - c2 - 1),
				"memory.limit_in_bytes", &best, at, false);
		}
	}
	if (best >= CG_NONE) {
		at->len = 0;
		return 0;
	}
	return best;
}

size_t __hak_cgroup_limit(void)
{
	struct cg_where at;

	return cgroup_limit(&at);
}

/* The number after the line-leading key in a memory.stat text; 0 when absent. */
static size_t stat_key(const char *buf, const char *key)
{
	size_t klen = strlen(key), v;
	const char *s = buf;

	while (s && *s) {
		if (!strncmp(s, key, klen) && s[klen] == ' ') {
			s += klen + 1;
			return parse_dec(&s, SIZE_MAX, &v) ? v : 0;
		}
		s = strchr(s, '\n');
		if (s)
			s++;
	}
	return 0;
}

/*
 * Is the cgroup whose limit is ours within 1/8 of it, counting what the
 * kernel cannot reclaim without the OOM killer (no swap: its usage less
 * its page cache, the file LRUs of memory.stat; shared memory stays)?
 * False when the limit is not the cgroup's or the files cannot be read
 * (a late sandbox, a directory gone). One caller at a time reads; the
 * others answer false.
 */
bool __hak_cgroup_near(void)
{
	const struct cg_where *at = &cg_limit_at;
	size_t lim = __hak_os_limit(), used, file;
	char path[CG_PATH_MAX + 16];
	bool near = false;

	/* acquire: cg_limit_at was written before cg_lazy went to 0 */
	if (arch_load_acquire(&cg_lazy) || !at->len || !lim || arch_xchg(&cg_busy, 1))
		return false;
	used = read_limit(at->dir, at->len, at->v2 ? "memory.current" : "memory.usage_in_bytes");
	/*
	 * memory.stat only when the usage alone is near: the kernel sums its
	 * counters over the subtree for each read (v2 flushes them first),
	 * and a container far below its limit would pay that every quarter
	 * of the delay for nothing.
	 */
	if (used < CG_NONE && used > lim - lim / 8) {
		memcpy(path, at->dir, at->len);
		strcpy(path + at->len, "/memory.stat");
		if (__hak_os_read_file(path, cg_stat_buf, sizeof(cg_stat_buf)) > 0) {
			file = at->v2 ? stat_key(cg_stat_buf, "active_file") +
					stat_key(cg_stat_buf, "inactive_file") :
					stat_key(cg_stat_buf, "total_active_file") +
					stat_key(cg_stat_buf, "total_inactive_file");
			used = file < used ? used - file : 0;
		}
		near = used > lim - lim / 8;
	}
	arch_store_release(&cg_busy, 0);
	return near;
}

/* A fork while another thread read leaves that thread's flag behind. */
void __hak_cgroup_fork_child(void)
{
	cg_busy = 0;
	if (cg_lazy == 2)
		cg_lazy = 1;	/* that thread's read is not ours: read again */
}

bool __hak_limit_unread(void)
{
	return arch_load_relaxed(&cg_lazy) != 0;
}

bool __hak_limit_waits(unsigned now, unsigned delay)
{
	if (!arch_load_relaxed(&cg_lazy))
		return false;
	if (__hak_limit_from_ms == HAK_LIMIT_FORKED)
		__hak_limit_from_ms = now;
	return (int)(now - __hak_limit_from_ms) <= (int)delay;
}

/*
 * The cgroup's limit, if it is still to be read: one thread reads, the
 * others go on without it meanwhile (a soft limit: nothing refuses).
 */
void __hak_limit_resolve(void)
{
	if (likely(!arch_load_relaxed(&cg_lazy)) || arch_cmpxchg(&cg_lazy, 1, 2) != 1)
		return;
	__hak_os_set_limit(cgroup_limit(&cg_limit_at), false);
	arch_store_release(&cg_lazy, 0);
}

/* The number after key in a /proc/meminfo text, in bytes; 0 when absent. */
static size_t meminfo_bytes(const char *buf, const char *key)
{
	const char *s = strstr(buf, key);
	size_t v;

	if (!s)
		return 0;
	for (s += strlen(key); *s == ' '; s++)
		;
	if (!parse_dec(&s, SIZE_MAX >> 10, &v))
		return 0;
	return v << 10;		/* the file counts in kB */
}

/*
 * Free RAM alone (sysinfo's freeram) says "tight" on any machine whose
 * page cache has filled its memory, the normal state of a busy server and
 * of a build machine: the kernel gives that cache back on demand. The
 * first lines of /proc/meminfo suffice (MemAvailable is the third).
 */
bool __hak_mem_available(size_t *avail, size_t *total)
{
	char buf[512];
	ssize_t got = __hak_os_read_file("/proc/meminfo", buf, sizeof(buf));

	if (got <= 0)
		return false;
	*total = meminfo_bytes(buf, "MemTotal:");
	*avail = meminfo_bytes(buf, "MemAvailable:");
	return *total && strstr(buf, "MemAvailable:");
}

/*
 * The process's resident set (the second number of /proc/self/statm, in
 * pages), in bytes; 0 when it cannot be read.
 */
size_t __hak_rss(void)
{
	char buf[128];
	const char *s = buf;
	ssize_t got = __hak_os_read_file("/proc/self/statm", buf, sizeof(buf));
	size_t v;

	if (got <= 0)
		return 0;
	while (*s >= '0' && *s <= '9')		/* the size */
		s++;
	if (*s++ != ' ' || !parse_dec(&s, SIZE_MAX / HAK_OS_PAGE, &v))
		return 0;
	return v * HAK_OS_PAGE;
}

void __hak_limit_init(void)
{
	size_t lim = __hak_opt.memory_limit;

	if (lim == HAK_LIMIT_UNSET) {
		if (!__hak_opt.memory_limit_hard) {
			__hak_os_set_limit(0, false);
			arch_store_relaxed(&cg_lazy, 1);	/* __hak_limit_resolve */
			return;
		}
		lim = cgroup_limit(&cg_limit_at);
	}
	__hak_os_set_limit(lim, __hak_opt.memory_limit_hard != 0);
}
