// SPDX-License-Identifier: MIT
/*
 * Statistics: one snapshot (hak_stats_get) gathered from the superslab
 * pool, the large registry, the heaps and the OS layer, and the views of it
 * that libc programs know: mallinfo2 and malloc_stats. Figures are exact at
 * the moment each subsystem is read, not across subsystems. The memory
 * reports (malloc_info, the HAKMEM_STATS memory lines) add each layer's
 * resident bytes as the kernel counts them (layer_resident_get); which
 * figure is which: Documentation/design.md, "What the reports say".
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <asm/atomic.h>
#include <asm/processor.h>
#include <hakmem/hakmem.h>
#include "heap.h"
#include "init.h"
#include "grow.h"
#include "large.h"
#include "meta.h"
#include "os.h"
#include "purge.h"
#include "stats.h"
#include "superslab.h"
#include "zero.h"
#include "boxes/background_purge/bgpurge.h"
#include "boxes/bigcache/bigcache.h"
#include "boxes/hugepage/hugepage.h"
#include "boxes/l25_pool/l25.h"

void __hak_stats_get(struct hak_stats *st)
{
	struct hak_heap_stats hs;
	struct hak_large_stats ls;
	struct hak_ss_stats ss;

	__hak_ss_stats(&ss);
	__hak_large_stats(&ls);
	__hak_heap_stats(&hs, &st->heaps);
	st->mapped_bytes = __hak_os_mapped();
	st->superslabs = ss.superslabs;
	st->slab_bytes = ss.pages_used << HAK_PAGE_SHIFT;
	st->dirty_bytes = ss.pages_dirty << HAK_PAGE_SHIFT;
	st->purged_bytes = ss.purged_bytes;
	st->small_in_use = hs.bytes_out;
	st->large_blocks = ls.blocks;
	st->large_bytes = ls.bytes;
	st->large_maps = ls.maps;
	st->large_unmaps = ls.unmaps;
	st->meta_bytes = __hak_meta_bytes();
	st->refills = hs.refills;
	st->overflows = hs.overflows;
	st->remote_frees = hs.remote_frees;
	st->remote_collected = hs.remote_collected;
	st->slabs_taken = hs.slabs_taken;
	st->slabs_released = hs.slabs_released;
	st->heap_handovers = hs.handovers;
}

void __hak_mallinfo2(struct mallinfo2 *mi)
{
	struct hak_stats st;

	__hak_stats_get(&st);
	memset(mi, 0, sizeof(*mi));
	mi->arena = st.slab_bytes + st.dirty_bytes;
	mi->ordblks = st.superslabs;
	mi->hblks = st.large_blocks;
	mi->hblkhd = st.large_bytes;
	mi->uordblks = st.small_in_use;
	mi->fordblks = mi->arena > st.small_in_use ? mi->arena - st.small_in_use : 0;
	mi->keepcost = st.dirty_bytes;
}

/* Boxes built in, by name (the folder under boxes/). */
static const struct {
	const char *name;
	bool on;
} boxes[] = {
	{ "header_classidx", IS_ENABLED(CONFIG_HAK_HEADER_CLASSIDX) },
	{ "aggressive_inline", IS_ENABLED(CONFIG_HAK_AGGRESSIVE_INLINE) },
	{ "tls_prewarm", IS_ENABLED(CONFIG_HAK_TLS_PREWARM) },
	{ "adaptive_sizing", IS_ENABLED(CONFIG_HAK_ADAPTIVE_SIZING) },
	{ "failfast", IS_ENABLED(CONFIG_HAK_FAILFAST) },
	{ "bigcache", IS_ENABLED(CONFIG_HAK_BIGCACHE) },
	{ "l25_pool", IS_ENABLED(CONFIG_HAK_L25_POOL) },
	{ "valgrind", IS_ENABLED(CONFIG_HAK_VALGRIND) },
	{ "heapprof", IS_ENABLED(CONFIG_HAK_HEAPPROF) },
	{ "background_purge", IS_ENABLED(CONFIG_HAK_BACKGROUND_PURGE) },
	{ "hugepage", IS_ENABLED(CONFIG_HAK_HUGEPAGE) },
};

/* "arch=x86_64 boxes=aggressive_inline,bigcache" (built once; no allocation). */
const char *__hak_config(void)
{
	static char buf[256];
	size_t n;
	unsigned i;
	const char *sep = "";

	if (arch_load_acquire(&buf[0]))
		return buf;
	{
		char tmp[sizeof(buf)];

		n = (size_t)snprintf(tmp, sizeof(tmp), "arch=%s boxes=", ARCH_NAME);
		for (i = 0; i < ARRAY_SIZE(boxes) && n < sizeof(tmp); i++) {
			if (!boxes[i].on)
				continue;
			n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%s%s", sep, boxes[i].name);
			sep = ",";
		}
		if (!*sep && n < sizeof(tmp))
			snprintf(tmp + n, sizeof(tmp) - n, "none");
		/* Racing first callers write the same bytes; the first byte last. */
		memcpy(buf + 1, tmp + 1, sizeof(buf) - 1);
		arch_store_release(&buf[0], tmp[0]);
	}
	return buf;
}

/* Every layer's figures, for the HAKMEM_STATS memory lines and malloc_info. */
struct layer_stats {
	struct hak_ss_stats ss;
	struct hak_bigcache_stats bc;
	struct hak_l25_stats l25;
	struct hak_purge_stats ps;
	struct hak_bgpurge_stats bg;
	struct hak_huge_stats hp;
	struct hak_grow_stats gr;
	struct hak_large_stats lg;
};

/*
 * What the kernel holds now, per layer (lib/os.h, struct hak_os_rss, over
 * each layer's ranges): the counters say what each layer has not given
 * back, which is more than it holds when pages were never touched or
 * calloc gave them back (lib/zero.c). Only for the reports: a system call
 * per range and per 64 runs of resident pages in it (mincore: per 4 MiB).
 */
struct layer_resident {
	size_t small, mid, large, cached, kept, grow, meta, total;
	size_t small_huge, mid_huge, large_huge;	/* of those, in huge pages */
	bool huge_known;			/* PAGEMAP_SCAN told the huge pages */
};

static void layer_resident_get(struct layer_resident *r)
{
	struct hak_os_rss rss;

	__hak_os_rss_open(&rss);
	r->huge_known = rss.fd >= 0;
	r->small = __hak_ssmap_resident(&rss, HAK_SSMAP_SLAB);
	r->small_huge = rss.huge;
	r->mid = __hak_ssmap_resident(&rss, HAK_SSMAP_L25);
	r->mid_huge = rss.huge - r->small_huge;
	__hak_large_resident(&rss, &r->large, &r->kept);
	r->cached = hak_bigcache_resident(&rss);
	r->grow = __hak_grow_resident(&rss);
	r->large_huge = rss.huge - r->small_huge - r->mid_huge;
	r->meta = __hak_meta_resident(&rss);
	__hak_os_rss_close(&rss);
	r->total = r->small + r->mid + r->large + r->cached + r->kept + r->grow + r->meta;
}

static void layer_stats_get(struct layer_stats *m)
{
	__hak_ss_stats(&m->ss);
	hak_bigcache_stats(&m->bc);
	hak_l25_stats(&m->l25);
	__hak_purge_stats(&m->ps);
	hak_bgpurge_stats(&m->bg);
	hak_huge_stats(&m->hp);
	__hak_grow_stats(&m->gr);
	__hak_large_stats(&m->lg);
}

/* In a seccomp sandbox no mincore or PAGEMAP_SCAN is made: no resident counts (lib/os.c). */
static const char *sandbox_note(void)
{
	switch (__atomic_load_n(&__hak_os_sandbox, __ATOMIC_RELAXED)) {
	case HAK_SANDBOX_AT_START:
		return "; in a seccomp sandbox since exec: the resident counts read 0";
	case HAK_SANDBOX_PRCTL:
		return "; in a seccomp sandbox (prctl): the resident counts read 0";
	}
	return "";
}

/*
 * Where memory sits, per layer: resident (what the kernel holds now:
 * mincore), in slabs / in use / cached (what the layer holds, touched or
 * not), dirty (freed, not purged since: resident or not), purged (given
 * back, ever); the purge delay, the limit and the background thread.
 */
static void __hak_stats_print_memory(int fd)
{
	struct layer_stats m;
	struct layer_resident r;
	char buf[2560];
	int n;

	layer_stats_get(&m);
	layer_resident_get(&r);
	n = snprintf(buf, sizeof(buf),
		"  resident        %12zu bytes (the kernel's count over every layer; metadata %zu)\n"
		"  small slabs     %12zu bytes resident, %zu in slabs, %zu dirty, %zu purged, "
		"%zu in live slabs\n"
		"  mid (L2.5)      %12zu bytes resident, %zu in use, %zu dirty, %zu purged (%zu at the size bound, "
		"%zu in thread caches; %zu kept for re-takes, %zu regions handed over), "
		"%zu shards, %zu lock waits, %zu remote frees\n"
		"  large blocks    %12zu bytes resident, %zu in kept whole mappings, %zu given "
		"back by calloc\n"
		"  large cache     %12zu bytes cached, %zu resident, %zu not purged, %zu purges (%zu bytes), %zu hits, "
"%zu misses, %zu splits, %zu merges, %zu shorter, %zu evictions, %zu offsets, %zu paid (%zu came back)\n"
		"  grow areas      %12zu bytes committed, %zu resident (%zu areas, %zu blocks live, "
		"%zu takes, %zu resizes, %zu refused, %zu bytes purged)\n"
		"  purge           %12zu ms delay (busy %zu ms: %zu up, %zu down), %zu passes, %zu bytes decayed%s\n"
		"  memory limit    %12zu bytes%s, %zu purges near it, %zu retries\n"
		"  background      %12s (%zu starts, %zu wakeups, %zu passes, %zu bytes)\n"
		"  hugepages       %12zu bytes of hakmem's in huge pages (small %zu, mid %zu, "
		"large %zu%s; the process's AnonHugePages %zu; %zu advised, %zu at map, "
		"%zu earned, %zu withdrawn, %zu collapsed, %zu failed)\n",
		r.total, r.meta,
		r.small, m.ss.pages_used << HAK_PAGE_SHIFT, m.ss.pages_dirty << HAK_PAGE_SHIFT,
		m.ss.purged_bytes, __hak_heap_pages_purged(),
		r.mid, m.l25.bytes_in_use, m.l25.dirty_bytes, m.l25.purged_bytes, m.l25.cap_purged_bytes,
		m.l25.tc_purged_bytes, m.l25.reserve_bytes, m.l25.handed, m.l25.shards, m.l25.contended, m.l25.remote_frees,
		r.large, r.kept, __hak_zero_purged(),
		m.bc.cached_bytes, r.cached, m.bc.resident_bytes, m.bc.purges, m.bc.purged_bytes, m.bc.hits,
		m.bc.misses, m.bc.splits, m.bc.merges, m.bc.shorter, m.bc.evictions, m.bc.offsets, m.bc.paid,
		m.bc.paid_back,
		m.gr.committed, r.grow, m.gr.areas, m.gr.live, m.gr.takes, m.gr.grows, m.gr.refused,
		m.gr.purged,
		m.ps.delay_ms, m.ps.learned_ms, m.ps.learn_up, m.ps.learn_down,
		m.ps.passes, m.ps.decayed_bytes, sandbox_note(),
		m.ps.limit, m.ps.limit_hard ? " (hard)" : "", m.ps.limit_purges, m.ps.retries,
		m.bg.running ? "running" : IS_ENABLED(CONFIG_HAK_BACKGROUND_PURGE) ? "off" : "not built",
		m.bg.starts, m.bg.wakeups, m.bg.passes, m.bg.purged_bytes,
		r.small_huge + r.mid_huge + r.large_huge, r.small_huge, r.mid_huge,
		r.large_huge, r.huge_known ? "" : ": unknown, no PAGEMAP_SCAN",
		m.hp.anon_huge_bytes, m.hp.advised, m.hp.at_map, m.hp.earned, m.hp.withdrawn, m.hp.collapses, m.hp.collapse_fails);
	if (n > (int)sizeof(buf))
		n = sizeof(buf);
	if (n > 0 && write(fd, buf, (size_t)n) < 0)
		return;
}

int __hak_malloc_info(int options, FILE *fp)
{
	struct hak_stats st;
	struct layer_stats m;
	struct layer_resident r;
	size_t page_purged;

	if (options != 0 || !fp) {
		errno = EINVAL;
		return -1;
	}
	__hak_stats_get(&st);
	layer_stats_get(&m);
	layer_resident_get(&r);
	page_purged = __hak_heap_pages_purged();
	fprintf(fp, "<malloc version=\"hakmem-%s\">\n", HAKMEM_VERSION);
	fprintf(fp, "<heap nr=\"0\" name=\"small\">\n"
		"<total type=\"in_use\" size=\"%zu\"/>\n"
		"<total type=\"resident\" size=\"%zu\"/>\n"
		"<total type=\"in_slabs\" size=\"%zu\"/>\n"
		"<total type=\"dirty\" size=\"%zu\"/>\n"
		"<total type=\"purged\" size=\"%zu\"/>\n"
		"<total type=\"purged_in_slabs\" size=\"%zu\"/>\n"
		"<total type=\"hugepage\" size=\"%zu\"/>\n"
		"</heap>\n",
		st.small_in_use, r.small, m.ss.pages_used << HAK_PAGE_SHIFT,
		m.ss.pages_dirty << HAK_PAGE_SHIFT, m.ss.purged_bytes, page_purged,
		r.huge_known ? r.small_huge : m.hp.anon_huge_bytes);
	fprintf(fp, "<heap nr=\"1\" name=\"mid\">\n"
		"<total type=\"in_use\" size=\"%zu\"/>\n"
		"<total type=\"resident\" size=\"%zu\"/>\n"
		"<total type=\"dirty\" size=\"%zu\"/>\n"
		"<total type=\"purged\" size=\"%zu\"/>\n"
		"<total type=\"mapped\" count=\"%zu\" size=\"%zu\"/>\n"
		"<total type=\"hugepage\" size=\"%zu\"/>\n"
		"</heap>\n",
		m.l25.bytes_in_use, r.mid, m.l25.dirty_bytes, m.l25.purged_bytes,
		m.l25.regions, m.l25.regions * HAK_SS_SIZE, r.mid_huge);
	fprintf(fp, "<heap nr=\"2\" name=\"large\">\n"
		"<total type=\"in_use\" count=\"%zu\" size=\"%zu\"/>\n"
		"<total type=\"resident\" size=\"%zu\"/>\n"
		"<total type=\"zero_purged\" size=\"%zu\"/>\n"
		"<total type=\"cached\" count=\"%zu\" size=\"%zu\"/>\n"
		"<total type=\"cached_resident\" size=\"%zu\"/>\n"
		"<total type=\"cached_unpurged\" size=\"%zu\"/>\n"
		"<total type=\"purges\" count=\"%zu\" size=\"%zu\"/>\n"
		"<total type=\"kept\" count=\"%zu\" size=\"%zu\"/>\n"
		"<total type=\"kept_resident\" size=\"%zu\"/>\n"
		"<total type=\"grow_committed\" count=\"%zu\" size=\"%zu\"/>\n"
		"<total type=\"grow_resident\" size=\"%zu\"/>\n"
		"<total type=\"grow_purged\" size=\"%zu\"/>\n"
		"<total type=\"hugepage\" size=\"%zu\"/>\n"
		"</heap>\n",
		st.large_blocks, st.large_bytes, r.large, __hak_zero_purged(),
		m.bc.cached_blocks, m.bc.cached_bytes, r.cached, m.bc.resident_bytes,
		m.bc.purges, m.bc.purged_bytes, m.lg.wholes_kept, m.lg.whole_bytes, r.kept,
		m.gr.live, m.gr.committed, r.grow, m.gr.purged, r.large_huge);
	fprintf(fp, "<purge delay_ms=\"%zu\" learned_ms=\"%zu\" passes=\"%zu\" decayed=\"%zu\" "
		"limit=\"%zu\" hard=\"%zu\" limit_purges=\"%zu\" retries=\"%zu\" "
		"background=\"%zu\" background_passes=\"%zu\" background_purged=\"%zu\"/>\n",
		m.ps.delay_ms, m.ps.learned_ms, m.ps.passes, m.ps.decayed_bytes, m.ps.limit,
		m.ps.limit_hard,
		m.ps.limit_purges, m.ps.retries, m.bg.running, m.bg.passes, m.bg.purged_bytes);
	fprintf(fp, "<system type=\"current\" size=\"%zu\"/>\n"
		"<system type=\"resident\" size=\"%zu\"/>\n"
		"<system type=\"meta\" size=\"%zu\"/>\n"
		"<system type=\"meta_resident\" size=\"%zu\"/>\n"
		"<system type=\"anon_huge\" size=\"%zu\"/>\n"
		"<aspace type=\"total\" size=\"%zu\"/>\n"
		"</malloc>\n", st.mapped_bytes, r.total, st.meta_bytes, r.meta,
		m.hp.anon_huge_bytes, st.mapped_bytes);
	return 0;
}

void __hak_stats_print(int fd)
{
	struct hak_stats st;
	struct hak_fork_stats fs;
	char buf[1536];
	int n;

	__hak_stats_get(&st);
	__hak_fork_stats(&fs);
	n = snprintf(buf, sizeof(buf),
		"hakmem %s statistics (%s)\n"
		"  mapped          %12zu bytes\n"
		"  superslabs      %12zu (%zu bytes in slabs, %zu dirty, %zu purged)\n"
		"  small in use    %12zu bytes (incl. thread caches)\n"
		"  large blocks    %12zu (%zu bytes; %zu maps, %zu unmaps)\n"
		"  heaps           %12zu (metadata %zu bytes, %llu handed over)\n"
		"  refills         %12llu\n"
		"  overflows       %12llu\n"
		"  remote frees    %12llu (collected %llu)\n"
		"  slabs           %12llu taken, %llu released\n"
		"  forks           %12lu (multi-threaded; %lu from a handler whose frame "
		"held a lock, %lu back-offs, %lu locks left to another such frame, "
		"%lu waits given up, %lu turns waited for, %lu lock takes held back for one)\n",
		HAKMEM_VERSION, __hak_config(), st.mapped_bytes,
		st.superslabs, st.slab_bytes, st.dirty_bytes, st.purged_bytes,
		st.small_in_use, st.large_blocks, st.large_bytes, st.large_maps,
		st.large_unmaps, st.heaps, st.meta_bytes,
		(unsigned long long)st.heap_handovers,
		(unsigned long long)st.refills, (unsigned long long)st.overflows,
		(unsigned long long)st.remote_frees,
		(unsigned long long)st.remote_collected,
		(unsigned long long)st.slabs_taken,
		(unsigned long long)st.slabs_released,
		fs.forks, fs.urgent, fs.backoffs, fs.skips, fs.waited_out, fs.turns, fs.gated);
	if (n > (int)sizeof(buf))
		n = sizeof(buf);
	if (n > 0 && write(fd, buf, (size_t)n) < 0)
		return;
	__hak_stats_print_memory(fd);
}
