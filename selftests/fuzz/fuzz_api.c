// SPDX-License-Identifier: MIT
/*
 * fuzz_api: turns a byte string into hak_* calls from two threads.
 *
 * Input: byte 0 splits the rest into two op streams, A (run by the calling
 * thread) and B (run by a second thread). Each op is 4 bytes:
 *
 *   op[0] & 15   the call: malloc, calloc, realloc, memalign,
 *                posix_memalign, aligned_alloc, valloc, free, free_sized,
 *                usable size, give, take, reallocarray, trim, check all
 *   op[0] >> 4   the slot (16 per thread) it works on
 *   op[1..3]     the size: op[1] >> 6 picks tiny (< 256 B), small
 *                (< 32 KiB), mid (< 512 KiB) or large (< 4 MiB) and the
 *                other 22 bits the value; the alignment is 2^(4 + op[3] % 10)
 *
 * "give" swaps a thread's slot with the shared hand-off slot, "take" does
 * the same the other way, so blocks move between the threads and are
 * freed or resized by the one that did not allocate them. Every block is
 * filled with a pattern derived from its address (wholly up to 256 KiB,
 * then its first and last 4 KiB and one byte per 4 KiB page) and checked before it
 * is freed, resized, handed over or at the end; the usable size must
 * cover the request and an aligned block must be aligned. At the end of
 * the input everything is freed, so each input starts from the same
 * allocator-visible state.
 *
 * With -DHAK_FUZZER this file is a libFuzzer target (tools/fuzz.sh);
 * otherwise main() replays $SRCTREE/selftests/fuzz/corpus/ (or the files
 * and folders given as arguments) and 200 pseudo-random inputs (50 with
 * HAKMEM_SELFTEST_QUICK=1), as a TAP test in every configuration.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <hakmem/hakmem.h>

#include "../lib/tap.h"

#define NSLOT		16
#define FULL_FILL	(256u << 10)

struct blk {
	unsigned char *p;
	size_t n;
};

struct stream {
	const uint8_t *op;
	size_t nops;
	struct blk slot[NSLOT];
	unsigned long bad;
	const char *why;
};

/*
 * The byte loops over block contents are not interesting to the fuzzer
 * (and cost most of its time when traced): no coverage instrumentation.
 */
#ifdef HAK_FUZZER
# define NO_COVERAGE	__attribute__((no_sanitize("coverage"), noinline))
#else
# define NO_COVERAGE
#endif

static struct blk handoff;
static pthread_mutex_t handoff_lock = PTHREAD_MUTEX_INITIALIZER;

static NO_COVERAGE unsigned char pat(uintptr_t a, size_t i)
{
	return (unsigned char)((a >> 4) ^ (a >> 16) ^ (i * 151u) ^ (i >> 10) ^ 0x5a);
}

/* Offsets stamped in a block of n bytes: all, or a sparse set when big. */
static NO_COVERAGE size_t next_off(size_t i, size_t n)
{
	if (n <= FULL_FILL || i < 4096 || i + 4096 >= n)
		return i + 1;
	if (i + 4096 < n - 4096)
		return i + 4096;
	return n - 4096;
}

static NO_COVERAGE void fill(struct blk *b)
{
	for (size_t i = 0; i < b->n; i = next_off(i, b->n))
		b->p[i] = pat((uintptr_t)b->p, i);
}

/* Check the first n bytes of b against the pattern of address a. */
static NO_COVERAGE int intact(const unsigned char *p, uintptr_t a, size_t n, size_t blk_n)
{
	for (size_t i = 0; i < n; i = next_off(i, blk_n))
		if (p[i] != pat(a, i))
			return 0;
	return 1;
}

static NO_COVERAGE int zeroed(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i = next_off(i, n))
		if (p[i])
			return 0;
	return 1;
}

static void fail(struct stream *s, const char *why)
{
	s->bad++;
	if (!s->why)
		s->why = why;
}

static void check(struct stream *s, const struct blk *b)
{
	if (!b->p)
		return;
	if (!intact(b->p, (uintptr_t)b->p, b->n, b->n))
		fail(s, "block pattern damaged");
	if (hak_malloc_usable_size(b->p) < b->n)
		fail(s, "usable size below the request");
}

static void release(struct stream *s, struct blk *b)
{
	check(s, b);
	hak_free(b->p);
	b->p = NULL;
	b->n = 0;
}

static size_t op_size(const uint8_t *op)
{
	uint32_t v = (uint32_t)(op[1] & 63) << 16 | (uint32_t)op[2] << 8 | op[3];

	switch (op[1] >> 6) {
	case 0:
		return v % 256;
	case 1:
		return v % (32u << 10);
	case 2:
		return v % (512u << 10);
	default:
		return v % (4u << 20);
	}
}

/* A new block in b (b->p NULL on failure); checks alignment. */
static void placed(struct stream *s, struct blk *b, void *p, size_t n, size_t align)
{
	b->p = p;
	b->n = p ? n : 0;
	if (!p) {
		/* every size here is far below anything that may fail */
		fail(s, "allocation returned NULL");
		return;
	}
	if ((uintptr_t)p & (align - 1))
		fail(s, "misaligned block");
	fill(b);
}

static void swap_handoff(struct stream *s, struct blk *b)
{
	struct blk t;

	check(s, b);
	pthread_mutex_lock(&handoff_lock);
	t = handoff;
	handoff = *b;
	pthread_mutex_unlock(&handoff_lock);
	*b = t;
	check(s, b);
}

static void run_op(struct stream *s, const uint8_t *op)
{
	struct blk *b = &s->slot[op[0] >> 4];
	size_t n = op_size(op), align = (size_t)16 << (op[3] % 10);
	void *p = NULL;

	switch (op[0] & 15) {
	case 0:
		release(s, b);
		placed(s, b, hak_malloc(n), n, 16);
		break;
	case 1: {
		size_t k = (op[2] & 15) + 1;

		release(s, b);
		n = n / k * k;
		p = hak_calloc(n / k, k);
		if (p && !zeroed(p, n))
			fail(s, "calloc block not zeroed");
		placed(s, b, p, n, 16);
		break;
	}
	case 2:
	case 12: {		/* realloc / reallocarray: the prefix survives */
		uintptr_t old = (uintptr_t)b->p;
		size_t keep = b->n < n ? b->n : n, old_n = b->n;

		check(s, b);
		if ((op[0] & 15) == 12)
			p = hak_reallocarray(b->p, n / 8 + 1, 8), n = (n / 8 + 1) * 8;
		else
			p = hak_realloc(b->p, n);
		if (!p && n) {
			fail(s, "realloc returned NULL");
			return;		/* the old block is still b */
		}
		if (p && !intact(p, old, keep, old_n))
			fail(s, "realloc lost the block's contents");
		b->p = NULL;
		b->n = 0;
		if (p)
			placed(s, b, p, n, 16);
		break;
	}
	case 3:
		release(s, b);
		placed(s, b, hak_memalign(align, n), n, align);
		break;
	case 4:
		release(s, b);
		if (hak_posix_memalign(&p, align, n))
			p = NULL;
		placed(s, b, p, n, align);
		break;
	case 5:
		release(s, b);
		placed(s, b, hak_aligned_alloc(align, n), n, align);
		break;
	case 6:
		release(s, b);
		placed(s, b, hak_valloc(n), n, 4096);
		break;
	case 7:
		release(s, b);
		break;
	case 8:
		check(s, b);
		hak_free_sized(b->p, b->n);
		b->p = NULL;
		b->n = 0;
		break;
	case 9:
		check(s, b);
		break;
	case 10:
	case 11:
		swap_handoff(s, b);
		break;
	case 13:
		if (op[1] == 0xff && op[2] == 0xff)
			hak_malloc_trim(0);
		break;
	default:
		for (unsigned i = 0; i < NSLOT; i++)
			check(s, &s->slot[i]);
		break;
	}
}

static void *run_stream(void *arg)
{
	struct stream *s = arg;

	for (size_t i = 0; i < s->nops; i++)
		run_op(s, s->op + 4 * i);
	return NULL;
}

/* Run one input; returns the number of failures (first reason in *why). */
static unsigned long run_input(const uint8_t *data, size_t size, const char **why)
{
	struct stream s[2];
	size_t split, nops;
	pthread_t t;
	unsigned long bad;
	int threaded;

	memset(s, 0, sizeof(s));
	if (size < 1)
		return 0;
	nops = (size - 1) / 4;
	split = nops ? data[0] % (nops + 1) : 0;
	s[0].op = data + 1;
	s[0].nops = split;
	s[1].op = data + 1 + 4 * split;
	s[1].nops = nops - split;
	threaded = pthread_create(&t, NULL, run_stream, &s[1]) == 0;
	run_stream(&s[0]);
	if (threaded)
		pthread_join(t, NULL);
	else
		run_stream(&s[1]);
	for (int k = 0; k < 2; k++)
		for (unsigned i = 0; i < NSLOT; i++)
			release(&s[k], &s[k].slot[i]);
	release(&s[0], &handoff);
	bad = s[0].bad + s[1].bad;
	if (why)
		*why = s[0].why ? s[0].why : s[1].why;
	return bad;
}

#ifdef HAK_FUZZER

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;

	if (run_input(data, size, &why)) {
		fprintf(stderr, "fuzz_api: %s\n", why);
		abort();
	}
	return 0;
}

#else /* !HAK_FUZZER: a TAP test */

static unsigned long files, file_bad;

static void replay_file(const char *path)
{
	static uint8_t buf[1 << 16];
	const char *why = NULL;
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		tap_diag("cannot open %s", path);
		file_bad++;
		return;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	files++;
	if (run_input(buf, n, &why)) {
		tap_diag("%s: %s", path, why);
		file_bad++;
	}
}

static void replay(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char sub[4096];

	if (stat(path, &st)) {
		tap_diag("no such file: %s", path);
		file_bad++;
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		replay_file(path);
		return;
	}
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		replay(sub);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	const char *src = getenv("SRCTREE");
	char corpus[4096];
	uint64_t x = 0x243f6a8885a308d3ull;
	const char *quick = getenv("HAKMEM_SELFTEST_QUICK");
	unsigned long rbad = 0, nrand = quick && *quick && *quick != '0' ? 50 : 200;
	const char *why = NULL;
	uint8_t in[1 + 4 * 96];

	tap_plan(2);
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			replay(argv[i]);
	} else {
		snprintf(corpus, sizeof(corpus), "%s/selftests/fuzz/corpus",
			 src ? src : "../../../selftests/fuzz");
		replay(corpus);
	}
	tap_ok(files > 0 && file_bad == 0, "%lu corpus inputs replayed, %lu failed", files,
	       file_bad);
	for (unsigned long k = 0; k < nrand; k++) {
		for (size_t i = 0; i < sizeof(in); i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			in[i] = (uint8_t)(x >> 24);
		}
		/* mostly tiny and small sizes, so the batch stays quick */
		for (size_t i = 1; i + 3 < sizeof(in); i += 4)
			if (in[i + 1] >= 0x80 && (in[i + 2] & 15))
				in[i + 1] &= 0x7f;
		if (run_input(in, sizeof(in), &why)) {
			if (!rbad)
				tap_diag("random input %lu: %s", k, why);
			rbad++;
		}
	}
	tap_ok(rbad == 0, "%lu pseudo-random inputs of %zu ops, %lu failed", nrand,
	       (sizeof(in) - 1) / 4, rbad);
	tap_finish();
}

#endif /* HAK_FUZZER */
