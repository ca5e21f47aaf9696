// SPDX-License-Identifier: MIT
/*
 * Memory pressure seen from a process's first put. BigCache samples
 * /proc/meminfo by time (pressure_tick: at a put, at most every 10 ms)
 * since f9a407d; before, every 256 puts, starting with the first. The
 * time of the last sample started at 0 and the coarse clock counts from
 * 1 at its first reading in the process, so for the first 10 ms of a
 * process no put sampled: one that started short of memory kept every
 * block it freed there resident, up to the cache's bound, where it used to
 * purge them (rv21).
 *
 * Linked with --wrap=syscall: the box reads the file through
 * __hak_os_read_file's openat system call, and the wrapper hands it a
 * memfd that says MemAvailable is 1/100 of MemTotal (tight: under 1/16).
 * The first thing the program does is a 4 MiB malloc, touch and free:
 * the block must be purged at that put (nothing of the cache resident,
 * one purge). Then, 20 ms later, another: the same (the sampling by time
 * itself). The clock's age at the first put is printed: a machine so
 * loaded that 10 ms passed before it cannot tell the old code from the
 * new, and the check then passes either way.
 */
#include <stdarg.h>
#include <sys/syscall.h>
#include "bc_test.h"
#include "os.h"
#include "../lib/coarse_sleep.h"

#define LEN	(4UL << 20)

long __real_syscall(long nr, ...);
long __wrap_syscall(long nr, ...);

static const char fake[] =
	"MemTotal:       16000000 kB\n"
	"MemFree:          100000 kB\n"
	"MemAvailable:     160000 kB\n";
static volatile unsigned fakes;

long __wrap_syscall(long nr, ...)
{
	long a[6];
	va_list ap;
	int i;

	va_start(ap, nr);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (nr == SYS_openat && !strcmp((const char *)a[1], "/proc/meminfo")) {
		int fd = memfd_create("meminfo", MFD_CLOEXEC);

		if (fd >= 0) {
			if (write(fd, fake, sizeof(fake) - 1) == (ssize_t)sizeof(fake) - 1 &&
			    lseek(fd, 0, SEEK_SET) == 0) {
				fakes++;
				return fd;
			}
			close(fd);
		}
	}
	return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* Malloc, touch and free a LEN block: the cache's stats before and after. */
static void one_put(struct hak_bigcache_stats *before, struct hak_bigcache_stats *after)
{
	char *p = malloc(LEN);

	if (!p)
		tap_bail("malloc");
	memset(p, 1, LEN);
	*before = bc_stats();
	free(p);
	*after = bc_stats();
}

int main(void)
{
	struct hak_bigcache_stats a0, a1, b0, b1;
	unsigned age;

	one_put(&a0, &a1);	/* first: nothing before it may take time */
	age = __hak_now_ms();
	tap_plan(3);
	tap_diag("the first put at %u ms of the process's clock; %u fake readings", age, fakes);
	tap_ok(a1.puts == a0.puts + 1, "the first free went to the cache (%zu puts)",
	       a1.puts - a0.puts);
	tap_ok(a1.resident_bytes == 0 && a1.purges > a0.purges,
	       "under pressure from the start, its first put purged it (%zu bytes resident, "
	       "%zu purges)", a1.resident_bytes, a1.purges - a0.purges);
	tst_sleep_ms(20);
	one_put(&b0, &b1);
	tap_ok(b1.resident_bytes == 0 && b1.purges > b0.purges,
	       "and a put 20 ms later (%zu bytes resident, %zu purges)", b1.resident_bytes,
	       b1.purges - b0.purges);
	tap_finish();
}
