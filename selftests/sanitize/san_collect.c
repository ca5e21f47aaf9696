// SPDX-License-Identifier: MIT
/*
 * san_collect: the paths that touch another heap's slabs or caches while
 * its owner runs, under the sanitizers (rv33). 64 workers by default
 * (HAKMEM_SAN_THREADS=T), far past the cores, so a refill about to take
 * new pages collects the other heaps' remote frees (lib/heap.c,
 * collect_others), with beside them:
 *   - the workers in pairs: a producer allocates a batch while its
 *     consumer frees the one before (every free goes to another heap's
 *     slab, and a producer is often descheduled with its slabs pending);
 *   - a churn thread starting and joining short threads that allocate,
 *     free and exit (heaps attached, pooled and adopted mid-scan);
 *   - a trim thread calling hak_malloc_trim(0) (the L2.5 pool's spare
 *     rule for other threads' cached blocks, the pool's scavenge);
 *   - the main thread forking twice mid-run; each child allocates, frees
 *     and checks blocks of every size, then exits.
 * Each round uses fresh workers. Blocks are stamped from their address and
 * size and checked by the thread that frees them.
 *
 * Usage: san_collect [scale]   (batches per producer per round = 6 x scale)
 */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "san_test.h"

#if defined(__has_feature)
# if __has_feature(thread_sanitizer)
#  define SAN_TSAN 1
# endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(SAN_TSAN)
# define SAN_TSAN 1
#endif

#ifdef SAN_TSAN
/*
 * fork's prepare handler takes every allocator lock (lib/init.c): more
 * than the 64 one thread may hold under TSan's deadlock detector, which
 * then fails its own CHECK; and a busy one with pthread_mutex_clocklock,
 * which gcc 12's TSan does not intercept, so the parent handler's unlock
 * reads as one of an unlocked mutex. Both checks off, races still reported.
 */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "detect_deadlocks=0:report_mutex_bugs=0";
}
#endif

#define BATCH	96
#define ROUNDS	3
#define FORKS	2

struct pair {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	void *p[BATCH];
	size_t n[BATCH];
	unsigned count;		/* blocks in the box; 0: empty */
	int done;		/* the producer has no more */
	uint64_t rng;
};

static struct pair pairs[SAN_MAX_THREADS / 2];
static unsigned long batches, bad, nulls, freed;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static int stop;	/* atomic: the churn and trim threads end */

static size_t pick(uint64_t *rng)
{
	uint64_t r = san_rand(rng);

	if (r % 64 == 0)
		return 32 * 1024 + (r >> 8) % (96 * 1024);	/* the L2.5 pool's */
	return 8 + (r >> 8) % 1016;
}

static void count_add(unsigned long b, unsigned long n, unsigned long f)
{
	pthread_mutex_lock(&count_lock);
	bad += b;
	nulls += n;
	freed += f;
	pthread_mutex_unlock(&count_lock);
}

static void *producer(void *arg)
{
	struct pair *pr = arg;
	void *p[BATCH];
	size_t n[BATCH];
	unsigned long k, nn = 0;
	unsigned i;

	for (k = 0; k < batches; k++) {
		for (i = 0; i < BATCH; i++) {
			n[i] = pick(&pr->rng);
			p[i] = hak_malloc(n[i]);
			if (!p[i]) {
				nn++;
				n[i] = 0;
				continue;
			}
			san_fill(p[i], n[i]);
		}
		pthread_mutex_lock(&pr->lock);
		while (pr->count)
			pthread_cond_wait(&pr->cv, &pr->lock);
		memcpy(pr->p, p, sizeof(p));
		memcpy(pr->n, n, sizeof(n));
		pr->count = BATCH;
		pthread_cond_broadcast(&pr->cv);
		pthread_mutex_unlock(&pr->lock);
	}
	pthread_mutex_lock(&pr->lock);
	pr->done = 1;
	pthread_cond_broadcast(&pr->cv);
	pthread_mutex_unlock(&pr->lock);
	count_add(0, nn, 0);
	return NULL;
}

static void *consumer(void *arg)
{
	struct pair *pr = arg;
	unsigned long nb = 0, nf = 0;
	unsigned i;

	for (;;) {
		pthread_mutex_lock(&pr->lock);
		while (!pr->count && !pr->done)
			pthread_cond_wait(&pr->cv, &pr->lock);
		if (!pr->count) {
			pthread_mutex_unlock(&pr->lock);
			break;
		}
		for (i = 0; i < BATCH; i++) {
			if (!pr->p[i])
				continue;
			if (!san_check(pr->p[i], pr->n[i]))
				nb++;
			hak_free(pr->p[i]);
			nf++;
		}
		pr->count = 0;
		pthread_cond_broadcast(&pr->cv);
		pthread_mutex_unlock(&pr->lock);
	}
	count_add(nb, 0, nf);
	return NULL;
}

static void *short_life(void *arg)
{
	uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 7;
	void *p[64];
	size_t n[64];
	unsigned long nb = 0, nn = 0;
	unsigned i;

	for (i = 0; i < 64; i++) {
		n[i] = pick(&rng);
		p[i] = hak_malloc(n[i]);
		if (p[i])
			san_fill(p[i], n[i]);
		else
			nn++;
	}
	for (i = 0; i < 64; i++) {
		if (p[i] && !san_check(p[i], n[i]))
			nb++;
		hak_free(p[i]);
	}
	count_add(nb, nn, 0);
	return NULL;
}

static void *churn(void *arg)
{
	uintptr_t k = 0;

	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		pthread_t t;

		if (pthread_create(&t, NULL, short_life, (void *)++k))
			tap_bail("pthread_create failed");
		pthread_join(t, NULL);
	}
	return NULL;
}

static void *trimmer(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
		hak_malloc_trim(0);
		usleep(2000);
	}
	return NULL;
}

/* The child: blocks of every size, checked; 0 when all went well. */
static int child_work(void)
{
	uint64_t rng = 12345;
	void *p[256];
	size_t n[256];
	unsigned i, r;

	for (r = 0; r < 4; r++) {
		for (i = 0; i < 256; i++) {
			n[i] = i % 32 == 0 ? san_size(&rng) : pick(&rng);
			p[i] = hak_malloc(n[i]);
			if (!p[i])
				return 1;
			san_fill(p[i], n[i]);
		}
		for (i = 0; i < 256; i++) {
			if (!san_check(p[i], n[i]))
				return 2;
			hak_free(p[i]);
		}
	}
	hak_malloc_trim(0);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long scale = san_scale(argc, argv);
	unsigned nthr = san_threads(SAN_MAX_THREADS), npair = nthr / 2, r, i;
	unsigned forks_ok = 0, forks = 0;
	pthread_t th[SAN_MAX_THREADS], ch, tr;
	struct hak_stats st0, st1;

	if (npair < 1)
		npair = 1;
	batches = 6 * scale;
	tap_plan(3);
	tap_diag("%u rounds of %u producer/consumer pairs, %lu batches of %u blocks each, "
		 "a churn and a trim thread, %u forks", ROUNDS, npair, batches, BATCH, FORKS);
	hak_stats_get(&st0);
	if (pthread_create(&ch, NULL, churn, NULL) || pthread_create(&tr, NULL, trimmer, NULL))
		tap_bail("pthread_create failed");
	for (r = 0; r < ROUNDS; r++) {
		for (i = 0; i < npair; i++) {
			struct pair *pr = &pairs[i];

			pthread_mutex_init(&pr->lock, NULL);
			pthread_cond_init(&pr->cv, NULL);
			pr->count = 0;
			pr->done = 0;
			pr->rng = (uint64_t)(r * SAN_MAX_THREADS + i + 1) * 0x9e3779b97f4a7c15ull;
		}
		for (i = 0; i < 2 * npair; i++)
			if (pthread_create(&th[i], NULL, i % 2 ? consumer : producer, &pairs[i / 2]))
				tap_bail("pthread_create failed");
		if (r < FORKS) {
			pid_t pid;
			int status;

			usleep(20000);	/* mid-round */
			pid = fork();
			if (pid < 0)
				tap_bail("fork failed");
			if (pid == 0)
				_exit(child_work());
			forks++;
			if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
			    WEXITSTATUS(status) == 0)
				forks_ok++;
			else
				tap_diag("fork %u: child status 0x%x", r, status);
		}
		for (i = 0; i < 2 * npair; i++)
			pthread_join(th[i], NULL);
		for (i = 0; i < npair; i++) {
			pthread_mutex_destroy(&pairs[i].lock);
			pthread_cond_destroy(&pairs[i].cv);
		}
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	pthread_join(ch, NULL);
	pthread_join(tr, NULL);
	hak_stats_get(&st1);
	tap_ok(bad == 0 && nulls == 0 &&
	       freed == (unsigned long)ROUNDS * npair * batches * BATCH,
	       "%lu blocks freed by another thread than their producer: %lu damaged, %lu NULL",
	       freed, bad, nulls);
	tap_ok(forks_ok == forks, "%u of %u fork children allocated, checked and freed", forks_ok,
	       forks);
	tap_ok(st1.remote_collected > st0.remote_collected,
	       "remote frees collected (%llu blocks)",
	       (unsigned long long)(st1.remote_collected - st0.remote_collected));
	tap_finish();
}
