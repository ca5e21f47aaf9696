// SPDX-License-Identifier: MIT
/*
 * bad_input: what the core does with pointers it never handed out, with or
 * without the fail-fast box. A foreign pointer (stack, global, a mapping
 * made with mmap, memory of "another allocator") is recognised by the
 * registry without reading through it, reported in one line naming the
 * address and the check, and the process aborts: it is never handed to
 * another allocator and never written through. The foreign memory is a
 * shared mapping the parent checks afterwards, so "never written" is
 * observed, not assumed. Documentation/bad-input.md lists the behaviour for
 * the inputs only the fail-fast box catches.
 */
#include <malloc.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include "tap.h"
#include "child.h"
#include <hak/compiler.h>

#define FOREIGN_LEN	(4UL << 20)

static unsigned char *foreign;	/* shared with the children */
static char global_buf[256];

enum op { OP_FREE, OP_REALLOC, OP_REALLOC_HUGE, OP_USABLE, OP_FREE_SIZED };

/* A size no request can have (over PTRDIFF_MAX), out of the compiler's sight. */
static volatile size_t huge = SIZE_MAX;

struct scenario {
	const char *name;
	void *(*where)(void);
	enum op op;
	const char *expect;
};

static void *in_foreign(void)
{
	return foreign + 4096 + 64;
}

static void *in_foreign_2m(void)
{
	/* 2 MiB-aligned, like a superslab start: still not registered. */
	uintptr_t a = HAK_ALIGN_UP((uintptr_t)foreign, 1UL << 21);

	return a + 64 < (uintptr_t)foreign + FOREIGN_LEN ? (void *)(a + 64) : foreign + 128;
}

static void *in_stack(void)
{
	static void *volatile keep;
	char buf[64];

	keep = buf;
	return keep;
}

static void *in_global(void)
{
	return global_buf + 32;
}

static void *in_high(void)
{
	return (void *)0xffff800000001000UL;	/* kernel half: not user space */
}

static void free_sized_decl(void *p, size_t n);

static void run(void *arg)
{
	const struct scenario *s = arg;
	void *p = s->where();

	switch (s->op) {
	case OP_FREE:
		free(p);
		break;
	case OP_REALLOC:
		p = realloc(p, 100);
		break;
	case OP_REALLOC_HUGE:
		/* the pointer is checked before the size, as glibc's realloc does */
		p = realloc(p, huge);
		break;
	case OP_USABLE:
		printf("%zu\n", malloc_usable_size(p));
		break;
	case OP_FREE_SIZED:
		free_sized_decl(p, 64);
		break;
	}
	_exit(0);	/* reaching here means the bad pointer was accepted */
}

void free_sized(void *p, size_t n);
static void free_sized_decl(void *p, size_t n)
{
	free_sized(p, n);
}

static const struct scenario scenarios[] = {
	{ "free of an mmap'd (foreign heap) pointer", in_foreign, OP_FREE, "not allocated by hakmem" },
	{ "free of a 2 MiB-aligned foreign pointer", in_foreign_2m, OP_FREE, "not allocated by hakmem" },
	{ "free of a stack address", in_stack, OP_FREE, "not allocated by hakmem" },
	{ "free of a global", in_global, OP_FREE, "not allocated by hakmem" },
	{ "free of a kernel-half address", in_high, OP_FREE, "not allocated by hakmem" },
	{ "realloc of a foreign pointer", in_foreign, OP_REALLOC, "not allocated by hakmem" },
	{ "realloc of a foreign pointer to SIZE_MAX", in_foreign, OP_REALLOC_HUGE, "not allocated by hakmem" },
	{ "realloc of a stack address to SIZE_MAX", in_stack, OP_REALLOC_HUGE, "not allocated by hakmem" },
	{ "malloc_usable_size of a foreign pointer", in_foreign, OP_USABLE, "not allocated by hakmem" },
	{ "free_sized of a foreign pointer", in_foreign, OP_FREE_SIZED, "not allocated by hakmem" },
};

int main(void)
{
	struct child_result r;
	unsigned i;
	size_t j, changed;

	foreign = mmap(NULL, FOREIGN_LEN, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (foreign == MAP_FAILED)
		tap_bail("mmap");
	tap_plan(2 * ARRAY_SIZE(scenarios) + 1);
	for (i = 0; i < ARRAY_SIZE(scenarios); i++) {
		const struct scenario *s = &scenarios[i];
		const char *line;

		for (j = 0; j < FOREIGN_LEN; j++)
			foreign[j] = (unsigned char)(j * 131 + 7);
		child_run(run, (void *)s, &r);
		line = strstr(r.err, "hakmem: ");
		tap_ok(child_aborted(&r) && line && strstr(line, s->expect) &&
		       strstr(line, "0x") && child_err_lines(&r) == 1,
		       "%s: one line naming the address, then abort", s->name);
		if (!child_aborted(&r) || !line)
			tap_diag("status %#x, stderr: %s", r.status, r.err);
		for (changed = 0, j = 0; j < FOREIGN_LEN; j++)
			changed += foreign[j] != (unsigned char)(j * 131 + 7);
		tap_ok(!changed, "%s: foreign memory untouched (%zu bytes changed)", s->name, changed);
	}
	/* The parent, which never saw a bad pointer, still allocates. */
	{
		void *p = malloc(100), *q = malloc(1 << 20);

		tap_ok(p && q, "the allocator still works after the aborted children");
		free(p);
		free(q);
	}
	tap_finish();
}
