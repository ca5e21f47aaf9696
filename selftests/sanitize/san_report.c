// SPDX-License-Identifier: MIT
/*
 * san_report: the reports (malloc_info's resident figures) while other
 * threads change every range they count. Since mi20 a report copies a
 * layer's ranges under its lock and asks the kernel after dropping it
 * (lib/os.h, __hak_os_rss_reserve), so a range may be freed, unmapped or
 * mapped again by anyone between the copy and the system call. Here:
 *   - two churn threads malloc, touch, realloc and free large blocks
 *     (their shards, BigCache's puts and takes, munmaps) and some small
 *     and mid ones, keeping a few hundred live so each shard's count, and
 *     so the report's copy buffer, grows and shrinks under it;
 *   - a mapper thread maps and unmaps plain anonymous memory of the same
 *     sizes, so a range the report copied is soon someone else's;
 *   - the main thread reports in a loop.
 * Each report must succeed, leave errno alone and print a resident total
 * that the process could have held: at most its peak RSS (VmHWM, read
 * after the report) and what the race lets a report count twice (a block
 * that moves from a shard to BigCache during it: at most the blocks in
 * flight, LIVE_MAX of the largest size per churner). Under TSan the
 * report's reads of the layers are checked against the churners' writes.
 *
 * Usage: san_report [scale]   (reports = 150 x scale)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "san_test.h"
#include "../lib/proc.h"

#define NCHURN		2
#define LIVE_MAX	24		/* live large blocks per churner */
#define BIG_MIN		(300u << 10)
#define BIG_SPAN	(2u << 20)	/* large sizes: BIG_MIN .. BIG_MIN + this */
#define MAP_SLOTS	16

int __hak_malloc_info(int options, FILE *fp);

static volatile int stop;
static unsigned long damaged, nulls, churned;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t big_size(uint64_t *rng)
{
	return BIG_MIN + (size_t)(san_rand(rng) % BIG_SPAN);
}

static void *churn(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 7;
	struct { void *p; size_t n; } live[LIVE_MAX] = { { NULL, 0 } };
	unsigned long n_bad = 0, n_null = 0, ops = 0;
	unsigned i;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		uint64_t r = san_rand(&rng);
		size_t n;
		void *p;

		i = (unsigned)(r % LIVE_MAX);
		ops++;
		if (live[i].p) {
			if (!san_check(live[i].p, live[i].n))
				n_bad++;
			if (r & 0x100) {
				/* grow or shrink in place or by a move (mremap) */
				n = big_size(&rng);
				p = hak_realloc(live[i].p, n);
				if (!p) {
					n_null++;
					continue;
				}
				san_fill(p, n);
				live[i].p = p;
				live[i].n = n;
				continue;
			}
			hak_free(live[i].p);
			live[i].p = NULL;
			continue;
		}
		n = (r & 0x600) ? big_size(&rng) : san_size(&rng);
		p = hak_malloc(n);
		if (!p) {
			n_null++;
			continue;
		}
		san_fill(p, n);
		live[i].p = p;
		live[i].n = n;
	}
	for (i = 0; i < LIVE_MAX; i++) {
		if (live[i].p && !san_check(live[i].p, live[i].n))
			n_bad++;
		hak_free(live[i].p);
	}
	pthread_mutex_lock(&count_lock);
	damaged += n_bad;
	nulls += n_null;
	churned += ops;
	pthread_mutex_unlock(&count_lock);
	return NULL;
}

/* Plain mappings of the churners' sizes: freed ranges soon belong to them. */
static void *mapper(void *arg)
{
	uint64_t rng = 0x5eed5eedull + (uintptr_t)arg;
	struct { void *p; size_t n; } m[MAP_SLOTS] = { { NULL, 0 } };
	unsigned i;

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		i = (unsigned)(san_rand(&rng) % MAP_SLOTS);
		if (m[i].p) {
			munmap(m[i].p, m[i].n);
			m[i].p = NULL;
			continue;
		}
		m[i].n = (big_size(&rng) + 4095) & ~(size_t)4095;
		m[i].p = mmap(NULL, m[i].n, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m[i].p == MAP_FAILED) {
			m[i].p = NULL;
			continue;
		}
		for (size_t o = 0; o < m[i].n; o += 4096)
			((volatile char *)m[i].p)[o] = 1;
	}
	for (i = 0; i < MAP_SLOTS; i++)
		if (m[i].p)
			munmap(m[i].p, m[i].n);
	return NULL;
}

/* The value of <system type="resident" size="N"/>; -1 when absent. */
static long long xml_resident(const char *xml)
{
	static const char key[] = "<system type=\"resident\" size=\"";
	const char *s = strstr(xml, key);

	return s ? strtoll(s + sizeof(key) - 1, NULL, 10) : -1;
}

int main(int argc, char **argv)
{
	unsigned long scale = san_scale(argc, argv), reports = 150 * scale, k;
	unsigned long failed = 0, errno_moved = 0, over = 0, missing = 0;
	size_t slack = NCHURN * (size_t)LIVE_MAX * (BIG_MIN + BIG_SPAN + 8192);
	long long most = 0, res;
	static char xml[16384];
	pthread_t th[NCHURN + 1];
	unsigned i;

	tap_plan(3);
	for (i = 0; i < NCHURN + 1; i++)
		if (pthread_create(&th[i], NULL, i < NCHURN ? churn : mapper,
				   (void *)(uintptr_t)(i + 1)))
			tap_bail("pthread_create failed");
	for (k = 0; k < reports; k++) {
		FILE *f = fmemopen(xml, sizeof(xml), "w");
		size_t hwm;
		long kib;
		int rc;

		if (!f)
			tap_bail("fmemopen");
		errno = 4242;
		rc = __hak_malloc_info(0, f);
		if (errno != 4242)
			errno_moved++;
		fclose(f);
		xml[sizeof(xml) - 1] = '\0';
		failed += rc != 0;
		res = xml_resident(xml);
		if (res < 0) {
			missing++;
			continue;
		}
		kib = proc_status_kib("VmHWM");
		hwm = kib > 0 ? (size_t)kib << 10 : 0;
		if (hwm && (size_t)res > hwm + slack)
			over++;
		most = res > most ? res : most;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < NCHURN + 1; i++)
		pthread_join(th[i], NULL);
	tap_ok(!failed && !errno_moved && !missing,
	       "%lu reports during the churn: %lu failed, %lu moved errno, %lu without a total",
	       reports, failed, errno_moved, missing);
	tap_ok(!over, "no resident total past the peak RSS and the blocks in flight "
	       "(%lu over; largest %lld bytes)", over, most);
	tap_ok(!damaged && !nulls, "%lu churn steps: %lu blocks damaged, %lu NULL",
	       churned, damaged, nulls);
	tap_finish();
}
