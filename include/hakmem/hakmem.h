/* SPDX-License-Identifier: MIT */
/*
 * hakmem public API.
 *
 * Linked or preloaded, hakmem provides the C library's allocation functions
 * (malloc, free, ... with glibc's semantics). The hak_* names below are the
 * same functions under hakmem's own prefix, for programs that want hakmem
 * explicitly beside another allocator, plus statistics and version queries.
 */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_VERSION_MAJOR	0
#define HAKMEM_VERSION_MINOR	1
#define HAKMEM_VERSION_PATCH	0
#define HAKMEM_VERSION		"0.1.0"

void *hak_malloc(size_t n);
void hak_free(void *p);
void *hak_calloc(size_t n, size_t size);
void *hak_realloc(void *p, size_t n);
void *hak_reallocarray(void *p, size_t n, size_t size);
int hak_posix_memalign(void **out, size_t align, size_t n);
void *hak_aligned_alloc(size_t align, size_t n);
void *hak_memalign(size_t align, size_t n);
void *hak_valloc(size_t n);
void *hak_pvalloc(size_t n);
size_t hak_malloc_usable_size(const void *p);
void hak_free_sized(void *p, size_t n);
void hak_free_aligned_sized(void *p, size_t align, size_t n);
/* Give free memory back to the OS; 1 when some was released. */
int hak_malloc_trim(size_t pad);
/* Print statistics to stderr. */
void hak_malloc_stats(void);

/* A snapshot of the allocator's state (all threads). */
struct hak_stats {
	size_t mapped_bytes;	/* everything mapped from the OS now */
	size_t superslabs;	/* 2 MiB superslabs mapped */
	size_t slab_bytes;	/* bytes of superslab pages in slabs */
	size_t dirty_bytes;	/* free superslab pages not yet returned */
	size_t purged_bytes;	/* bytes returned with madvise, ever */
	size_t small_in_use;	/* bytes of small blocks out of their slabs
				   (held by the program or thread caches) */
	size_t large_blocks;	/* live large blocks */
	size_t large_bytes;	/* bytes mapped for them */
	size_t large_maps;	/* large mappings made, ever */
	size_t large_unmaps;	/* large mappings released, ever */
	size_t heaps;		/* per-thread heaps created */
	size_t meta_bytes;	/* metadata arena */
	uint64_t refills;	/* thread-cache refills */
	uint64_t overflows;	/* thread-cache flushes on free */
	uint64_t remote_frees;	/* blocks freed to another thread's slab */
	uint64_t remote_collected;
	uint64_t slabs_taken;
	uint64_t slabs_released;
	uint64_t heap_handovers;	/* pooled heaps taken by a young thread
					   that freed their blocks (design.md) */
};
void hak_stats_get(struct hak_stats *st);

/*
 * Heap profiler (CONFIG_HAK_HEAPPROF, HAKMEM_PROF=1): write the sampled
 * heap profile now to path (NULL: HAKMEM_PROF_OUT.<pid>.pb.gz), in the
 * HAKMEM_PROF_FORMAT format. 0 on success; -1 with errno set otherwise
 * (ENOSYS: the box is not built in; EINVAL: the profiler is not on).
 */
int hak_prof_dump(const char *path);

/* "0.1.0" */
const char *hak_version(void);
/* The configuration built in, e.g. "arch=x86_64 boxes=failfast:2,bigcache". */
const char *hak_config(void);

#ifdef __cplusplus
}
#endif

#endif /* HAKMEM_H */
