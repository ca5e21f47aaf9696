/* SPDX-License-Identifier: MIT */
/*
 * The core's one header for boxes: what a box may use of lib/, and nothing
 * else. A box's .c and .h files include this header (and other boxes' hook
 * headers, for a box that depends on another), never lib/<file>.h; the
 * check step tools/check.d/15-boxapi.sh enforces it. The core, in the other
 * direction, reaches a box only through the box's hook header.
 *
 * What the core offers boxes, by the file that defines it:
 *
 *   size_class.h  HAK_NCLASS, HAK_CLASS_NONE, HAK_SMALL_MAX, the class
 *                 tables (__hak_class_size, __hak_class_span), the
 *                 size -> class map (__hak_class_of, __hak_class_for_align)
 *   superslab.h   geometry (HAK_SS_*, HAK_PAGE_*), the ownership registry
 *                 (__hak_ssmap_kind, __hak_ss_owns, __hak_ssmap_open, __hak_ssmap_set and the
 *                 kinds HAK_SSMAP_SLAB/HAK_SSMAP_L25), page and slab lookup
 *                 (__hak_page_of, __hak_slab_head, __hak_slab_start/end,
 *                 __hak_page_class, __hak_page_owner), struct
 *                 hak_superslab (its huge field, for the hugepage box), for checks that read
 *                 slab metadata (fail-fast) and for a box that registers
 *                 regions of its own (L2.5)
 *   tcache.h      the calling thread's cache (__hak_tc: bins' head and
 *                 cap, __hak_tbin_count and __hak_tbin_set_cap, read and
 *                 set by the sizing boxes; prof_left, the heap profiler's
 *                 countdown, hak_tc_tls for its %fs-relative tick),
 *                 __hak_tcache_fill and
 *                 __hak_tcache_trim (move blocks between a bin and the heap),
 *                 __hak_tcache_live_share (a thread's share of a per-thread
 *                 budget past the cores) and __hak_tcache_past_cores (that
 *                 rule's test), __hak_nr_cpus (the CPUs
 *                 the process may run on, for sharding), __hak_sharded_class and
 *                 __hak_shard_cap_of (the classes whose small bin the core
 *                 sizes: free-list sharding, the adaptive box leaves them)
 *   alloc.h       __hak_usable_size (annotations that describe a block);
 *                 __hak_alloc_nosample and __hak_alloc_big (the heap
 *                 profiler allocates without its countdown, and serves
 *                 sampled blocks from the big path)
 *   os.h          the OS layer: map, aligned map, unmap, remap, purge,
 *                 guard pages (the hardened box's __hak_os_guard and
 *                 __hak_os_unguard), and
 *                 HAK_OS_PAGE (a box never calls mmap/madvise itself, so
 *                 fault injection and accounting see every mapping);
 *                 hugepage advice and collapse (__hak_os_advise_huge,
 *                 __hak_os_collapse), the coarse clock (__hak_now_ms),
 *                 the kernel's clocks past any interposer (__hak_os_clock),
 *                 __hak_os_read_file (a /proc file, inside malloc),
 *                 __hak_os_resident_bytes (what the kernel holds, for statistics)
 *                 and __hak_os_backoff (one step of a wait for another
 *                 thread: spin, yield, then a nap that is no cancellation point);
 *                 __hak_os_nap (that nap: the background purge thread's sleep);
 *                 __hak_os_getrandom (the hardened box's secret);
 *                 __hak_os_getpid (the kernel's id of the process);
 *                 __hak_os_elf_nsyms (a dynamic symbol table's size);
 *                 __hak_os_space_costly (address space charged as memory:
 *                 map little ahead of use);
 *                 __hak_os_sandboxed and __hak_os_sandboxed_late (a seccomp
 *                 sandbox: make no system call glibc's malloc does not)
 *   meta.h        __hak_meta_alloc: zeroed metadata memory that is never
 *                 freed (a box never calls malloc)
 *   lock.h        struct hak_lock, hak_lock/hak_unlock, HAK_DEFINE_FORK_LOCK
 *   init.h        the runtime options (__hak_opt), __hak_init, and the
 *                 diagnostics __hak_report / __hak_bad_free
 *   purge.h       the decay pass when due (__hak_purge_idle), for the
 *                 background purge box; __hak_now_ms is in os.h
 *
 * Anything else a box needs is added here, with a line in this table, so
 * this header stays the complete list.
 */
#ifndef HAK_BOX_H
#define HAK_BOX_H

#include "size_class.h"
#include "superslab.h"
#include "tcache.h"
#include "alloc.h"
#include "os.h"
#include "meta.h"
#include "lock.h"
#include "init.h"
#include "purge.h"

#endif /* HAK_BOX_H */
