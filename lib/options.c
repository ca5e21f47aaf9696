// SPDX-License-Identifier: MIT
/*
 * The one table of HAKMEM_* environment variables. Each entry names a
 * size_t in __hak_opt, its bounds and what it does; values take an optional
 * k/m/g suffix. Read once, at the first slow path, from the environment
 * (no allocation), and not at all in a privileged program (below).
 * Documentation/options.md lists the same table.
 */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/auxv.h>
#include "heap.h"
#include "init.h"
#include "purge.h"
#include "os.h"
#include "superslab.h"
#include "boxes/bigcache/bigcache.h"
#include "boxes/failfast/failfast.h"
#include "boxes/heapprof/heapprof.h"

struct hak_options __hak_opt = {
	.stats = 0,
	.dirty_max = (size_t)CONFIG_HAK_DIRTY_MAX_KIB << 10,
	.tcache_bytes = CONFIG_HAK_TCACHE_BYTES,
	.failfast = HAK_FF_DEFAULT_LEVEL,
	.bigcache_max = HAK_BIGCACHE_DEFAULT_MAX,
	.prof_sample = 524288,
	.prof_depth = 64,
	.purge_delay_ms = CONFIG_HAK_PURGE_DELAY_MS,
	.purge_delay_max_ms = CONFIG_HAK_PURGE_DELAY_MAX_MS,
	.memory_limit = HAK_LIMIT_UNSET,
	.purge_batch = 1,
	.grow_area = 1,
	.sandbox = 1,
	.shard_min = HAK_SHARD_MIN_DEFAULT,
	.shard_cap = HAK_SHARD_CAP_DEFAULT,
	.shard_bytes = HAK_SHARD_BYTES_DEFAULT,
};

struct hak_option {
	const char *name;
	size_t *value;
	size_t min, max;
};

static const struct hak_option options[] = {
	{ "HAKMEM_STATS", &__hak_opt.stats, 0, 1 },
	{ "HAKMEM_DIRTY_MAX", &__hak_opt.dirty_max, 0, SIZE_MAX / 2 },
	{ "HAKMEM_TCACHE_BYTES", &__hak_opt.tcache_bytes, 0, 1UL << 24 },
	{ "HAKMEM_PURGE_DELAY_MS", &__hak_opt.purge_delay_ms, 0, 3600000 },
	{ "HAKMEM_PURGE_DELAY_MAX_MS", &__hak_opt.purge_delay_max_ms, 0, 3600000 },
	{ "HAKMEM_MEMORY_LIMIT", &__hak_opt.memory_limit, 0, SIZE_MAX / 2 },
	{ "HAKMEM_MEMORY_LIMIT_HARD", &__hak_opt.memory_limit_hard, 0, 1 },
	{ "HAKMEM_PURGE_BATCH", &__hak_opt.purge_batch, 0, 1 },
	{ "HAKMEM_GROW_AREA", &__hak_opt.grow_area, 0, 1 },
	{ "HAKMEM_SANDBOX", &__hak_opt.sandbox, 0, 1 },
	/* Box options: read always, used only when the box is built in. */
	{ "HAKMEM_TINY_REFILL_FAILFAST", &__hak_opt.failfast, 0, 2 },
	{ "HAKMEM_BIGCACHE_MAX", &__hak_opt.bigcache_max, 0, SIZE_MAX / 2 },
	{ "HAKMEM_PROF", &__hak_opt.prof, 0, 1 },
	{ "HAKMEM_PROF_SAMPLE", &__hak_opt.prof_sample, 1, 1UL << 40 },
	{ "HAKMEM_PROF_DEPTH", &__hak_opt.prof_depth, 1, 64 },
	{ "HAKMEM_PROF_LEAKS", &__hak_opt.prof_leaks, 0, 1000 },
	{ "HAKMEM_PROF_SIGNAL", &__hak_opt.prof_signal, 0, 64 },
	{ "HAKMEM_BACKGROUND_PURGE", &__hak_opt.background_purge, 0, 1 },
	{ "HAKMEM_HUGEPAGE_COLLAPSE", &__hak_opt.hugepage_collapse, 0, 1 },
	{ "HAKMEM_ADAPTIVE_CLASS_MAX", &__hak_opt.adapt_class_max, 0, 1UL << 30 },
	{ "HAKMEM_SHARD_MIN", &__hak_opt.shard_min, 0, 1UL << 20 },
	{ "HAKMEM_SHARD_CAP", &__hak_opt.shard_cap, 0, 256 },
	{ "HAKMEM_SHARD_BYTES", &__hak_opt.shard_bytes, 0, 1UL << 20 },
};

/*
 * Parse "123", "64k", "16M", "1g"; false on anything else. At least one
 * digit: a suffix alone ("k", a typo for a number) read as 0 and turned
 * BigCache or the purge delay off without a word.
 */
static bool parse_size(const char *s, size_t *out)
{
	size_t v = 0, shift = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (SIZE_MAX - 9) / 10)
			return false;
		v = v * 10 + (size_t)(*s - '0');
	}
	switch (*s) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		s++;
		break;
	case 'm': case 'M':
		shift = 20;
		s++;
		break;
	case 'g': case 'G':
		shift = 30;
		s++;
		break;
	default:
		return false;
	}
	if (*s || (shift && v > (SIZE_MAX >> shift)))
		return false;
	*out = v << shift;
	return true;
}

/*
 * A set-user-ID or set-group-ID program (or one that gained capabilities
 * at exec: the kernel's AT_SECURE) takes none of them: its environment
 * is its caller's, who could have it write a profile as its owner to any
 * path (HAKMEM_PROF_OUT, created and truncated) or fail its allocations
 * at will (HAKMEM_MEMORY_LIMIT_HARD), as glibc's own tunables and
 * jemalloc's MALLOC_CONF are not taken there. Each one set is reported.
 */
/*
 * What getenv would answer for each option (the first entry of its name),
 * in one pass over the environment: a getenv per option scanned all of it
 * once per option (46 of them) in every process's first malloc, 2% of a
 * short sed's extra CPU (benchmarks.md, "Process start").
 */
static void options_env(const char **val)
{
	for (char **e = environ; e && *e; e++) {
		const char *s = *e;

		if (strncmp(s, "HAKMEM_", 7))
			continue;
		for (unsigned i = 0; i < ARRAY_SIZE(options); i++) {
			size_t n = strlen(options[i].name);

			if (!val[i] && !strncmp(s, options[i].name, n) && s[n] == '=') {
				val[i] = s + n + 1;
				break;
			}
		}
	}
}

void __hak_options_read(void)
{
	const char *val[ARRAY_SIZE(options)] = { NULL };
	bool secure = getauxval(AT_SECURE) != 0;
	unsigned i;

	options_env(val);
	for (i = 0; i < ARRAY_SIZE(options); i++) {
		const struct hak_option *o = &options[i];
		const char *s = val[i];
		size_t v;

		if (!s)
			continue;
		if (secure) {
			__hak_report("ignoring %s in a set-user-ID or set-group-ID program",
				     o->name);
			continue;
		}
		if (!parse_size(s, &v) || v < o->min || v > o->max) {
			__hak_report("ignoring %s=%s (want %zu..%zu, k/m/g suffix)",
				     o->name, s, o->min, o->max);
			continue;
		}
		*o->value = v;
	}
	/*
	 * Parsing made no system call; what follows may (the cgroup files,
	 * BigCache's memory sample), so the probe comes here: after
	 * HAKMEM_SANDBOX is known, before any call a seccomp filter in place
	 * since exec may not allow.
	 */
	__hak_os_sandbox_probe();
	__hak_ss_set_dirty_max(__hak_opt.dirty_max);
	__hak_tcache_set_bytes(__hak_opt.tcache_bytes);
	hak_ff_init();
	hak_bigcache_init();
	hak_prof_init();
	__hak_limit_init();
}
