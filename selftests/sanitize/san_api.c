// SPDX-License-Identifier: MIT
/*
 * san_api: the whole hak_* API from 4 threads at once (HAKMEM_SAN_THREADS=T:
 * T), with cross-thread frees through shared hand-off slots, while one more
 * thread calls hak_malloc_trim, hak_stats_get and hak_malloc_usable_size on
 * its own blocks. Covers the aligned family (small classes and trimmed mappings),
 * realloc growth and shrink across the small/mid/large borders (mremap),
 * reallocarray, calloc, free_sized and free_aligned_sized. Every block is
 * checked against its address-derived pattern before it is freed; an
 * aligned block must be aligned and a usable size must cover the request.
 *
 * Usage: san_api [scale]   (operations per thread = 3000 x scale)
 */
#include <pthread.h>

#include "san_test.h"

#define NSLOT	16	/* hand-off slots shared by all threads */
#define LIVE	64	/* blocks each thread keeps */

struct blk {
	void *p;
	size_t n;
};

static struct blk slot[NSLOT];
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static int stop;
static unsigned long total_bad, total_nulls, total_handed;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

/* Swap b with a shared slot: the block goes to whichever thread comes next. */
static void hand_off(struct blk *b, unsigned i)
{
	struct blk t;

	pthread_mutex_lock(&slot_lock);
	t = slot[i % NSLOT];
	slot[i % NSLOT] = *b;
	pthread_mutex_unlock(&slot_lock);
	*b = t;
}

static int ok_block(const struct blk *b)
{
	return hak_malloc_usable_size(b->p) >= b->n && san_check(b->p, b->n);
}

static void *work(void *arg)
{
	unsigned long ops = *(unsigned long *)arg >> 8;
	uint64_t rng = (*(unsigned long *)arg & 0xff) * 0x9e3779b97f4a7c15ull + 7;
	struct blk live[LIVE] = { { 0 } };
	unsigned long bad = 0, nulls = 0, handed = 0;

	for (unsigned long k = 0; k < ops; k++) {
		uint64_t r = san_rand(&rng);
		struct blk *b = &live[r % LIVE];
		size_t n = san_size(&rng), a = (size_t)16 << ((r >> 20) % 10);	/* 16..8192 */
		void *p = NULL;

		if (b->p && !ok_block(b))
			bad++;
		switch ((r >> 40) % 12) {
		case 0:
			hak_free(b->p);
			p = hak_memalign(a, n);
			break;
		case 1:
			hak_free(b->p);
			if (hak_posix_memalign(&p, a, n))
				p = NULL;
			break;
		case 2:
			hak_free(b->p);
			p = hak_aligned_alloc(a, n);
			break;
		case 3:
			hak_free(b->p);
			p = (r & 1) ? hak_valloc(n) : hak_pvalloc(n);
			a = 4096;
			break;
		case 4:		/* realloc across the borders: 1 B .. 2.3 MiB */
			p = hak_realloc(b->p, n);
			a = 16;	/* the prefix moved with it; re-stamped below */
			break;
		case 5:
			p = hak_reallocarray(b->p, n / 8 + 1, 8);
			n = (n / 8 + 1) * 8;
			a = 16;
			break;
		case 6:
			hak_free(b->p);
			p = hak_calloc(n / 16 + 1, 16);
			n = (n / 16 + 1) * 16;
			if (p && (((char *)p)[0] || ((char *)p)[n - 1]))
				bad++;
			a = 16;
			break;
		case 7:
			if (b->p)
				hak_free_sized(b->p, b->n);
			p = hak_malloc(n);
			a = 16;
			break;
		case 8:
			if (b->p)
				hak_free_aligned_sized(b->p, 16, b->n);
			p = hak_malloc(n);
			a = 16;
			break;
		case 9: case 10:	/* cross-thread: give this block away, take another */
			handed++;
			hand_off(b, (unsigned)(r >> 8));
			continue;
		default:
			hak_free(b->p);
			p = hak_malloc(n);
			a = 16;
			break;
		}
		if (!p) {
			nulls++;
			b->p = NULL;
			continue;
		}
		if ((uintptr_t)p & (a - 1))
			bad++;
		san_fill(p, n);
		b->p = p;
		b->n = n;
	}
	for (unsigned i = 0; i < LIVE; i++) {
		if (live[i].p && !ok_block(&live[i]))
			bad++;
		hak_free(live[i].p);
	}
	pthread_mutex_lock(&count_lock);
	total_bad += bad;
	total_nulls += nulls;
	total_handed += handed;
	pthread_mutex_unlock(&count_lock);
	return NULL;
}

/* Trims and reads statistics while the others work. */
static void *janitor(void *arg)
{
	unsigned long rounds = 0;
	struct hak_stats st;

	(void)arg;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		void *p = hak_malloc(100 + rounds % 5000);

		hak_stats_get(&st);
		if (p)
			hak_free(p);
		if (rounds++ % 8 == 0)
			hak_malloc_trim(0);
	}
	return (void *)(uintptr_t)rounds;
}

int main(int argc, char **argv)
{
	unsigned long ops = 3000 * san_scale(argc, argv), left = 0, bad = 0;
	unsigned nthr = san_threads(4);
	unsigned long arg[SAN_MAX_THREADS];
	pthread_t th[SAN_MAX_THREADS], jt;
	void *jr;
	struct hak_stats st0, st;
	size_t slack;

	tap_plan(4);
	tap_diag("%u threads x %lu API calls, a trim/stats thread beside them", nthr, ops);
	/* the C library's own blocks (stdio) are hakmem's too when interposed */
	hak_malloc_trim(0);
	hak_stats_get(&st0);
	if (pthread_create(&jt, NULL, janitor, NULL))
		tap_bail("pthread_create failed");
	for (unsigned i = 0; i < nthr; i++) {
		arg[i] = ops << 8 | i;
		if (pthread_create(&th[i], NULL, work, &arg[i]))
			tap_bail("pthread_create failed");
	}
	for (unsigned i = 0; i < nthr; i++)
		pthread_join(th[i], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(jt, &jr);
	for (unsigned i = 0; i < NSLOT; i++) {
		if (!slot[i].p)
			continue;
		left++;
		if (!ok_block(&slot[i]))
			bad++;
		hak_free(slot[i].p);
	}
	hak_malloc_trim(0);
	hak_stats_get(&st);
	tap_ok(total_bad == 0 && bad == 0, "%lu API calls: %lu damaged/misaligned blocks",
	       ops * nthr, total_bad + bad);
	tap_ok(total_nulls == 0, "no unexpected NULL (%lu)", total_nulls);
	tap_ok(total_handed > 0, "%lu blocks handed to other threads, %lu left in slots",
	       total_handed, left);
	/*
	 * Interposed, glibc's thread descriptors (one DTV per cached stack)
	 * are hakmem blocks too: allow 512 bytes per thread created.
	 */
	slack = IS_ENABLED(CONFIG_HAK_INTERPOSE) ? 512 * (nthr + 1) : 0;
	tap_ok(st.large_blocks == st0.large_blocks && st.small_in_use <= st0.small_in_use + slack,
	       "nothing left in use after freeing all and trimming (%zu large, %zu small bytes "
	       "before; %zu, %zu after; janitor ran %lu rounds)", st0.large_blocks,
	       st0.small_in_use, st.large_blocks, st.small_in_use,
	       (unsigned long)(uintptr_t)jr);
	tap_finish();
}
