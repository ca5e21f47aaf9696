// SPDX-License-Identifier: MIT
/*
 * Adaptive sizing, in one fresh thread:
 *   hot:   allocating 1500 blocks of 64 B and freeing them, repeatedly,
 *          doubles the class's capacity (each change exactly x2) up to
 *          2048, after which the loop makes no refill at all;
 *   cold:  then a hot loop on two other classes (4000 blocks each, more
 *          than any cache, so it keeps making refills and overflows) ages
 *          the 64 B class: its capacity halves step by step to 16 and the
 *          blocks it held go back to their slabs;
 *   again: the 64 B loop grows it back.
 * The worker records, the main thread prints the TAP lines after the join
 * (the main thread is quiet meanwhile, so the refill counter is the
 * worker's).
 */
#include <string.h>
#include "adapt_test.h"

#define HOT_SIZE	64
#define HOT_N		1500
#define COLD_N		4000
#define MAX_STEPS	16

struct steps {
	uint32_t cap[MAX_STEPS];
	unsigned n;
	int overflowed;
};

struct seen {
	int sane_start, sane_hot, sane_cold;
	uint32_t cap_start, cap_default;
	struct steps grow, shrink, regrow;
	uint64_t refills_warm;		/* refills of the last 10 hot rounds */
	uint32_t count_hot, count_cold;	/* blocks in the 64 B bin */
	unsigned cold_rounds;
};

static void *blk[COLD_N];

static void note(struct steps *st, uint32_t cap)
{
	if (st->n && st->cap[st->n - 1] == cap)
		return;
	if (st->n == MAX_STEPS) {
		st->overflowed = 1;
		return;
	}
	st->cap[st->n++] = cap;
}

static void hot_round(unsigned c, struct steps *st)
{
	unsigned i;

	for (i = 0; i < HOT_N; i++) {
		blk[i] = hak_malloc(HOT_SIZE);
		if (st)
			note(st, __hak_tcache_cap_set(c));
	}
	for (i = 0; i < HOT_N; i++)
		hak_free(blk[i]);
}

static void churn(size_t size, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		blk[i] = hak_malloc(size);
	for (i = 0; i < n; i++)
		hak_free(blk[i]);
}

static void *worker(void *arg)
{
	struct seen *s = arg;
	unsigned c = __hak_class_of(HOT_SIZE), r;
	uint64_t r0;

	hak_free(hak_malloc(16));	/* attach (class 0) */
	s->sane_start = at_bins_sane();
	s->cap_start = __hak_tcache_cap_set(c);
	s->cap_default = __hak_tcache_cap(c);

	note(&s->grow, __hak_tcache_cap_set(c));
	for (r = 0; r < 10; r++)
		hot_round(c, &s->grow);
	r0 = at_refills();
	for (r = 0; r < 10; r++)
		hot_round(c, NULL);
	s->refills_warm = at_refills() - r0;
	s->count_hot = __hak_tbin_count(&__hak_tc.bins[c]);
	s->sane_hot = at_bins_sane();

	note(&s->shrink, __hak_tcache_cap_set(c));
	for (r = 0; r < 1000 && __hak_tcache_cap_set(c) > AT_CAP_MIN; r++) {
		churn(32, COLD_N);
		note(&s->shrink, __hak_tcache_cap_set(c));
		churn(48, COLD_N);
		note(&s->shrink, __hak_tcache_cap_set(c));
	}
	s->cold_rounds = r;
	s->count_cold = __hak_tbin_count(&__hak_tc.bins[c]);
	s->sane_cold = at_bins_sane();

	note(&s->regrow, __hak_tcache_cap_set(c));
	for (r = 0; r < 10; r++)
		hot_round(c, &s->regrow);
	return NULL;
}

/* Each step is factor (2 or 1/2) times the previous one, clamped. */
static int steps_ok(const struct steps *st, int up, uint32_t last, const char *what)
{
	char line[256];
	int ok = !st->overflowed && st->n >= 2 && st->cap[st->n - 1] == last;
	size_t len = 0;
	unsigned i;

	for (i = 0; i < st->n; i++) {
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %u", st->cap[i]);
		if (len >= sizeof(line))
			break;
		if (i) {
			uint32_t prev = st->cap[i - 1];
			uint32_t want = up ? (prev * 2 < AT_CAP_MAX ? prev * 2 : AT_CAP_MAX)
					   : (prev / 2 > AT_CAP_MIN ? prev / 2 : AT_CAP_MIN);

			if (st->cap[i] != want)
				ok = 0;
		}
	}
	tap_diag("%s capacity steps:%s", what, line);
	return ok;
}

int main(void)
{
	static struct seen s;
	uint32_t def;

	tap_plan(0);
	memset(&s, 0, sizeof(s));
	at_run(worker, &s);

	def = s.cap_default < AT_CAP_MIN ? AT_CAP_MIN : s.cap_default;
	tap_ok(s.sane_start, "new thread: every capacity in 16..2048, count <= cap");
	tap_ok(s.cap_start == def, "64 B class starts at the core default %u (%u)",
	       def, s.cap_start);
	tap_ok(steps_ok(&s.grow, 1, AT_CAP_MAX, "hot"),
	       "hot loop (%u x 64 B): capacity doubles step by step to %u", HOT_N, AT_CAP_MAX);
	tap_ok(s.refills_warm == 0,
	       "grown cache serves the hot loop: 10 rounds, %llu refills",
	       (unsigned long long)s.refills_warm);
	tap_ok(s.count_hot >= HOT_N, "the grown bin holds the working set (%u blocks)",
	       s.count_hot);
	tap_ok(s.sane_hot, "after growth: every capacity in 16..2048, count <= cap");
	tap_ok(steps_ok(&s.shrink, 0, AT_CAP_MIN, "cold"),
	       "class gone cold: capacity halves step by step to %u (%u rounds of other classes)",
	       AT_CAP_MIN, s.cold_rounds);
	tap_ok(s.count_cold <= AT_CAP_MIN,
	       "cold class gave its excess back: %u -> %u blocks cached", s.count_hot,
	       s.count_cold);
	tap_ok(s.sane_cold, "after shrink: every capacity in 16..2048, count <= cap");
	tap_ok(steps_ok(&s.regrow, 1, AT_CAP_MAX, "hot again"),
	       "hot again: capacity grows back to %u", AT_CAP_MAX);
	tap_finish();
}
