/* SPDX-License-Identifier: MIT */
/*
 * Inside the heap profiler box: what its files share.
 *
 *   prof.c    sampling, the stack and sampled-block tables, options, dumps
 *   unwind.c  the call-stack walker (.eh_frame CFI on x86_64, frame
 *             pointers elsewhere) and the cache of loaded modules
 *   symtab.c  names from the modules' dynamic symbol tables
 *   pprof.c   profile.proto (protobuf + gzip) and the folded-stack text
 *
 * None of them calls malloc: tables live in metadata memory or in OS-layer
 * mappings. Lock order: the profile lock (prof.c) before the module lock
 * (unwind.c) before the dynamic loader's lock (dl_iterate_phdr).
 */
#ifndef HAK_BOX_HEAPPROF_INTERNAL_H
#define HAK_BOX_HEAPPROF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "box.h"

#define HP_MAX_DEPTH	64

/* One distinct call stack and the weighted totals of its samples. */
struct hp_stack {
	struct hp_stack *next;		/* hash chain */
	struct hp_stack *all;		/* list of every stack */
	uint64_t hash;
	double alloc_n, alloc_b;	/* estimated objects / bytes allocated */
	double live_n, live_b;		/* estimated objects / bytes live now */
	unsigned depth;
	uintptr_t pc[];			/* leaf first; return addresses - 1 */
};

/* A loaded module (executable, shared object, vdso). */
struct hp_module {
	uintptr_t lo, hi;		/* its PT_LOAD range */
	uintptr_t bias;			/* load bias */
	const uint8_t *eh_hdr;		/* .eh_frame_hdr, or NULL */
	const void *dyn;		/* PT_DYNAMIC, or NULL */
	const char *name;		/* path ("" for the main program) */
};

/* unwind.c */
/*
 * Under prof_lock: the stack of the sampled call that returns to ra (the
 * profiler's entry point's return address). When the walk cache holds
 * this very stack, returns what __hak_prof_backtrace_remember() was given
 * for it; else NULL, with up to max callers in pc[0..*depth), leaf first,
 * without the allocator's own frames, each a return address minus one.
 */
void *__hak_prof_backtrace(uintptr_t *pc, unsigned max, uintptr_t ra, unsigned *depth);
/* After a NULL from __hak_prof_backtrace, in the same hold of prof_lock. */
void __hak_prof_backtrace_remember(void *result);
bool __hak_prof_module_of(uintptr_t pc, struct hp_module *out);
bool __hak_prof_unwind_fork_prepare(void);
void __hak_prof_unwind_fork_parent(void);
void __hak_prof_unwind_fork_child(void);

/* symtab.c: "name" or NULL; *off is pc's distance from it. */
const char *__hak_prof_symbol(const struct hp_module *m, uintptr_t pc, uintptr_t *off);
/* pc as text: "name", or "module+0xoff"; returns the length. */
size_t __hak_prof_pc_text(uintptr_t pc, char *buf, size_t len);

/* pprof.c */
enum hp_format { HP_FMT_PPROF, HP_FMT_COLLAPSED };
int __hak_prof_write(int fd, enum hp_format fmt, struct hp_stack *all,
		     size_t mean) __must_check;

#endif /* HAK_BOX_HEAPPROF_INTERNAL_H */
