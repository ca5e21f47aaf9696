// SPDX-License-Identifier: MIT
/*
 * OS layer: anonymous private mappings only. An aligned mapping is first
 * asked for at its exact length (Linux 6.7 on puts an anonymous mapping
 * whose length is a multiple of the PMD size on a PMD boundary), else made
 * by over-mapping and trimming both ends, so no address hint is ever
 * needed. Counters are atomics because any thread may map.
 */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <linux/membarrier.h>
#include <asm/atomic.h>
#include "os.h"
#include "init.h"
#include "purge.h"
#include "boxes/valgrind/valgrind_hooks.h"

/* Generic numbers (the same on every architecture but alpha). */
#ifndef SYS_pidfd_open
#define SYS_pidfd_open		434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise	440
#endif

static size_t os_mapped __boot_hot;
static size_t os_limit __boot_once;		/* 0: no limit */
static int os_limit_hard __boot_once;
static int os_near __boot_hot;		/* atomic: mappings came near the limit */
static int exact_off __boot_once;		/* atomic: an exact-length map came misaligned */

/* The kernel's PMD size with 4 KiB pages (x86_64, arm64, riscv64). */
#define OS_PMD_SIZE	((size_t)2 << 20)

struct fault_site {
	unsigned long skip;	/* calls to let through before failing */
	unsigned long fail;	/* calls to fail after that */
	unsigned long failed;	/* failures injected so far */
};

static struct fault_site fault[HAK_OS_NSITES];

/*
 * The page size. The core cuts, purges, guards and trims in HAK_OS_PAGE
 * units (4 KiB) and takes them for the system's pages. On a kernel with
 * larger ones (arm64 or ppc64 with 64 KiB, arm64 with 16 KiB), a 4 KiB
 * MADV_DONTNEED that starts on a page boundary drops the whole page, live
 * blocks and all, a 4 KiB guard's mprotect makes the page around it
 * inaccessible, and an unaligned one fails (EINVAL). So no memory is ever
 * handed out there: the first mapping asks the kernel's page size
 * (AT_PAGESZ, which needs no malloc) and a mismatch stops the process with
 * one line on stderr, exit status 127 (as lib/alloc.c does when the fixed
 * page map's address is taken). Checked once, on the mapping paths only.
 */
static int os_page_ok __boot_once;	/* atomic: the page size matched */

static void __cold __noinline os_page_check_slow(void)
{
	unsigned long ps = getauxval(AT_PAGESZ);

	if (!ps || ps == HAK_OS_PAGE) {
		arch_store_relaxed(&os_page_ok, 1);
		return;
	}
	__hak_report("built for %lu-byte pages, but the system's are %lu bytes: "
		     "refusing to run (its purges would drop live data)",
		     (unsigned long)HAK_OS_PAGE, ps);
	_exit(127);
}

static inline void os_page_check(void)
{
	if (unlikely(!arch_load_relaxed(&os_page_ok)))
		os_page_check_slow();
}

/*
 * Sandboxes (design.md, "System calls in a sandbox"). A seccomp filter
 * whose default action kills (OpenSSH's pre-auth child, systemd's
 * SystemCallFilter=, vsftpd, tor) ends the process at the first call it
 * does not list, and glibc's malloc makes brk, mmap, munmap, mremap,
 * madvise, mprotect, futex and getrandom (and counts CPUs for its arenas).
 * Once this process is in one, or on its way there, the calls below that
 * glibc's malloc does not make are skipped and their callers take the
 * answer they already take when the call fails (an old kernel, no /proc):
 * no getrusage (the fault count comes from /proc/self/stat), getdents64
 * or gettid (busy threads are told by the CPU-time clocks), no pidfd_open
 * or process_madvise (one madvise per range), no membarrier (no sharded
 * class is scanned by others), no mincore (calloc clears; the reports
 * count nothing resident), no PAGEMAP_SCAN ioctl, no sched_yield in a
 * wait (it naps), no purge thread. madvise stays, whatever the advice
 * (glibc's asks MADV_HUGEPAGE too, with glibc.malloc.hugetlb=1; a filter
 * that limits the advice fails the rest with an error).
 *
 * A filter installed after start-up ("late") also loses the /proc and
 * cgroup reads (openat) and getrlimit (prlimit64): every glibc program
 * makes those while it starts, so a filter in place at exec allows them,
 * but a late one need not (OpenSSH's fails openat, kills prlimit64). There
 * the fault count reads 0 and the purge delay stays at its base.
 *
 * Known two ways: at the first malloc, the Seccomp: line of
 * /proc/self/status (a filter installed before exec: systemd, bwrap, a
 * sandboxed parent); and the interposed prctl (lib/interpose.c: late),
 * where the program asks for a filter or for no_new_privs, which an
 * unprivileged filter needs first. Never cleared: a filter cannot be
 * removed, and a fork inherits it.
 */
int __hak_os_sandbox __boot_once;		/* atomic: enum hak_os_sandbox */

/*
 * Only ever up: a filter installed at start-up, then one of the program's.
 * HAKMEM_SANDBOX=0 keeps every call (a container whose filter fails the
 * calls it refuses with an error, as Docker's and Kubernetes' default
 * profiles do, loses nothing by them; a filter that kills ends the
 * process). Before the options are read (a prctl before the first
 * malloc) the default holds, and the probe undoes it if the option is 0.
 */
void __hak_os_sandbox_enter(int how)
{
	int cur = arch_load_relaxed(&__hak_os_sandbox), seen;

	if (!__hak_opt.sandbox)
		return;
	while (cur < how && (seen = arch_cmpxchg(&__hak_os_sandbox, cur, how)) != cur)
		cur = seen;
}

/* True when the test hook wants this call at site to fail. */
static bool fault_hit(enum hak_os_site site)
{
	struct fault_site *f = &fault[site];

	if (!IS_ENABLED(CONFIG_HAK_FAULT_INJECT))
		return false;
	if (arch_load_relaxed(&f->fail) == 0)
		return false;
	if (arch_load_relaxed(&f->skip) > 0) {
		arch_fetch_add(&f->skip, -1UL);
		return false;
	}
	arch_fetch_add(&f->fail, -1UL);
	arch_fetch_add(&f->failed, 1UL);
	return true;
}

void hak_test_os_fail(enum hak_os_site site, unsigned long skip, unsigned long n)
{
	if (!IS_ENABLED(CONFIG_HAK_FAULT_INJECT) || site >= HAK_OS_NSITES)
		return;
	arch_store_relaxed(&fault[site].skip, skip);
	arch_store_relaxed(&fault[site].fail, n);
}

unsigned long hak_test_os_failed(enum hak_os_site site)
{
	return site < HAK_OS_NSITES ? arch_load_relaxed(&fault[site].failed) : 0;
}

/*
 * May len more bytes be mapped, for a mapping of whole bytes in all (a
 * growth's old part is mapped already)? Raises the near flag within 1/8
 * of the limit; refuses past it when the limit is hard. Racing mappers
 * may overshoot by one mapping each: the limit is a bound on our own
 * accounting, the kernel's is the one that cannot be crossed.
 */
static bool limit_grow_allows(size_t len, size_t whole)
{
	size_t lim = arch_load_relaxed(&os_limit);
	size_t m = arch_load_relaxed(&os_mapped) + len;

	/* the cgroup's limit, read late (lib/limit.c): no later than here */
	if (unlikely(!lim && m > HAK_LIMIT_LAZY_BYTES) && __hak_limit_unread()) {
		__hak_limit_resolve();
		lim = arch_load_relaxed(&os_limit);
	}
	if (likely(!lim) || m <= lim - lim / 8)
		return true;
	/* past a hard limit by itself: no purge makes room, so not near */
	if (whole > lim && arch_load_relaxed(&os_limit_hard))
		return false;
	if (!arch_load_relaxed(&os_near))
		arch_store_relaxed(&os_near, 1);
	return !(arch_load_relaxed(&os_limit_hard) && m > lim);
}

static bool limit_allows(size_t len)
{
	return limit_grow_allows(len, len);
}

void __hak_os_set_limit(size_t bytes, bool hard)
{
	arch_store_relaxed(&os_limit_hard, hard ? 1 : 0);
	arch_store_relaxed(&os_limit, bytes);
}

size_t __hak_os_limit(void)
{
	__hak_limit_resolve();
	return arch_load_relaxed(&os_limit);
}

bool __hak_os_limit_refuses(size_t len)
{
	size_t lim = arch_load_relaxed(&os_limit);

	return lim && len > lim && arch_load_relaxed(&os_limit_hard);
}

bool __hak_os_take_near(void)
{
	return arch_load_relaxed(&os_near) && arch_xchg(&os_near, 0);
}

/*
 * The kernel's clocks, read through the vDSO's own clock_gettime, found in
 * its ELF image (AT_SYSINFO_EHDR), not through libc's symbol: a preloaded
 * interposer answers for that symbol. libfaketime's clock_gettime, called
 * before its initialiser ran, looks its symbols up with dlsym, whose error
 * path calls malloc, whose slow path read the clock again: every process
 * with both preloaded (either order) overflowed its stack at its first
 * malloc (ext34). Past its initialiser it answered with a time that stops,
 * jumps back or runs at ten times the rate: a decay clock that never
 * reaches the purge delay, or reaches it at every call; and the lock wait's
 * deadline (init.c), which the kernel takes on its own CLOCK_MONOTONIC,
 * in the past (a spin) or days away (no poll). No malloc, no lock, no
 * libc call past getauxval. Without a vDSO (a kernel built without one,
 * an architecture not listed) the system call, what libc makes then too.
 * A program may define __hak_clock_hook (os.h): the selftests that age
 * the caches by days (selftests/lib/clock_offset.h) do.
 */
#if defined(__x86_64__) || defined(__riscv)
#define VDSO_GETTIME	"__vdso_clock_gettime"
#elif defined(__aarch64__)
#define VDSO_GETTIME	"__kernel_clock_gettime"
#endif

typedef int (*gettime_fn)(clockid_t, struct timespec *);

/* a program's own clock (os.h), for the selftests */
extern int __hak_clock_hook(clockid_t clk, struct timespec *ts) __attribute__((weak));

static uintptr_t vdso_gettime __boot_once;	/* atomic: the function; 1: none; 0: not looked yet */

/*
 * Symbols in a dynamic symbol table: DT_HASH's chain count, else the end
 * of DT_GNU_HASH's last chain (os.h; the vDSO lookup below and the heap
 * profiler's names).
 */
size_t __hak_os_elf_nsyms(const uint32_t *hash, const uint32_t *gnu)
{
	const ElfW(Word) *buckets, *chain;
	ElfW(Word) nbuckets, symoff, last = 0;

	if (hash)
		return hash[1];
	if (!gnu)
		return 0;
	nbuckets = gnu[0];
	symoff = gnu[1];
	buckets = (const ElfW(Word) *)((const ElfW(Addr) *)(gnu + 4) + gnu[2]);
	chain = buckets + nbuckets;
	for (ElfW(Word) b = 0; b < nbuckets; b++)
		if (buckets[b] > last)
			last = buckets[b];
	if (last < symoff)
		return symoff;
	while (!(chain[last - symoff] & 1))
		last++;
	return (size_t)last + 1;
}

#ifdef VDSO_GETTIME
static uintptr_t vdso_lookup(const char *name)
{
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)getauxval(AT_SYSINFO_EHDR);
	const ElfW(Phdr) *ph;
	const ElfW(Dyn) *dyn = NULL;
	const ElfW(Sym) *sym = NULL;
	const ElfW(Word) *hash = NULL, *gnu = NULL;
	const char *str = NULL;
	uintptr_t bias = 0;
	bool loaded = false;
	size_t n;

	if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return 0;
	ph = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && !loaded) {
			bias = (uintptr_t)eh + ph[i].p_offset - ph[i].p_vaddr;
			loaded = true;
		} else if (ph[i].p_type == PT_DYNAMIC) {
			dyn = (const ElfW(Dyn) *)((const char *)eh + ph[i].p_offset);
		}
	}
	if (!loaded || !dyn)
		return 0;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		const void *at = (const void *)(dyn->d_un.d_ptr + bias);

		if (dyn->d_tag == DT_SYMTAB)
			sym = at;
		else if (dyn->d_tag == DT_STRTAB)
			str = at;
		else if (dyn->d_tag == DT_HASH)
			hash = at;
		else if (dyn->d_tag == DT_GNU_HASH)
			gnu = at;
	}
	if (!sym || !str)
		return 0;
	n = __hak_os_elf_nsyms(hash, gnu);
	for (size_t i = 0; i < n; i++) {
		unsigned type = ELF64_ST_TYPE(sym[i].st_info);
		unsigned bind = ELF64_ST_BIND(sym[i].st_info);

		if (sym[i].st_shndx != SHN_UNDEF && type == STT_FUNC &&
		    (bind == STB_GLOBAL || bind == STB_WEAK) &&
		    !strcmp(str + sym[i].st_name, name))
			return bias + sym[i].st_value;
	}
	return 0;
}
#endif

int __hak_os_clock(clockid_t clk, struct timespec *ts)
{
	uintptr_t f = arch_load_relaxed(&vdso_gettime);
	gettime_fn hook = __hak_clock_hook;

	if (unlikely(hook != NULL))
		return hook(clk, ts);
	if (unlikely(!f)) {
#ifdef VDSO_GETTIME
		f = vdso_lookup(VDSO_GETTIME);
#endif
		if (!f)
			f = 1;
		/* the same answer in every thread: a plain store */
		arch_store_relaxed(&vdso_gettime, f);
	}
	if (f != 1)
		return ((gettime_fn)f)(clk, ts);
	{
		int err = errno, r = (int)syscall(SYS_clock_gettime, clk, ts);

		errno = err;
		return r;
	}
}

/*
 * The coarse clock counts from its first reading in this process (1 then),
 * not from boot. Stamps (unsigned ms) sit in metadata beside zero words,
 * and memcheck's leak scan reads such a pair as a pointer: with boot time,
 * a machine up 22.7 to 23.1 h had stamps inside the block valgrind maps at
 * 0x4e00000, and a leaked 1200 KiB block there was "possibly lost". From
 * the start, stamps stay below 0x4000000, where valgrind begins to map its
 * client's memory, for the first 18 h of a run. Differences, the only use
 * of stamps, do not change.
 *
 * The base and the difference are 64-bit: the unsigned result wraps every
 * 49.7 days as any 32-bit stamp does (ages and deadlines compare through
 * __hak_ms_age and __hak_ms_due, lib/os.h), and only a reading taken
 * before another thread set the base is held at 1. (A 32-bit difference
 * tested as signed held the clock at 1 from day 24.9 to day 49.7 of a
 * process's life, and no decay pass ran in that time.)
 */
static uint64_t clock_base __boot_once;	/* atomic: boot ms at the first reading, bit 63 set */

#define CLOCK_SET	(1ULL << 63)

bool __hak_os_fence_others_init(void)
{
	if (__hak_os_sandboxed())
		return false;
	return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

bool __hak_os_fence_others(void)
{
	if (__hak_os_sandboxed())
		return false;
	return syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
}

unsigned __hak_now_ms(void)
{
	struct timespec ts;
	uint64_t boot, base;
	int64_t since;

	__hak_os_clock(CLOCK_MONOTONIC_COARSE, &ts);
	boot = (uint64_t)ts.tv_sec * 1000u + (uint64_t)(ts.tv_nsec / 1000000);
	base = arch_load_relaxed(&clock_base);
	if (unlikely(!base)) {
		/* the first reader sets it; bit 63 keeps a base of 0 apart from unset */
		arch_cmpxchg(&clock_base, (uint64_t)0, boot | CLOCK_SET);
		base = arch_load_relaxed(&clock_base);
	}
	since = (int64_t)(boot - (base & ~CLOCK_SET)) + 1;
	/*
	 * A reader that read boot before another thread set the base gets
	 * a time before it: 1, the first time, not 49 days on. 0 is skipped
	 * at each wrap (1 ms late), so a stamp is never 0.
	 */
	if (since < 1 || !(unsigned)since)
		return 1;
	return (unsigned)since;
}

void *__hak_os_map(size_t len)
{
	void *p;

	os_page_check();
	if (fault_hit(HAK_OS_MAP) || !limit_allows(len)) {
		errno = ENOMEM;
		return NULL;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	arch_fetch_add(&os_mapped, len);
	return p;
}

/*
 * Count len bytes of reserved address space as mapped (a grow area's slot,
 * lib/grow.c): the memory limit and the fault-injection site HAK_OS_MAP
 * see them as a mapping. false with errno ENOMEM when refused.
 */
bool __hak_os_commit(size_t len)
{
	if (fault_hit(HAK_OS_MAP) || !limit_allows(len)) {
		errno = ENOMEM;
		return false;
	}
	arch_fetch_add(&os_mapped, len);
	return true;
}

void __hak_os_uncommit(size_t len)
{
	arch_fetch_add(&os_mapped, -len);
}

void *__hak_os_reserve(size_t len)
{
	void *p;

	os_page_check();
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void __hak_os_unreserve(void *p, size_t len)
{
	munmap(p, len);
}

/*
 * Read-only, MAP_NORESERVE: the kernel charges commit (Committed_AS) only
 * for private mappings that are writable (mm/mmap.c, accountable_mapping),
 * and under vm.overcommit_memory=2 it ignores MAP_NORESERVE, so a
 * read-write reserve would be charged in full there. A read-only one never
 * is, reads as zeros (the zero page), and __hak_os_open charges what it
 * makes writable (mm/mprotect.c, mprotect_fixup; not in modes 0 and 1,
 * where MAP_NORESERVE holds).
 */
void *__hak_os_reserve_ro(size_t len)
{
	void *p;

	os_page_check();
	p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Through syscall(), never a cancellation point: open, read and close are
 * ones, and this runs inside malloc and free (the first malloc; BigCache's
 * memory samples at a free), which a thread with a cancel pending must
 * leave normally, as from glibc's. errno is kept: a malloc that succeeds
 * leaves it alone.
 */
/* The same under dir (AT_FDCWD: path as given); -errno when it cannot be opened. */
static ssize_t read_file_at(int dir, const char *path, char *buf, size_t size)
{
	ssize_t n, got = 0;
	int err = errno, fd;

	if (__hak_os_sandboxed_late())
		return -EPERM;
	fd = (int)syscall(SYS_openat, dir, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		got = -(ssize_t)errno;
		errno = err;
		return got;
	}
	while ((size_t)got < size - 1) {
		n = syscall(SYS_read, fd, buf + got, size - 1 - (size_t)got);
		if (n <= 0)
			break;
		got += n;
	}
	syscall(SYS_close, fd);
	buf[got] = '\0';
	errno = err;
	return got;
}

ssize_t __hak_os_read_file(const char *path, char *buf, size_t size)
{
	ssize_t got = read_file_at(AT_FDCWD, path, buf, size);

	return got < 0 ? -1 : got;
}

/*
 * At the first malloc, before any call this file guards: openat and read
 * are what the dynamic loader has just made, so no filter in place at exec
 * kills them. Without /proc nothing is known: nothing changes.
 *
 * The file is read through, not one buffer of it: Seccomp: comes after
 * Groups:, which lists every supplementary group (up to 65,536), and with
 * ~300 of 10 digits the line was past the first 4 KiB and a filter in
 * place at exec went unseen (rv34, selftests/core/sandbox). What is kept
 * between reads: the last bytes, in which the key may have begun.
 *
 * HAKMEM_SANDBOX=0 is known only now: a prctl before the first malloc took
 * the default, so the option undoes it here (rv34).
 */
void __hak_os_sandbox_probe(void)
{
	static const char key[] = "\nSeccomp:";
	char buf[4096];
	const char *s;
	size_t have = 0;
	ssize_t n;
	int err = errno, fd;

	if (!__hak_opt.sandbox) {
		arch_store_relaxed(&__hak_os_sandbox, HAK_SANDBOX_NONE);
		return;
	}
	if (__hak_os_sandboxed_late())
		return;
	fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errno = err;
		return;
	}
	while ((n = syscall(SYS_read, fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		have += (size_t)n;
		buf[have] = '\0';
		s = strstr(buf, key);
		if (s) {
			const char *v = s + sizeof(key) - 1;

			while (*v == ' ' || *v == '\t')
				v++;
			if (*v) {	/* the value is here */
				if (*v >= '1' && *v <= '9')
					__hak_os_sandbox_enter(HAK_SANDBOX_AT_START);
				break;
			}
		} else {
			/* the key may have begun in the last sizeof(key) - 2 bytes */
			s = buf + have - (have < sizeof(key) - 2 ? have : sizeof(key) - 2);
		}
		if (s == buf && have == sizeof(buf) - 1)
			break;		/* no /proc file has that much blank after the key */
		have -= (size_t)(s - buf);
		memmove(buf, s, have);
	}
	syscall(SYS_close, fd);
	errno = err;
}

/*
 * Through syscall() too, for the same reason: nanosleep() and write() are
 * cancellation points, and the waits of a lock take held back for a fork's
 * turn and of fork's prepare run inside malloc and fork, the report of a
 * bad free inside free, before its abort() (init.c; rv25,
 * selftests/core/cancel_points). errno is kept.
 */
void __hak_os_nap(unsigned long ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ul), (long)(ns % 1000000000ul) };
	int err = errno;

	syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, NULL);
	errno = err;
}

ssize_t __hak_os_getrandom(void *buf, size_t len)
{
	int err = errno;
	ssize_t r = (ssize_t)syscall(SYS_getrandom, buf, len, GRND_NONBLOCK);

	errno = err;
	return r;
}

pid_t __hak_os_getpid(void)
{
	return (pid_t)syscall(SYS_getpid);	/* cannot fail: errno untouched */
}

void __hak_os_write(int fd, const void *buf, size_t len)
{
	int err = errno;

	syscall(SYS_write, fd, buf, len);
	errno = err;
}

int __hak_os_maps_open(void)
{
	int err = errno, fd;

	if (__hak_os_sandboxed_late())
		return -1;
	fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
	errno = err;
	return fd;
}

/* Each line starts "start-end " in hex; the rest of it is skipped. */
bool __hak_os_maps_each(int fd, void (*fn)(uintptr_t start, uintptr_t end, void *arg),
			void *arg)
{
	char buf[512];
	uintptr_t v[2] = { 0, 0 };
	int err = errno, field = 0;	/* 0: start, 1: end, 2: the rest */
	bool ok = true;
	ssize_t n = 0;

	while (ok && (n = syscall(SYS_read, fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n && ok; i++) {
			char c = buf[i];

			if (c == '\n') {
				ok = field == 2;
				field = 0;
				v[0] = v[1] = 0;
			} else if (field == 2) {
				continue;
			} else if (c == '-' && field == 0) {
				field = 1;
			} else if (c == ' ' && field == 1) {
				fn(v[0], v[1], arg);
				field = 2;
			} else if (c >= '0' && c <= '9') {
				v[field] = v[field] << 4 | (uintptr_t)(c - '0');
			} else if (c >= 'a' && c <= 'f') {
				v[field] = v[field] << 4 | (uintptr_t)(c - 'a' + 10);
			} else {
				ok = false;	/* not the format: stop, not at the end */
			}
		}
	}
	if (n < 0 || field != 0)
		ok = false;
	syscall(SYS_close, fd);
	errno = err;
	return ok;
}

bool __hak_os_commit_strict(void)
{
	static int strict __boot_once;	/* atomic: 0 not read yet, 1 no, 2 yes */
	int s = arch_load_relaxed(&strict);

	if (!s) {
		char c[4];

		if (__hak_os_read_file("/proc/sys/vm/overcommit_memory", c, sizeof(c)) < 1)
			c[0] = 0;
		s = c[0] == '2' ? 2 : 1;
		arch_store_relaxed(&strict, s);
	}
	return s == 2;
}

/*
 * A soft RLIMIT_AS or RLIMIT_DATA under 64 GiB (asked at each call: a
 * program may lower it at any time; getrlimit keeps errno, and a late
 * sandbox's refusal reads as no limit).
 */
bool __hak_os_space_tight(void)
{
	static const int res[] = { RLIMIT_AS, RLIMIT_DATA };
	struct rlimit rl;

	for (unsigned i = 0; i < sizeof(res) / sizeof(res[0]); i++)
		if (!__hak_os_getrlimit(res[i], &rl) && rl.rlim_cur < (64ULL << 30))
			return true;
	return false;
}

bool __hak_os_space_costly(void)
{
	return __hak_os_commit_strict() || __hak_os_space_tight();
}

bool __hak_os_open(void *p, size_t len)
{
	if (fault_hit(HAK_OS_PROTECT) || mprotect(p, len, PROT_READ | PROT_WRITE)) {
		errno = ENOMEM;
		return false;
	}
	return true;
}

/*
 * mmap len bytes aligned to align (a power of two past the page size);
 * NULL on failure. No accounting, limit or fault injection: the callers
 * count what they hand out.
 *
 * One mmap instead of two or three (the map and its trims) where the
 * kernel aligns it: a superslab or L2.5 region (2 MiB) costs one
 * address-space call. Each takes the mmap lock for writing while the
 * other threads fault (realloc-chain at 2 threads: 14 regions mapped at
 * start-up, 20-30 trims). Only where the kernel's rule applies (a length
 * that is a multiple of the PMD size, an alignment up to it); a kernel
 * that did not align such a mapping is not asked again.
 */
static void *os_map_raw_aligned(size_t len, size_t align)
{
	uintptr_t raw, start;
	size_t over;
	void *p;

	os_page_check();
	if (len % OS_PMD_SIZE == 0 && align <= OS_PMD_SIZE &&
	    !arch_load_relaxed(&exact_off)) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		if (((uintptr_t)p & (align - 1)) == 0)
			return p;
		munmap(p, len);
		arch_store_relaxed(&exact_off, 1);
	}
	over = len + align - HAK_OS_PAGE;
	if (over < len)
		return NULL;
	p = mmap(NULL, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	raw = (uintptr_t)p;
	start = HAK_ALIGN_UP(raw, (uintptr_t)align);
	if (start > raw)
		munmap(p, start - raw);
	if (raw + over > start + len)
		munmap((void *)(start + len), raw + over - (start + len));
	return (void *)start;
}

/*
 * The memory limit and fault injection see the length asked for, once per
 * call: the over-mapped ends are trimmed at once and never counted.
 */
void *__hak_os_map_aligned(size_t len, size_t align)
{
	void *p;

	if (align <= HAK_OS_PAGE)
		return __hak_os_map(len);
	if (fault_hit(HAK_OS_MAP) || !limit_allows(len)) {
		errno = ENOMEM;
		return NULL;
	}
	p = os_map_raw_aligned(len, align);
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	arch_fetch_add(&os_mapped, len);
	return p;
}

/*
 * Two threads that fault in pages of neighbouring superslabs share one
 * VMA (the kernel merges adjacent anonymous mappings). Each new mapping
 * next to it expands that VMA, which takes its write lock: the other
 * thread's page faults in it wait, or fall back to the mmap lock, and the
 * mapper waits for the faults in flight. idle-rss mapped 143 superslabs
 * in a 0.1 s burst on two threads, and each thread slept about 100 times
 * on those locks (perf record -e context-switches: 36% in mmap's
 * vma_expand, 48% in page faults waiting in lock_mm_and_find_vma).
 * Mapping them in batches makes it a few calls, and a process that
 * needs one superslab still maps one: the first refill maps one piece,
 * every later one HAK_OS_STOCK_MAX (64 MiB of address space for the
 * superslabs). Batches used to grow 1, 2, 4 .. 32, eight calls for 100
 * superslabs; each mmap (and the munmap of its alignment slack) write-
 * locks the neighbouring VMA, so the page faults in flight there sleep,
 * and past the cores each sleep let another thread start (size-chain
 * under SCHED_FIFO at 16 threads: 68 MB peak against 26 MB with one
 * piece, then 32; Documentation/design.md, "Scaling past the cores",
 * fifteenth pass). The memory limit and the mapped
 * bytes count a piece when it is taken, so a limit (a cgroup's, usually)
 * needs no exception: the rest of a refill is address space, not memory.
 */
bool __hak_os_stock_fill(struct hak_os_stock *st, size_t len)
{
	/*
	 * Asked before the map, not only after it: a limit lowered since
	 * the last refill (Python's resource.setrlimit, after the stock had
	 * grown to HAK_OS_STOCK_MAX) took the next batch at 64 MiB and every
	 * later one too, the shift being raised but never lowered (rv35).
	 * Not at a stock's first refill, which maps one piece whatever the
	 * answer: that is every process's first malloc, and the question
	 * costs it overcommit_memory's open and read and two getrlimits
	 * (design.md, "What the first malloc reads"). The answer acts
	 * before the map: the batch of the refill after the first is 32
	 * pieces where nothing is costly, as when it was set after the first.
	 */
	bool first = !st->refills && !st->shift;
	bool lean = first || __hak_os_space_costly();
	unsigned n;
	void *p = NULL;

	if (!lean)
		st->shift = HAK_OS_STOCK_MAX_SHIFT;
	else if (st->shift > 2)
		st->shift = 2;
	n = 1u << st->shift;

	if (n > 1) {
		int err = errno;	/* a refused batch is no error */

		p = os_map_raw_aligned((size_t)n * len, len);
		if (!p)
			errno = err;
	}
	if (!p) {
		n = 1;
		p = os_map_raw_aligned(len, len);
	}
	if (!p)
		return false;
	st->refills++;
	st->next = (uintptr_t)p;
	st->left = n;
	/*
	 * Under vm.overcommit_memory=2 the untouched rest of a refill is
	 * charged as memory (a writable private mapping): batches grow
	 * 1, 2, 4 and no further there (8 MiB, against 64 MiB). The same
	 * under an address-space limit, of which the rest would take 62 MiB
	 * from the start (ml34: python3 under ulimit -v). The first refill
	 * grows as a lean one: the next asks.
	 */
	if (lean && st->shift < 2)
		st->shift++;
	return true;
}

void *__hak_os_stock_take(struct hak_os_stock *st, size_t len)
{
	void *p;

	if (fault_hit(HAK_OS_MAP) || !limit_allows(len)) {
		errno = ENOMEM;
		return NULL;
	}
	if (!st->left && !__hak_os_stock_fill(st, len)) {
		errno = ENOMEM;
		return NULL;
	}
	p = (void *)st->next;
	/*
	 * An empty stock keeps no address: one past its end (or into a
	 * dropped rest) may be where a later block is mapped, and valgrind's
	 * leak check would count this word as a pointer to it (a planted
	 * leak in the box matrix's memcheck.sh seen as reachable).
	 */
	st->left--;
	st->next = st->left ? st->next + len : 0;
	arch_fetch_add(&os_mapped, len);
	return p;
}

void __hak_os_stock_drop(struct hak_os_stock *st, size_t len)
{
	if (st->left)
		munmap((void *)st->next, (size_t)st->left * len);
	st->left = 0;
	st->next = 0;	/* as an empty stock: no stale address (see above) */
}

void __hak_os_unmap(void *p, size_t len)
{
	if (munmap(p, len) == 0)
		arch_fetch_add(&os_mapped, -len);
}

void *__hak_os_remap(void *p, size_t old_len, size_t new_len)
{
	void *q;

	if (fault_hit(HAK_OS_REMAP) ||
	    (new_len > old_len && !limit_grow_allows(new_len - old_len, new_len))) {
		errno = ENOMEM;
		return NULL;
	}
	q = mremap(p, old_len, new_len, MREMAP_MAYMOVE);
	if (q == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	arch_fetch_add(&os_mapped, new_len - old_len);
	return q;
}

void *__hak_os_extend(void *p, size_t old_len, size_t new_len, bool up)
{
	size_t more = new_len - old_len;
	int err = errno;	/* a refused side is no error: the caller maps fresh */
	char *q;

	if (fault_hit(HAK_OS_MAP) || !limit_grow_allows(more, new_len))
		return NULL;
	if (up && mremap(p, old_len, new_len, 0) != MAP_FAILED) {
		arch_fetch_add(&os_mapped, more);
		return p;
	}
	errno = err;
	if ((uintptr_t)p < more)
		return NULL;
	q = mmap((char *)p - more, more, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	errno = err;
	if (q == MAP_FAILED)
		return NULL;
	if (q != (char *)p - more) {	/* a kernel without MAP_FIXED_NOREPLACE */
		munmap(q, more);
		return NULL;
	}
	arch_fetch_add(&os_mapped, more);
	return q;
}

/*
 * 1 once a move failed (not by injection): a kernel that moves one mapping
 * per call (EFAULT before Linux 6.17), or one out of memory; either way
 * later moves would fail too, and a failure may lose dst's address space.
 */
static int move_off;		/* atomic */

void (*hak_test_os_move_hole)(void *dst, size_t len);

/*
 * Is every page of [p, p + len) mapped? mincore fails with ENOMEM on a
 * range with a hole; it faults nothing in.
 */
static bool all_mapped(void *p, size_t len)
{
	unsigned char vec[256];
	char *c = p, *end = c + len;

	if (__hak_os_sandboxed())
		return false;	/* unknown: src is given up, never used with holes */
	while (c < end) {
		size_t n = (size_t)(end - c) / HAK_OS_PAGE;

		if (n > sizeof(vec))
			n = sizeof(vec);
		if (mincore(c, n * HAK_OS_PAGE, vec) && errno == ENOMEM)
			return false;
		c += n * HAK_OS_PAGE;
	}
	return true;
}

enum hak_os_move __hak_os_move(void *src, void *dst, size_t len)
{
	int err = errno;
	bool injected = false;
	void *r;

	/* valgrind tracks mappings itself and may refuse a move of several */
	if (arch_load_relaxed(&move_off) || hak_vg_running())
		return HAK_MOVE_KEPT;
	if (fault_hit(HAK_OS_REMAP)) {
		/* as a kernel that unmaps the destination, then finds the source unfit */
		munmap(dst, len);
		if (IS_ENABLED(CONFIG_HAK_FAULT_INJECT) && hak_test_os_move_hole)
			hak_test_os_move_hole(dst, len);
		injected = true;
		r = MAP_FAILED;
	} else {
		r = mremap(src, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	}
	if (r != MAP_FAILED) {
		arch_fetch_add(&os_mapped, -len);	/* src's range is gone */
		return HAK_MOVE_DONE;
	}
	if (!injected)
		arch_store_relaxed(&move_off, 1);
	/*
	 * mremap may have unmapped dst before it failed, and another thread
	 * may map that hole at once: map it back only where it is still free.
	 */
	r = mmap(dst, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	errno = err;
	if (r == dst)
		return HAK_MOVE_KEPT;	/* nothing of dst was mapped: nothing moved */
	if (r != MAP_FAILED)		/* a kernel without MAP_FIXED_NOREPLACE */
		munmap(r, len);
	/*
	 * Part of dst is mapped: by another thread, or still ours (the call
	 * failed before it unmapped dst), or pages that moved (a move of
	 * several mappings that failed half way: Linux 6.17 on, only out of
	 * memory or at the map count limit). The last leaves holes in src.
	 */
	if (!all_mapped(src, len))
		return HAK_MOVE_SPLIT;
	arch_fetch_add(&os_mapped, -len);	/* dst is not ours to use or unmap */
	return HAK_MOVE_LOST;
}

bool __hak_os_purge(void *p, size_t len)
{
	if (fault_hit(HAK_OS_PURGE))
		return false;
	return madvise(p, len, MADV_DONTNEED) == 0;
}

bool __hak_os_resident(void *p, size_t len, unsigned char *vec)
{
	if (__hak_os_sandboxed())
		return false;
	return mincore(p, len, vec) == 0;
}

#define RESIDENT_VEC	1024	/* pages per mincore call of the statistics */
#define RESIDENT_REGIONS 64	/* regions per PAGEMAP_SCAN call */

/* linux/fs.h of Linux 6.7 on; the build's headers may be older */
struct os_page_region {
	uint64_t start, end, categories;
};

struct os_pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define OS_PAGEMAP_SCAN		_IOWR('f', 16, struct os_pm_scan_arg)
#define OS_PAGE_IS_PRESENT	(1u << 3)
#define OS_PAGE_IS_PFNZERO	(1u << 5)
#define OS_PAGE_IS_HUGE		(1u << 6)

/*
 * Bytes of [a, a + len) present and not the zero page, and of those in
 * huge pages; false when the kernel refuses the call (too old: ENOTTY or
 * EINVAL).
 */
static bool rss_scan(int fd, char *a, size_t len, size_t *bytes, size_t *huge)
{
	struct os_page_region vec[RESIDENT_REGIONS];
	struct os_pm_scan_arg arg;
	uint64_t at = (uintptr_t)a, end = at + len;
	long n, i;

	while (at < end) {
		memset(&arg, 0, sizeof(arg));
		arg.size = sizeof(arg);
		arg.start = at;
		arg.end = end;
		arg.vec = (uintptr_t)vec;
		arg.vec_len = RESIDENT_REGIONS;
		arg.category_mask = OS_PAGE_IS_PRESENT | OS_PAGE_IS_PFNZERO;
		arg.category_inverted = OS_PAGE_IS_PFNZERO;
		arg.return_mask = OS_PAGE_IS_PRESENT | OS_PAGE_IS_HUGE;
		n = ioctl(fd, OS_PAGEMAP_SCAN, &arg);
		if (n < 0)
			return errno == ENOMEM;	/* a hole: the rest counts 0 */
		for (i = 0; i < n; i++) {
			*bytes += vec[i].end - vec[i].start;
			if (vec[i].categories & OS_PAGE_IS_HUGE)
				*huge += vec[i].end - vec[i].start;
		}
		if (arg.walk_end <= at)
			break;
		at = arg.walk_end;
	}
	return true;
}

static int rss_scan_works __boot_once;	/* atomic: 0 untried, 1 works, -1 not */

void __hak_os_rss_open(struct hak_os_rss *r)
{
	size_t probe = 0, huge = 0;
	int saved = errno;

	*r = (struct hak_os_rss){ .fd = -1 };
	if (arch_load_relaxed(&rss_scan_works) < 0 || hak_vg_running() || __hak_os_sandboxed())
		return;
	r->fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (r->fd >= 0 && !arch_load_relaxed(&rss_scan_works))
		arch_store_relaxed(&rss_scan_works,
				   rss_scan(r->fd, (char *)&rss_scan_works - ((uintptr_t)&rss_scan_works &
						(HAK_OS_PAGE - 1)), HAK_OS_PAGE, &probe, &huge) ? 1 : -1);
	if (r->fd >= 0 && arch_load_relaxed(&rss_scan_works) < 0) {
		close(r->fd);
		r->fd = -1;
	}
	errno = saved;
}

void __hak_os_rss_close(struct hak_os_rss *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	if (r->v)
		munmap(r->v, r->cap * sizeof(*r->v));
	r->v = NULL;
	r->n = r->cap = 0;
}

/*
 * Mapped directly (not counted as hakmem's, not under its memory limit):
 * the report's scratch, gone at close. Grows only when empty (after a
 * flush), so nothing is copied.
 */
bool __hak_os_rss_room(struct hak_os_rss *r, size_t n)
{
	size_t bytes;
	int saved;
	void *v;

	if (n <= r->cap - r->n)
		return true;
	if (r->n || n > SIZE_MAX / 2 / sizeof(*r->v))
		return false;
	saved = errno;		/* a report leaves errno alone */
	bytes = HAK_ALIGN_UP((n + n / 4 + 64) * sizeof(*r->v), HAK_OS_PAGE);
	v = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v != MAP_FAILED) {
		if (r->v)
			munmap(r->v, r->cap * sizeof(*r->v));
		r->v = v;
		r->cap = bytes / sizeof(*r->v);
	}
	errno = saved;
	return v != MAP_FAILED;
}

void __hak_os_rss_add(struct hak_os_rss *r, void *p, size_t len)
{
	if (r->n < r->cap)
		r->v[r->n++] = (struct hak_os_rss_range){ p, len };
	else
		r->early += __hak_os_resident_bytes(r, p, len);
}

size_t __hak_os_rss_flush(struct hak_os_rss *r)
{
	size_t i, bytes = r->early;

	for (i = 0; i < r->n; i++)
		bytes += __hak_os_resident_bytes(r, r->v[i].p, r->v[i].len);
	r->n = 0;
	r->early = 0;
	return bytes;
}

size_t __hak_os_resident_bytes(struct hak_os_rss *r, void *p, size_t len)
{
	unsigned char vec[RESIDENT_VEC];
	char *a = (char *)((uintptr_t)p & ~(HAK_OS_PAGE - 1));
	size_t n, i, bytes = 0, huge = 0;
	int saved = errno;

	len = HAK_ALIGN_UP(len + (size_t)((char *)p - a), HAK_OS_PAGE);
	if (r->fd >= 0 && rss_scan(r->fd, a, len, &bytes, &huge)) {
		r->huge += huge;
		errno = saved;
		return bytes;
	}
	bytes = 0;
	while (len && !__hak_os_sandboxed()) {
		n = len / HAK_OS_PAGE < RESIDENT_VEC ? len / HAK_OS_PAGE : RESIDENT_VEC;
		if (!mincore(a, n * HAK_OS_PAGE, vec))
			for (i = 0; i < n; i++)
				bytes += (vec[i] & 1) * HAK_OS_PAGE;
		a += n * HAK_OS_PAGE;
		len -= n * HAK_OS_PAGE;
	}
	errno = saved;
	return bytes;
}

/* 0: untried, 1: process_madvise takes MADV_DONTNEED, -1: it does not */
static int batch_works __boot_once;		/* atomic */

/* One system call for the whole batch; false when it cannot be used. */
static bool purge_batched(struct hak_purge_batch *b)
{
	size_t sum = 0;
	ssize_t r;
	unsigned i;
	int fd;

	/*
	 * valgrind does not know the call (it warns, then fails it); a pidfd
	 * opened per batch, not kept, so fork and programs that close every
	 * descriptor cannot leave us a stale one.
	 */
	if (arch_load_relaxed(&batch_works) < 0 || hak_vg_running() || __hak_os_sandboxed())
		return false;
	fd = (int)syscall(SYS_pidfd_open, __hak_os_getpid(), 0);
	if (fd < 0)
		return false;		/* EMFILE, or no pidfd: per range */
	r = syscall(SYS_process_madvise, fd, b->r, (size_t)b->n, MADV_DONTNEED, 0);
	/*
	 * Not close(): it is a cancellation point, and this runs inside
	 * malloc and free with the heap's scan lock held (lib/heap.c
	 * heap_scan): a thread with a cancel pending was unwound from here,
	 * the lock still held. syscall() is never a cancellation point.
	 */
	syscall(SYS_close, fd);
	if (r < 0) {
		if (errno == EINVAL || errno == ENOSYS || errno == EPERM)
			arch_store_relaxed(&batch_works, -1);
		return false;
	}
	arch_store_relaxed(&batch_works, 1);
	/* A short count: the ranges past it go one by one (again is harmless). */
	for (i = 0; i < b->n && sum + b->r[i].iov_len <= (size_t)r; i++)
		sum += b->r[i].iov_len;
	b->done += sum;
	memmove(b->r, b->r + i, (b->n - i) * sizeof(b->r[0]));
	b->n -= i;
	return true;
}

void __hak_os_purge_batch_off(void)
{
	arch_store_relaxed(&batch_works, -1);
}

void __hak_os_purge_add(struct hak_purge_batch *b, void *p, size_t len)
{
	if (fault_hit(HAK_OS_PURGE))
		return;
	if (b->n == HAK_PURGE_BATCH)
		__hak_os_purge_flush(b);
	b->r[b->n].iov_base = p;
	b->r[b->n].iov_len = len;
	b->n++;
}

size_t __hak_os_purge_flush(struct hak_purge_batch *b)
{
	int err = errno;	/* a malloc that succeeds leaves errno alone */
	unsigned i;

	if (b->n > 1)
		purge_batched(b);
	for (i = 0; i < b->n; i++)
		if (madvise(b->r[i].iov_base, b->r[i].iov_len, MADV_DONTNEED) == 0)
			b->done += b->r[i].iov_len;
	b->n = 0;
	errno = err;
	return b->done;
}

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL	102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE	103
#endif

enum { GUARD_UNTRIED, GUARD_MARKER, GUARD_PROTECT };

static int guard_how;		/* atomic: GUARD_*, set once by the probe */
static int guard_mixed;		/* atomic: markers, but some guard is an mprotect */

/*
 * Does this kernel take MADV_GUARD_INSTALL? Tried on a page of its own
 * (a refusal on a caller's page may be its mlock, not the kernel's age).
 * Racing first callers may both probe; they agree.
 */
static int guard_probe(void)
{
	int how = GUARD_PROTECT;
	void *p;

	if (!hak_vg_running()) {
		p = mmap(NULL, HAK_OS_PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED) {
			if (madvise(p, HAK_OS_PAGE, MADV_GUARD_INSTALL) == 0)
				how = GUARD_MARKER;
			munmap(p, HAK_OS_PAGE);
		}
	}
	arch_cmpxchg(&guard_how, GUARD_UNTRIED, how);
	return arch_load_relaxed(&guard_how);
}

static inline bool guard_markers(void)
{
	int how = arch_load_relaxed(&guard_how);

	if (unlikely(how == GUARD_UNTRIED)) {
		int err = errno;

		how = guard_probe();
		errno = err;
	}
	return how == GUARD_MARKER;
}

bool __hak_os_guard_splits(void)
{
	return !guard_markers() || arch_load_relaxed(&guard_mixed);
}

bool __hak_os_guard(void *p, size_t len)
{
	int err = errno;
	bool ok;

	if (guard_markers()) {
		if (madvise(p, len, MADV_GUARD_INSTALL) == 0)
			return true;
		if (errno != EINVAL) {
			errno = err;
			return false;
		}
		/* before the mprotect: an unguard of this page must undo it */
		arch_store_relaxed(&guard_mixed, 1);
	}
	/*
	 * mprotect keeps the pages, a marker drops them: drop them here too.
	 * A split's guard is the cached tail's first page, old data; lifted
	 * inside a block joined from purged ones it was handed to calloc as
	 * zeros (selftests/hardened/hd_bc_calloc, rv26).
	 */
	if (madvise(p, len, MADV_DONTNEED))
		memset(p, 0, len);
	ok = mprotect(p, len, PROT_NONE) == 0;
	errno = err;
	return ok;
}

bool __hak_os_unguard(void *p, size_t len)
{
	int err = errno;
	bool ok = true, markers = guard_markers();

	if (markers)
		ok = madvise(p, len, MADV_GUARD_REMOVE) == 0;
	/* mprotect(PROT_READ | PROT_WRITE) leaves a marker in place */
	if (ok && (!markers || arch_load_relaxed(&guard_mixed)))
		ok = mprotect(p, len, PROT_READ | PROT_WRITE) == 0;
	errno = err;
	if (!ok)
		return false;
	/* memcheck keeps a lifted guard NOACCESS: a slab carved over it later
	 * would report the allocator's own header writes */
	hak_vg_opened(p, len);
	return true;
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif

bool __hak_os_advise_huge(void *p, size_t len, bool on)
{
	return madvise(p, len, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == 0;
}

bool __hak_os_collapse(void *p, size_t len)
{
	return madvise(p, len, MADV_COLLAPSE) == 0;
}

size_t __hak_os_mapped(void)
{
	return arch_load_relaxed(&os_mapped);
}

/*
 * In a sandbox, the tenth field of /proc/self/stat (the same count, the
 * whole process's): a filter in place at exec allows the read, and a late
 * one refuses it (read_file_at), which reads as 0 faults.
 */
static size_t stat_minflt(void)
{
	char buf[512];
	const char *s;
	size_t v = 0;
	int field = 2;		/* the first after the name, whose ')' may recur in it */

	if (read_file_at(AT_FDCWD, "/proc/self/stat", buf, sizeof(buf)) <= 0 ||
	    !(s = strrchr(buf, ')')))
		return 0;
	for (s++; *s && field < 10; s++)
		field += *s == ' ';
	while (field == 10 && *s >= '0' && *s <= '9')
		v = v * 10 + (size_t)(*s++ - '0');
	return v;
}

size_t __hak_os_minor_faults(size_t *peak)
{
	struct rusage ru;

	if (peak)
		*peak = 0;
	if (__hak_os_sandboxed())
		return stat_minflt();
	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	if (peak && ru.ru_maxrss > 0)
		*peak = (size_t)ru.ru_maxrss << 10;	/* KiB */
	return (size_t)ru.ru_minflt;
}

int __hak_os_getrlimit(int res, struct rlimit *rl)
{
	if (__hak_os_sandboxed_late())
		return -1;
	return getrlimit((__rlimit_resource_t)res, rl);
}

static int busy_sched = 1;	/* atomic: 0 once /proc's schedstat failed */

/*
 * "run wait slices": the first two fields, summed: 0, or the open's errno
 * (EINVAL: not in that form).
 */
static int busy_read(int dir, const char *path, uint64_t *ns)
{
	char buf[96];
	uint64_t v[2] = { 0, 0 };
	ssize_t n = read_file_at(dir, path, buf, sizeof(buf));
	int field = 0;

	if (n < 0)
		return (int)-n;
	for (ssize_t i = 0; i < n && field < 2; i++) {
		if (buf[i] >= '0' && buf[i] <= '9')
			v[field] = v[field] * 10 + (uint64_t)(buf[i] - '0');
		else if (buf[i] == ' ')
			field++;
		else
			return EINVAL;
	}
	if (field < 2)
		return EINVAL;
	*ns = v[0] + v[1];
	return 0;
}

static uint64_t cpu_ns(clockid_t clk)
{
	struct timespec ts;

	if (__hak_os_clock(clk, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Out of file descriptors: no figure this time, the source kept. */
static bool fds_out(int e)
{
	return e == EMFILE || e == ENFILE;
}

int __hak_os_busy_self(uint64_t *ns)
{
	int err = errno, e = ENOENT, src = HAK_OS_BUSY_SCHED;

	if (arch_load_relaxed(&busy_sched))
		e = busy_read(AT_FDCWD, "/proc/thread-self/schedstat", ns);
	if (fds_out(e)) {
		errno = err;
		return HAK_OS_BUSY_NONE;
	}
	if (e) {
		arch_store_relaxed(&busy_sched, 0);
		*ns = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
		src = *ns ? HAK_OS_BUSY_CPU : HAK_OS_BUSY_NONE;
	}
	errno = err;
	return src;
}

struct dirent64_hdr {			/* getdents64's record, name follows */
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

/*
 * The most other tasks whose schedstat a reading sums. Each costs three
 * system calls (9-11 us of CPU on this VM), and an idle program is what
 * the background thread reads at every pass (62-250 ms apart at the
 * default delay): a reading over 10,000 idle threads took 107 ms of CPU,
 * and such a program doing nothing used 26% of a CPU (rv33,
 * reliability.md). Past this count
 * the CPU-time clocks stand in (HAK_OS_BUSY_CPU), for that reading only:
 * with that many threads, any of them computing shows in the process's
 * CPU time however loaded the machine is.
 */
#define HAK_BUSY_TASKS_MAX	64

/*
 * The other tasks' sum: 0, or the errno of listing /proc/self/task (EIO:
 * its read failed), or E2BIG: more than HAK_BUSY_TASKS_MAX other tasks
 * (the listing stops there). A task gone meanwhile is skipped.
 */
static int busy_tasks(uint64_t *sum)
{
	char buf[1024] __attribute__((aligned(8)));
	pid_t tid;
	int dir;
	unsigned tasks = 0;
	ssize_t n;

	if (__hak_os_sandboxed())
		return EPERM;
	tid = (pid_t)syscall(SYS_gettid);
	dir = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return errno;
	*sum = 0;
	while ((n = syscall(SYS_getdents64, dir, buf, sizeof(buf))) > 0) {
		for (ssize_t at = 0; at < n;) {
			struct dirent64_hdr *d = (struct dirent64_hdr *)(buf + at);
			const char *c = d->name;
			char path[40];
			uint64_t t = 0, v;

			at += d->reclen;
			for (; *c >= '0' && *c <= '9' && c - d->name < 20; c++)
				t = t * 10 + (uint64_t)(*c - '0');
			if (*c || c == d->name || t == (uint64_t)tid)
				continue;	/* ".", "..", this thread */
			if (++tasks > HAK_BUSY_TASKS_MAX) {
				syscall(SYS_close, dir);
				return E2BIG;
			}
			memcpy(path, d->name, (size_t)(c - d->name));
			memcpy(path + (c - d->name), "/schedstat", sizeof("/schedstat"));
			if (!busy_read(dir, path, &v))
				*sum += v;
		}
	}
	syscall(SYS_close, dir);
	return n ? EIO : 0;
}

int __hak_os_busy_others(uint64_t *ns)
{
	int err = errno, e = ENOENT, src = HAK_OS_BUSY_SCHED;

	if (arch_load_relaxed(&busy_sched))
		e = busy_tasks(ns);
	if (fds_out(e)) {
		errno = err;
		return HAK_OS_BUSY_NONE;
	}
	if (e) {
		uint64_t all = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
		uint64_t own = cpu_ns(CLOCK_THREAD_CPUTIME_ID);

		if (e != E2BIG)		/* too many tasks: this reading only */
			arch_store_relaxed(&busy_sched, 0);
		*ns = all > own ? all - own : 0;
		src = all ? HAK_OS_BUSY_CPU : HAK_OS_BUSY_NONE;
	}
	errno = err;
	return src;
}
