// SPDX-License-Identifier: MIT
/*
 * The C library's allocation names, so that LD_PRELOAD or linking with
 * -lhakmem replaces malloc for the whole process. Every replaced symbol is
 * in this one object on purpose: a static link pulls all of them or none,
 * so libc's allocator can never serve part of the API.
 *
 * glibc also exports __libc_malloc and friends; a few programs call them
 * directly, so they are aliases here too (never glibc's own allocator).
 * C++'s global operator new and delete are here as well (at the end).
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/seccomp.h>
#include "init.h"
#include "os.h"
#include "stats.h"
#include "superslab.h"

/* C23 names that glibc 2.36's headers do not declare yet. */
void free_sized(void *p, size_t n);
void free_aligned_sized(void *p, size_t align, size_t n);

#define HAK_API(name)	name
#define HAK_API_CONST
#include "entry.h"

/*
 * reallocarray is realloc behind an overflow check, and glibc's calls the
 * process's realloc, whichever object defines it. A program may bring its
 * own malloc family ahead of the preload: Firefox's executable exports
 * mozjemalloc's malloc, free, realloc, memalign and more, but no
 * reallocarray, so the dynamic linker binds that one name to us. Calling
 * __hak_realloc here gave libX11's reallocarray(NULL, ...) a hakmem block
 * that XFree passed to mozjemalloc's free (SIGSEGV as Firefox opened its
 * display), and a block of the program's own would have been reported as
 * "not allocated by hakmem". The address comes from the GOT, which the
 * dynamic linker filled with the realloc every library calls: hakmem's
 * own when hakmem is the process's allocator. The empty asm keeps the
 * compiler from calling or inlining our definition instead.
 * (Documentation/reliability.md, "Fifteenth run").
 */
HAK_EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	void *(*process_realloc)(void *, size_t) = realloc;
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	__asm__("" : "+r"(process_realloc));
	return process_realloc(p, total);
}

HAK_EXPORT struct mallinfo2 mallinfo2(void)
{
	struct mallinfo2 mi;

	__hak_mallinfo2(&mi);
	return mi;
}

static int clamp_int(size_t v)
{
	return v > 0x7fffffff ? 0x7fffffff : (int)v;
}

HAK_EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 mi2;
	struct mallinfo mi;

	__hak_mallinfo2(&mi2);
	mi.arena = clamp_int(mi2.arena);
	mi.ordblks = clamp_int(mi2.ordblks);
	mi.smblks = clamp_int(mi2.smblks);
	mi.hblks = clamp_int(mi2.hblks);
	mi.hblkhd = clamp_int(mi2.hblkhd);
	mi.usmblks = clamp_int(mi2.usmblks);
	mi.fsmblks = clamp_int(mi2.fsmblks);
	mi.uordblks = clamp_int(mi2.uordblks);
	mi.fordblks = clamp_int(mi2.fordblks);
	mi.keepcost = clamp_int(mi2.keepcost);
	return mi;
}

HAK_EXPORT int malloc_info(int options, FILE *fp)
{
	return __hak_malloc_info(options, fp);
}

/*
 * mallopt: glibc's tunables (M_MMAP_THRESHOLD, M_ARENA_MAX, M_PERTURB, ...)
 * mean nothing to hakmem, which has its own (HAKMEM_*, options.md): each
 * is accepted and ignored, with glibc's answer (1; 0 for an M_MXFAST
 * outside 0..80 * sizeof(size_t) / 4, the only value glibc refuses).
 * Ours so that libc's is never linked: libc.a keeps mallopt in the object
 * of its malloc, so a -static program that called it failed to link
 * beside us ("multiple definition of `malloc'"); preloaded, libc's tuned
 * an arena nobody uses (rv31, selftests/core/api_static).
 */
HAK_EXPORT int mallopt(int param, int value)
{
	if (param == M_MXFAST)
		return value >= 0 && (size_t)value <= 80 * sizeof(size_t) / 4;
	return 1;
}

/*
 * cfree is free under its pre-2.26 name, which glibc keeps as a
 * compatibility symbol for programs linked before: without ours such a
 * program freed hakmem's blocks with glibc's free (selftests/preload/
 * old_names). An unversioned definition satisfies their versioned
 * reference.
 */
void cfree(void *p);

HAK_EXPORT void cfree(void *p) HAK_ALIAS_OF(free);
HAK_EXPORT void *__libc_malloc(size_t n) HAK_ALIAS_OF(malloc);
HAK_EXPORT void __libc_free(void *p) HAK_ALIAS_OF(free);
HAK_EXPORT void *__libc_calloc(size_t n, size_t size) HAK_ALIAS_OF(calloc);
HAK_EXPORT void *__libc_realloc(void *p, size_t n) HAK_ALIAS_OF(realloc);
HAK_EXPORT void *__libc_memalign(size_t align, size_t n) HAK_ALIAS_OF(memalign);
HAK_EXPORT void *__libc_valloc(size_t n) HAK_ALIAS_OF(valloc);
HAK_EXPORT void *__libc_pvalloc(size_t n) HAK_ALIAS_OF(pvalloc);

/* glibc exports these too (undeclared); libc.a defines them in its malloc.o */
int __libc_mallopt(int param, int value);
struct mallinfo __libc_mallinfo(void);

HAK_EXPORT int __libc_mallopt(int param, int value) HAK_ALIAS_OF(mallopt);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"	/* glibc's, not ours */
HAK_EXPORT struct mallinfo __libc_mallinfo(void) HAK_ALIAS_OF(mallinfo);
#pragma GCC diagnostic pop

/*
 * setrlimit and prlimit: the system call glibc makes, unchanged, then,
 * when this process's soft RLIMIT_AS went under what the page map needs,
 * the map is given up (lib/superslab.h, __hak_pm_fit_limit) before the
 * program's next mapping meets its 4 GiB: a program that allocated
 * before it limited itself (Python's resource.setrlimit) would otherwise
 * fail its next thread's stack or its own mmap, which hakmem never sees.
 * A limit lowered another way (ulimit(), the system call, another
 * process's prlimit) is caught at hakmem's next refused mapping
 * (__hak_purge_for_retry). The limit itself is never changed: adding
 * the map's 4 GiB to it would pass them on to exec'd programs.
 */
HAK_BUILD_BUG_ON(sizeof(struct rlimit) != sizeof(struct rlimit64));

/*
 * Is pid this process? The kernel takes any of its threads' ids for it
 * too (rlimits are the process's): tgkill with signal 0 tells one of ours.
 */
static bool pid_is_self(pid_t pid)
{
	int err = errno;
	pid_t me = __hak_os_getpid();
	bool self = !pid || pid == me || !syscall(SYS_tgkill, me, pid, 0);

	errno = err;
	return self;
}

HAK_EXPORT int prlimit(pid_t pid, __rlimit_resource_t res, const struct rlimit *rl,
		       struct rlimit *old)
{
	long r = syscall(SYS_prlimit64, pid, res, rl, old);

	if (!r && rl && res == RLIMIT_AS && pid_is_self(pid))
		__hak_pm_fit_limit();
	return (int)r;
}

HAK_EXPORT int prlimit64(pid_t pid, __rlimit_resource_t res, const struct rlimit64 *rl,
			 struct rlimit64 *old)
{
	return prlimit(pid, res, (const struct rlimit *)rl, (struct rlimit *)old);
}

HAK_EXPORT int setrlimit(__rlimit_resource_t res, const struct rlimit *rl)
{
	return prlimit(0, res, rl, NULL);
}

HAK_EXPORT int setrlimit64(__rlimit_resource_t res, const struct rlimit64 *rl)
{
	return prlimit(0, res, (const struct rlimit *)rl, NULL);
}

/*
 * prctl: the system call glibc makes, unchanged, after noting a program
 * on its way into a seccomp sandbox (lib/os.c, "Sandboxes"): it installs
 * a filter (PR_SET_SECCOMP: OpenSSH's pre-auth child, vsftpd) or sets
 * no_new_privs, which an unprivileged filter needs first (libseccomp's
 * seccomp_load does it for tor and others, Chromium's sandbox too).
 * Noted before the call: a filter that applies to every thread at once
 * (SECCOMP_FILTER_FLAG_TSYNC) must not meet a purge pass of another
 * thread in between. A probe that installs nothing (systemd asks
 * PR_SET_SECCOMP with no filter, to learn that seccomp is there) changes
 * nothing. A filter installed by syscall(SYS_seccomp) or raw assembly
 * is seen only after an exec (Seccomp: in /proc/self/status).
 */
HAK_EXPORT int prctl(int option, ...)
{
	unsigned long a[4];
	va_list ap;

	va_start(ap, option);
	for (unsigned i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if ((option == PR_SET_SECCOMP && (a[0] == SECCOMP_MODE_STRICT || a[1])) ||
	    (option == PR_SET_NO_NEW_PRIVS && a[0] == 1))
		__hak_os_sandbox_enter(HAK_SANDBOX_PRCTL);
	return (int)syscall(SYS_prctl, option, a[0], a[1], a[2], a[3]);
}

/*
 * C++'s replaceable global operator new and delete, by their Itanium-ABI
 * names. A process takes them from the first object that defines them, and
 * libstdc++'s call malloc and free, which come here. But a library linked
 * to another allocator may define them too, ahead of libstdc++: Debian's
 * libjemalloc.so.2 does, and h2load links it. jemalloc's operator new
 * takes from its own arenas, while its unsized operator delete calls
 * free() through its PLT, which the preload binds to us: a
 * std::string that libstdc++ grew in h2load ended in "invalid free"
 * (reliability.md, "Nineteenth run"). Defined here, every C++ allocation
 * of the process binds to hakmem ahead of such a library, as it does under
 * mimalloc or tcmalloc preloaded, which define them as well.
 *
 * Failure, as [new.delete.single] asks: while std::get_new_handler()
 * returns a handler, call it and try again; with none, operator new throws
 * std::bad_alloc, and the nothrow forms return NULL (without calling a
 * handler: one that throws could not be caught in C, and the exception
 * would leave a function its callers compiled as noexcept). Both come
 * from libstdc++ through weak references, resolved when this library is
 * loaded: a C++ program has libstdc++ loaded by then. Where there is no
 * __throw_bad_alloc to call (libc++, or libstdc++ first loaded by a later
 * dlopen), a failed throwing new ends in a one-line report and abort(),
 * never in a NULL return its caller would not check.
 */
typedef void (*hak_new_handler)(void);

extern hak_new_handler _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

static __noinline __cold void *cxx_new_failed(size_t align, size_t n)
{
	hak_new_handler (*get_handler)(void) = _ZSt15get_new_handlerv;
	void (*throw_bad_alloc)(void) = _ZSt17__throw_bad_allocv;

	/* weak: NULL when absent (the empty asm: sparse takes them for never NULL) */
	__asm__("" : "+r"(get_handler), "+r"(throw_bad_alloc));
	for (;;) {
		hak_new_handler h = get_handler ? get_handler() : NULL;
		void *p;

		if (!h)
			break;
		h();
		p = align ? __hak_aligned_alloc(align, n) : __hak_alloc(n);
		if (p)
			return p;
	}
	if (throw_bad_alloc)
		throw_bad_alloc();
	__hak_report("operator new(%zu) failed and std::bad_alloc cannot be thrown", n);
	abort();
}

static inline void *cxx_new(size_t n)
{
	void *p = __hak_alloc(n ? n : 1);

	if (unlikely(!p))
		return cxx_new_failed(0, n ? n : 1);
	return p;
}

static inline void *cxx_new_aligned(size_t align, size_t n)
{
	void *p = __hak_aligned_alloc(align, n ? n : 1);

	if (unlikely(!p))
		return cxx_new_failed(align, n ? n : 1);
	return p;
}

/* new, new[], and their nothrow, aligned and aligned nothrow forms */
HAK_EXPORT void *_Znwm(size_t n);
HAK_EXPORT void *_Znam(size_t n);
HAK_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt);
HAK_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *nt);
HAK_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t align);
HAK_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t align);
HAK_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *nt);
HAK_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *nt);
/* delete, delete[], and their sized, nothrow, aligned and aligned sized forms */
HAK_EXPORT void _ZdlPv(void *p);
HAK_EXPORT void _ZdaPv(void *p);
HAK_EXPORT void _ZdlPvm(void *p, size_t n);
HAK_EXPORT void _ZdaPvm(void *p, size_t n);
HAK_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *nt);
HAK_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *nt);
HAK_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t align);
HAK_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t align);
HAK_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t align);
HAK_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t align);
HAK_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *nt);
HAK_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *nt);

HAK_EXPORT void *_Znwm(size_t n)
{
	return cxx_new(n);
}

HAK_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt)
{
	(void)nt;
	return __hak_alloc(n ? n : 1);
}

HAK_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t align)
{
	return cxx_new_aligned(align, n);
}

HAK_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *nt)
{
	(void)nt;
	return __hak_aligned_alloc(align, n ? n : 1);
}

HAK_EXPORT void *_Znam(size_t n) HAK_ALIAS_OF(_Znwm);
HAK_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *nt) HAK_ALIAS_OF(_ZnwmRKSt9nothrow_t);
HAK_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t align) HAK_ALIAS_OF(_ZnwmSt11align_val_t);
HAK_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t align, const void *nt)
	HAK_ALIAS_OF(_ZnwmSt11align_val_tRKSt9nothrow_t);

/* The sizes and alignments a delete passes are hints; free needs neither. */
HAK_EXPORT void _ZdlPv(void *p)
{
	__hak_free(p);
}

HAK_EXPORT void _ZdlPvm(void *p, size_t n)
{
	(void)n;
	__hak_free(p);
}

HAK_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t align)
{
	(void)n;
	(void)align;
	__hak_free(p);
}

HAK_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *nt)
{
	(void)nt;
	__hak_free(p);
}

HAK_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *nt)
{
	(void)align;
	(void)nt;
	__hak_free(p);
}

HAK_EXPORT void _ZdaPv(void *p) HAK_ALIAS_OF(_ZdlPv);
HAK_EXPORT void _ZdaPvm(void *p, size_t n) HAK_ALIAS_OF(_ZdlPvm);
HAK_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t align) HAK_ALIAS_OF(_ZdlPvm);
HAK_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t align) HAK_ALIAS_OF(_ZdlPvm);
HAK_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t align)
	HAK_ALIAS_OF(_ZdlPvmSt11align_val_t);
HAK_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *nt) HAK_ALIAS_OF(_ZdlPvRKSt9nothrow_t);
HAK_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align, const void *nt)
	HAK_ALIAS_OF(_ZdlPvSt11align_val_tRKSt9nothrow_t);
