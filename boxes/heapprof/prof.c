// SPDX-License-Identifier: MIT
/*
 * Heap profiler: sampling, sampled-block bookkeeping and dumps.
 *
 * Sampling. Each thread counts down the bytes it asks malloc for: the
 * fast path takes them off a budget of at most HAK_SMALL_MAX bytes
 * (__hak_tc.prof_left), the slow path off the rest (hp_pending). When the
 * count would go negative, the allocation that
 * crossed zero is sampled and a new count is drawn from an exponential
 * distribution of mean HAKMEM_PROF_SAMPLE: a block of n bytes is then
 * sampled with probability 1 - exp(-n/mean), whatever came before it, and
 * each sample stands for 1 / (1 - exp(-n/mean)) blocks like it (the weight
 * added to its stack's totals), which makes the totals unbiased.
 *
 * Sampled blocks. A sampled block is served by the big path (a small one
 * from the L2.5 pool's smallest class, when built), so its free reaches
 * __hak_free_big, which calls hak_prof_forget() while any sample
 * is live. The blocks are in an open-addressing table keyed by address
 * (linear probing, backward-shift deletion) in an OS-layer mapping that
 * doubles when half full; each entry points at its stack record.
 *
 * Stacks. Walked by unwind.c (never allocates), hashed and kept once each
 * in metadata memory, never freed (a profile has few distinct stacks).
 * unwind.c remembers which record a walk gave, and when a later sample's
 * stack is provably the same (its walk cache) hands the record back
 * without walking or hashing.
 *
 * Locking: one lock (prof_lock) for both tables, the walk cache and
 * dumps; a full walk takes unwind.c's module lock inside it. A per-thread
 * flag (busy) stops a malloc made while the thread is inside the profiler
 * (a signal handler, the loader) from sampling again; it is served
 * unsampled.
 *
 * Dumps: at exit (a destructor; a fork child writes its own file, named by
 * its pid), by hak_prof_dump() and after HAKMEM_PROF_SIGNAL: the handler
 * only sets a flag, and the next sample or sampled free writes the file.
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "box.h"
#include "boxes/heapprof/heapprof.h"
#include "boxes/heapprof/prof_api.h"
#include "boxes/heapprof/prof_internal.h"
#include "boxes/l25_pool/l25.h"

#define HP_STACK_BUCKETS	16384
#define HP_LEAKS_TOP		20

struct hp_entry {
	uintptr_t addr;			/* 0: empty */
	struct hp_stack *st;
	double w;			/* weight: objects this sample stands for */
	size_t n;			/* requested bytes */
};

unsigned long __hak_prof_live;

static int hp_on __boot_once;			/* HAKMEM_PROF=1 and the tables exist */
static size_t hp_mean;
static unsigned hp_depth;
static enum hp_format hp_format;
static char hp_out[256] = "hakmem-prof";
static volatile sig_atomic_t hp_signalled;
static unsigned hp_signal_dumps;

/*
 * The profile lock is a test-and-set word, not a struct hak_lock: a
 * sample or a sampled free holds it for about a hundred instructions, and
 * a glibc mutex lock/unlock pair costs some fifty more (callgrind), which
 * every sample paid twice. A waiter spins briefly, then yields, then naps
 * (os.h, __hak_os_backoff: the holder may be preempted, in a full walk or
 * a dump, or at a lower priority on this CPU). Like every allocator lock,
 * it is passed by the thread inside fork (lock.h).
 *
 * The word holds its holder's id, the address of that thread's prof_me
 * (0: free), so a fork from a signal handler tells a hold of its own
 * interrupted frame, which it must not wait for, and others' forks learn
 * that such a frame holds it (lib/init.c, "Fork, back-off"; HAKMEM_PROF=1
 * runs of fork_storm -s hung 1 in 10 at 16 threads).
 */
static uintptr_t prof_lock;
static __thread char prof_me __attribute__((tls_model("initial-exec")));
static unsigned char prof_fork_state;	/* HAK_FORK_* per fork level (lock.h) */

static __always_inline bool prof_lock_try(void)
{
	uintptr_t free = 0;

	return __atomic_compare_exchange_n(&prof_lock, &free, (uintptr_t)&prof_me, false,
					   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static __always_inline void prof_lock_take(void) __acquires(&prof_lock)
{
	unsigned n = 0;

	__acquire(&prof_lock);
	if (hak_lock_passed())
		return;
	while (!prof_lock_try())
		while (__atomic_load_n(&prof_lock, __ATOMIC_RELAXED))
			__hak_os_backoff(n++);
}

static __always_inline void prof_lock_drop(void) __releases(&prof_lock)
{
	__release(&prof_lock);
	if (!hak_lock_passed())
		__atomic_store_n(&prof_lock, 0, __ATOMIC_RELEASE);
}

static struct hp_stack **hp_buckets;
static struct hp_stack *hp_all;
static struct hp_entry *hp_tab;
/* Sampled blocks per hash bucket of their address (heapprof.h). */
uint32_t *__hak_prof_filter;
static size_t hp_tab_cap;		/* power of two */
static size_t hp_tab_used;

static __thread int hp_busy;
static __thread uint64_t hp_rng;

/* ---- numbers without libm ---- */

/* ln(x) for x > 0: exponent by frexp-style bit work, then atanh series. */
static double hp_ln(double x)
{
	union { double d; uint64_t u; } v = { .d = x };
	int e = (int)((v.u >> 52) & 0x7ff) - 1023;
	double m, z, z2, s;

	v.u = (v.u & ~(0x7ffULL << 52)) | (1023ULL << 52);
	m = v.d;				/* [1, 2) */
	if (m > 1.41421356237) {
		m /= 2;
		e++;
	}
	z = (m - 1) / (m + 1);			/* |z| < 0.172 */
	z2 = z * z;
	s = z * (2 + z2 * (2.0 / 3 + z2 * (2.0 / 5 + z2 * (2.0 / 7 + z2 * (2.0 / 9)))));
	return s + e * 0.69314718055994531;
}

/* exp(-x) for x >= 0: 2^-k e^-g, g in [0, ln 2), Taylor to degree 10 (error < 5e-10). */
static double hp_exp_neg(double x)
{
	double t, g, r;
	union { double d; uint64_t u; } sc;
	int k;

	if (x > 700)
		return 0;
	t = x * 1.4426950408889634;		/* x log2(e) */
	k = (int)t;
	g = -(t - k) * 0.69314718055994531;	/* (-ln 2, 0] */
	r = 1 + g * (1 + g * (1.0 / 2 + g * (1.0 / 6 + g * (1.0 / 24 + g * (1.0 / 120 +
	    g * (1.0 / 720 + g * (1.0 / 5040 + g * (1.0 / 40320 + g * (1.0 / 362880 +
	    g * (1.0 / 3628800))))))))));
	sc.u = (uint64_t)(1023 - k) << 52;
	return r * sc.d;
}

/* Objects one sample of n bytes stands for: 1 / (1 - exp(-n/mean)). */
static double hp_weight(size_t n)
{
	double x = (double)n / (double)hp_mean;

	if (n == 0)
		return 1;
	if (x < 1e-4)
		return 1 / x + 0.5 + x / 12;
	return 1 / (1 - hp_exp_neg(x));
}

static uint64_t hp_next_random(void)
{
	static unsigned long seq;
	uint64_t z;

	if (!hp_rng)
		hp_rng = (uint64_t)(uintptr_t)&hp_rng ^
			 (__atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15ULL) ^
			 ((uint64_t)__hak_os_getpid() << 32);
	z = (hp_rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Bytes to the next sample: exponential with mean hp_mean. */
static intptr_t hp_interval(void)
{
	double u = ((double)(hp_next_random() >> 11) + 1) * (1.0 / 9007199254740992.0);
	double d = -hp_ln(u) * (double)hp_mean;

	if (d > (double)(INTPTR_MAX / 2))
		return INTPTR_MAX / 2;
	return (intptr_t)d;
}

/* ---- stack table ---- */

static uint64_t hp_hash(const uintptr_t *pc, unsigned n)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ n;
	unsigned i;

	for (i = 0; i < n; i++) {
		h ^= pc[i];
		h *= 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h;
}

/* The record of stack pc[0..n), made on first sight; NULL without memory. */
static struct hp_stack *hp_stack_get(const uintptr_t *pc, unsigned n)
{
	uint64_t h = hp_hash(pc, n);
	struct hp_stack **b = &hp_buckets[h & (HP_STACK_BUCKETS - 1)];
	struct hp_stack *s;

	for (s = *b; s; s = s->next)
		if (s->hash == h && s->depth == n && !memcmp(s->pc, pc, n * sizeof(*pc)))
			return s;
	s = __hak_meta_alloc(offsetof(struct hp_stack, pc) + n * sizeof(*pc));
	if (!s)
		return NULL;
	s->hash = h;
	s->depth = n;
	memcpy(s->pc, pc, n * sizeof(*pc));
	s->next = *b;
	*b = s;
	s->all = hp_all;
	hp_all = s;
	return s;
}

/* ---- sampled-block table ---- */

static size_t hp_slot(uintptr_t a, size_t cap)
{
	uint64_t h = (uint64_t)a * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 20) & (cap - 1);
}

static uint32_t *hp_filter_of(uintptr_t a)
{
	return hak_prof_filter_of(a);
}

static bool hp_tab_grow(void)
{
	size_t cap = hp_tab_cap ? hp_tab_cap * 2 : 4096, i, j;
	struct hp_entry *t = __hak_os_map(HAK_ALIGN_UP(cap * sizeof(*t), HAK_OS_PAGE));

	if (!t)
		return false;
	for (i = 0; i < hp_tab_cap; i++) {
		if (!hp_tab[i].addr)
			continue;
		for (j = hp_slot(hp_tab[i].addr, cap); t[j].addr; j = (j + 1) & (cap - 1))
			;
		t[j] = hp_tab[i];
	}
	if (hp_tab)
		__hak_os_unmap(hp_tab, HAK_ALIGN_UP(hp_tab_cap * sizeof(*t), HAK_OS_PAGE));
	hp_tab = t;
	hp_tab_cap = cap;
	return true;
}

static void hp_tab_insert(uintptr_t a, struct hp_stack *st, double w, size_t n)
{
	size_t j;

	if ((hp_tab_used + 1) * 2 > hp_tab_cap && !hp_tab_grow())
		return;
	for (j = hp_slot(a, hp_tab_cap); hp_tab[j].addr; j = (j + 1) & (hp_tab_cap - 1))
		if (hp_tab[j].addr == a)
			break;
	if (!hp_tab[j].addr) {
		hp_tab_used++;
		__atomic_add_fetch(hp_filter_of(a), 1, __ATOMIC_RELAXED);
	} else {
		hp_tab[j].st->live_n -= hp_tab[j].w;	/* a block freed unseen */
		hp_tab[j].st->live_b -= hp_tab[j].w * (double)hp_tab[j].n;
	}
	hp_tab[j] = (struct hp_entry){ a, st, w, n };
	st->live_n += w;
	st->live_b += w * (double)n;
	__atomic_store_n(&__hak_prof_live, hp_tab_used, __ATOMIC_RELAXED);
}

static void hp_tab_remove(uintptr_t a)
{
	size_t mask = hp_tab_cap - 1, i, j, k;
	struct hp_entry *e;

	if (!hp_tab)
		return;
	for (i = hp_slot(a, hp_tab_cap); hp_tab[i].addr != a; i = (i + 1) & mask)
		if (!hp_tab[i].addr)
			return;
	e = &hp_tab[i];
	e->st->live_n -= e->w;
	e->st->live_b -= e->w * (double)e->n;
	/* Backward shift: pull later entries of the run into the hole. */
	for (j = i;;) {
		hp_tab[i].addr = 0;
		for (;;) {
			j = (j + 1) & mask;
			if (!hp_tab[j].addr)
				goto done;
			k = hp_slot(hp_tab[j].addr, hp_tab_cap);
			/* stay when k lies cyclically in (i, j] */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		hp_tab[i] = hp_tab[j];
		i = j;
	}
done:
	__atomic_sub_fetch(hp_filter_of(a), 1, __ATOMIC_RELAXED);
	hp_tab_used--;
	__atomic_store_n(&__hak_prof_live, hp_tab_used, __ATOMIC_RELAXED);
}

/* ---- sampling ---- */

static void hp_dump_pending(void);

/*
 * Walk the stack of a sampled block p of n bytes and record it; ra is the
 * return address of the profiler's entry (frames below it are ours).
 */
static void hp_record(void *p, size_t n, void *ra)
{
	uintptr_t pc[HP_MAX_DEPTH];
	unsigned depth = 0;
	struct hp_stack *st;
	double w = hp_weight(n);

	prof_lock_take();
	st = __hak_prof_backtrace(pc, hp_depth, (uintptr_t)ra, &depth);
	if (!st) {
		st = hp_stack_get(pc, depth);
		__hak_prof_backtrace_remember(st);
	}
	if (st) {
		st->alloc_n += w;
		st->alloc_b += w * (double)n;
		hp_tab_insert((uintptr_t)p, st, w, n);
	}
	prof_lock_drop();
}

static __thread unsigned long hp_pending;	/* countdown beyond the fast budget */

/* Split countdown r into the fast budget (at most HAK_SMALL_MAX) and the rest. */
static void hp_set_countdown(struct hak_tcache *tc, unsigned long r)
{
	unsigned long fast = r < HAK_SMALL_MAX ? r : HAK_SMALL_MAX;

	tc->prof_left = fast;
	hp_pending = r - fast;
}

/*
 * Count n bytes against the thread's countdown (fast budget + pending);
 * true when this allocation is to be sampled. Dormant, only refill the
 * fast budget; before init is done (a malloc made by init itself) leave it
 * at zero, so the next malloc comes back here.
 */
static __always_inline bool hp_count(struct hak_tcache *tc, size_t n)
{
	unsigned long r;

	if (!hp_on) {
		tc->prof_left = __atomic_load_n(&__hak_init_done, __ATOMIC_ACQUIRE) ?
				HAK_SMALL_MAX : 0;
		return false;
	}
	/* A thread's first countdown (0 in fresh TLS) samples nothing. */
	if (!hp_rng) {
		hp_set_countdown(tc, (unsigned long)hp_interval());
		return false;
	}
	r = tc->prof_left + hp_pending;
	if (n <= r) {
		hp_set_countdown(tc, r - n);
		return false;
	}
	hp_set_countdown(tc, (unsigned long)hp_interval());
	return !hp_busy;
}

/*
 * What to ask the big path for, for a sampled block of n bytes. A small
 * one comes from the L2.5 pool's smallest class (40 KiB) when the pool is
 * built: about 150 instructions there and back, against 1,700 for a
 * mapping of its own from the large path (BigCache, the large-block
 * table). Only the pages the program touches become resident, as with a
 * mapping of its own; malloc_usable_size() says 40 KiB.
 */
static size_t hp_sampled_size(size_t n)
{
	if (n <= HAK_SMALL_MAX && hak_l25_wants(HAK_SMALL_MAX + 1))
		return HAK_SMALL_MAX + 1;
	return n;
}

/* hak_prof_alloc's rest: a thread's first count, calls before init, samples. */
static __noinline void *hp_alloc_slow(size_t n)
{
	struct hak_tcache *tc = &__hak_tc;
	void *p;

	tc->prof_left += n;		/* undo the fast path's borrow */
	__hak_init();
	if (!hp_count(tc, n))
		return __hak_alloc_nosample(n);
	hp_busy = 1;
	p = __hak_alloc_big(hp_sampled_size(n));
	if (p)
		hp_record(p, n, __builtin_return_address(0));
	if (hp_signalled)
		hp_dump_pending();
	hp_busy = 0;
	return p;
}

/*
 * Every big request comes here, and every 32 KiB of small ones above
 * HAK_DIRECT_MAX (smaller ones only while sampling, by __hak_prof_direct). The two
 * common cases make no call of their own and end in the allocation (a
 * tail call for a big one), so they save no registers: dormant, refill
 * the budget; active with the countdown covering n, take n off it.
 * Anything else (a sample) goes on to hp_alloc_slow, also by a tail call,
 * so its return address is still the caller's.
 */
void *hak_prof_alloc(size_t n)
{
	struct hak_tcache *tc = &__hak_tc;
	unsigned long total;

	if (likely(__atomic_load_n(&__hak_init_done, __ATOMIC_ACQUIRE))) {
		if (likely(!__atomic_load_n(&hp_on, __ATOMIC_RELAXED))) {
			tc->prof_left = HAK_SMALL_MAX;
			return __hak_alloc_nosample(n);
		}
		/* fast budget before the borrow, plus the rest of the countdown */
		total = tc->prof_left + n + hp_pending;
		if (likely(hp_rng) && likely(n <= total)) {
			hp_set_countdown(tc, total - n);
			return __hak_alloc_nosample(n);
		}
	}
	return hp_alloc_slow(n);
}

void *hak_prof_note_big(void *p, size_t n)
{
	if (!hp_on || !hp_count(&__hak_tc, n) || !p)
		return p;
	hp_busy = 1;
	hp_record(p, n, __builtin_return_address(0));
	hp_busy = 0;
	return p;
}

void hak_prof_forget(void *p)
{
	int was = hp_busy;

	if (!__atomic_load_n(hp_filter_of((uintptr_t)p), __ATOMIC_RELAXED))
		return;
	hp_busy = 1;
	prof_lock_take();
	hp_tab_remove((uintptr_t)p);
	prof_lock_drop();
	if (hp_signalled && !was)
		hp_dump_pending();
	hp_busy = was;
}

/* ---- dumps ---- */

static size_t hp_utoa(char *b, unsigned long v)
{
	char t[24];
	size_t n = 0, i;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		b[i] = t[n - 1 - i];
	b[n] = 0;
	return n;
}

/* HAKMEM_PROF_OUT.<pid>[.<seq>].pb.gz (or .folded) into buf. */
static void hp_default_path(char *buf, size_t len, unsigned seq)
{
	size_t n = strlen(hp_out);

	if (n + 64 > len)
		n = len - 64;
	memcpy(buf, hp_out, n);
	buf[n++] = '.';
	n += hp_utoa(buf + n, (unsigned long)__hak_os_getpid());
	if (seq) {
		buf[n++] = '.';
		n += hp_utoa(buf + n, seq);
	}
	strcpy(buf + n, hp_format == HP_FMT_PPROF ? ".pb.gz" : ".folded");
}

/*
 * Cancellation is off for the whole dump: open, write, read (pprof.c
 * reads /proc/self/maps and the modules' files) and close are
 * cancellation points, and the dump runs with the profile lock held,
 * inside malloc or free when HAKMEM_PROF_SIGNAL asked for it. A thread
 * cancelled in a blocked write was unwound with the lock held, and every
 * later sample, sampled free and fork spun on it for good
 * (selftests/heapprof/hp_cancel); malloc and free must not be
 * cancellation points anyway (selftests/core/cancel_points).
 */
static int hp_dump_to(const char *path)
{
	int fd, rc, err, cancel;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = errno;
		rc = -1;
		goto out;
	}
	prof_lock_take();
	rc = __hak_prof_write(fd, hp_format, hp_all, hp_mean);
	prof_lock_drop();
	err = errno;
	if (close(fd) < 0 && rc == 0) {
		err = errno;
		rc = -1;
	}
out:
	pthread_setcancelstate(cancel, NULL);
	errno = err;
	return rc;
}

int __hak_prof_dump(const char *path)
{
	char def[320];
	int was = hp_busy, rc;

	__hak_init();
	if (!hp_on) {
		errno = EINVAL;
		return -1;
	}
	if (!path) {
		hp_default_path(def, sizeof(def), 0);
		path = def;
	}
	hp_busy = 1;
	rc = hp_dump_to(path);
	hp_busy = was;
	return rc;
}

static void hp_dump_pending(void)
{
	char path[320];

	hp_signalled = 0;
	hp_default_path(path, sizeof(path), ++hp_signal_dumps);
	if (hp_dump_to(path) < 0)
		__hak_report("heap profile %s: %s", path, strerror(errno));
}

static void hp_on_signal(int sig)
{
	(void)sig;
	hp_signalled = 1;
}

/* HAKMEM_PROF_LEAKS: the top live stacks by estimated bytes, on stderr. */
static void hp_leaks(void)
{
	struct hp_stack *top[HP_LEAKS_TOP], *s;
	unsigned n = 0, i, j, k;
	char line[1024];
	size_t len;

	prof_lock_take();
	for (s = hp_all; s; s = s->all) {
		if (s->live_b < 0.5)
			continue;
		for (i = n; i > 0 && top[i - 1]->live_b < s->live_b; i--)
			if (i < HP_LEAKS_TOP)
				top[i] = top[i - 1];
		if (i < HP_LEAKS_TOP)
			top[i] = s;
		if (n < HP_LEAKS_TOP)
			n++;
	}
	for (i = 0; i < n; i++) {
		s = top[i];
		len = (size_t)snprintf(line, sizeof(line), "hakmem: live %.0f bytes in %.0f objects at ",
				       s->live_b, s->live_n + 0.5);
		for (k = 0; k < s->depth && len + 8 < sizeof(line); k++) {
			if (k) {
				memcpy(line + len, " < ", 3);
				len += 3;
			}
			j = (unsigned)__hak_prof_pc_text(s->pc[k], line + len, sizeof(line) - len - 2);
			len += j;
		}
		line[len++] = '\n';
		if (write(STDERR_FILENO, line, len) < 0)
			break;
	}
	if (!n) {
		static const char none[] = "hakmem: no live sampled blocks at exit\n";

		if (write(STDERR_FILENO, none, sizeof(none) - 1) < 0)
			n = 0;
	}
	prof_lock_drop();
}

__attribute__((destructor)) static void hp_exit(void)
{
	char path[320];

	if (!hp_on)
		return;
	hp_busy = 1;
	hp_default_path(path, sizeof(path), 0);
	if (hp_dump_to(path) < 0)
		__hak_report("heap profile %s: %s", path, strerror(errno));
	if (__hak_opt.prof_leaks) {
		int cancel;

		/* write() under the profile lock, as in hp_dump_to() */
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
		hp_leaks();
		pthread_setcancelstate(cancel, NULL);
	}
	hp_busy = 0;
}

/* ---- set-up and fork ---- */

/*
 * The signals a fault raises (a bad address, an integer division by zero,
 * a bad instruction, a breakpoint, a refused system call): the dump
 * handler only sets a flag and returns, to the faulting instruction, which
 * faults again; a program that crashed spun at full CPU instead.
 */
static bool hp_fault_signal(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL ||
	       sig == SIGTRAP || sig == SIGSYS;
}

void hak_prof_init(void)
{
	const char *s;

	if (!__hak_opt.prof)
		return;
	hp_mean = __hak_opt.prof_sample;
	hp_depth = (unsigned)__hak_opt.prof_depth;
	if (hp_depth > HP_MAX_DEPTH)
		hp_depth = HP_MAX_DEPTH;
	s = getenv("HAKMEM_PROF_OUT");
	if (s && *s && strlen(s) < sizeof(hp_out))
		strcpy(hp_out, s);
	else if (s)
		__hak_report("ignoring HAKMEM_PROF_OUT of %zu bytes (want 1..%zu); writing %s.<pid>",
			     strlen(s), sizeof(hp_out) - 1, hp_out);
	s = getenv("HAKMEM_PROF_FORMAT");
	if (s && !strcmp(s, "collapsed"))
		hp_format = HP_FMT_COLLAPSED;
	else if (s && strcmp(s, "pprof"))
		__hak_report("ignoring HAKMEM_PROF_FORMAT=%s (want pprof or collapsed)", s);
	hp_buckets = __hak_meta_alloc(HP_STACK_BUCKETS * sizeof(*hp_buckets));
	__hak_prof_filter = __hak_os_map(HAK_PROF_FILTER * sizeof(*__hak_prof_filter));
	if (!hp_buckets || !__hak_prof_filter || !hp_tab_grow()) {
		__hak_report("heap profiler: no memory for its tables; not profiling");
		return;
	}
	if (hp_fault_signal((int)__hak_opt.prof_signal)) {
		__hak_report("ignoring HAKMEM_PROF_SIGNAL=%zu (a fault's signal: its handler "
			     "would return to the fault for good)", __hak_opt.prof_signal);
	} else if (__hak_opt.prof_signal) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = hp_on_signal;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction((int)__hak_opt.prof_signal, &sa, NULL) < 0)
			__hak_report("HAKMEM_PROF_SIGNAL=%zu: %s", __hak_opt.prof_signal,
				     strerror(errno));
	}
	__atomic_store_n(&hp_on, 1, __ATOMIC_RELEASE);
}

bool hak_prof_sampling(void)
{
	return __atomic_load_n(&hp_on, __ATOMIC_ACQUIRE);
}

bool hak_prof_fork_mine(void)
{
	return __atomic_load_n(&prof_lock, __ATOMIC_RELAXED) == (uintptr_t)&prof_me;
}

/*
 * False: backed off (lock.h), nothing held. As for a struct hak_lock: a
 * hold of the forking thread's own frame is left to it, so is one of
 * another handler fork's frame (__hak_fork_prof_skip).
 */
bool hak_prof_fork_prepare(void) __acquires(&prof_lock)
{
	unsigned st = HAK_FORK_TAKEN;
	uint64_t start = 0;
	unsigned n = 0;

	__acquire(&prof_lock);
	while (!prof_lock_try()) {
		if (hak_prof_fork_mine()) {
			st = HAK_FORK_OWN;
			break;
		}
		if (__hak_fork_prof_skip(&start)) {
			st = HAK_FORK_SKIP;
			break;
		}
		if (__hak_fork_backoff())
			return false;
		__hak_os_backoff(n++);
	}
	if (!__hak_prof_unwind_fork_prepare()) {
		if (st == HAK_FORK_TAKEN)
			__atomic_store_n(&prof_lock, 0, __ATOMIC_RELEASE);
		return false;
	}
	/* a stack, as a struct hak_lock's (lock.h: a fork nested in its thread's own) */
	prof_fork_state = (unsigned char)(prof_fork_state << HAK_FORK_BITS | st);
	return true;
}

void hak_prof_fork_parent(void) __releases(&prof_lock)
{
	__hak_prof_unwind_fork_parent();
	__release(&prof_lock);
	if (!(prof_fork_state & HAK_FORK_MASK))
		__atomic_store_n(&prof_lock, 0, __ATOMIC_RELEASE);
	prof_fork_state >>= HAK_FORK_BITS;
}

void hak_prof_fork_child(void) __releases(&prof_lock)
{
	__hak_prof_unwind_fork_child();
	__release(&prof_lock);
	/* the frame's own hold stays, held by the child's thread (same prof_me) */
	if ((prof_fork_state & HAK_FORK_MASK) != HAK_FORK_OWN)
		__atomic_store_n(&prof_lock, 0, __ATOMIC_RELAXED);
	prof_fork_state >>= HAK_FORK_BITS;
}
