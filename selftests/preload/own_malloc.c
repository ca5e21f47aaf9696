// SPDX-License-Identifier: MIT
/*
 * own_malloc: a program that brings its own malloc family, exported from
 * the executable ahead of any preload, as Firefox's does (mozjemalloc):
 * malloc, free, calloc, realloc, memalign, posix_memalign, aligned_alloc,
 * valloc and malloc_usable_size, but no reallocarray. A library of the
 * process (libX11, libsystemd) calls reallocarray and frees the result
 * with the program's free, so reallocarray must reach the program's
 * realloc, as glibc's does. The program's allocator aborts with its own
 * message on a pointer it did not hand out.
 *
 *   own_malloc grow      reallocarray(NULL, ...), grown, freed: "ok"
 *   own_malloc overflow  a multiplication that overflows: NULL + ENOMEM,
 *                        block intact, realloc never called: "ok"
 *
 * Built with -DPLAIN the program has no allocator of its own and the same
 * modes run on whatever allocator the process has (glibc or hakmem).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef PLAIN
static unsigned long reallocs;	/* calls of this program's realloc */

#define OWN_MAGIC	0x6f776e6d616c6c63ULL
#define OWN_ARENA	(256UL << 20)

struct own_hdr {
	uint64_t magic;
	size_t n;
};

static char *arena, *top;

/* A bump allocator: never reuses memory, enough for a short program. */
static void *own_alloc(size_t align, size_t n)
{
	uintptr_t p;
	struct own_hdr *h;

	if (!arena) {
		arena = mmap(NULL, OWN_ARENA, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (arena == MAP_FAILED)
			abort();
		top = arena;
	}
	if (align < 16)
		align = 16;
	p = ((uintptr_t)top + sizeof(*h) + align - 1) & ~(uintptr_t)(align - 1);
	if (n > OWN_ARENA || p + n > (uintptr_t)arena + OWN_ARENA) {
		errno = ENOMEM;
		return NULL;
	}
	h = (struct own_hdr *)p - 1;
	h->magic = OWN_MAGIC;
	h->n = n;
	top = (char *)p + n;
	return (void *)p;
}

static struct own_hdr *own_hdr(void *p)
{
	static const char msg[] = "own_malloc: a pointer this program did not allocate\n";
	struct own_hdr *h = (struct own_hdr *)p - 1;

	if ((char *)p < arena + sizeof(*h) || (char *)p >= top || h->magic != OWN_MAGIC) {
		fwrite(msg, 1, sizeof(msg) - 1, stderr);
		abort();
	}
	return h;
}

void *malloc(size_t n)
{
	return own_alloc(16, n);
}

void free(void *p)
{
	if (p)
		own_hdr(p)->magic = 0;
}

void *calloc(size_t a, size_t b)
{
	size_t n;
	void *p;

	if (__builtin_mul_overflow(a, b, &n)) {
		errno = ENOMEM;
		return NULL;
	}
	p = own_alloc(16, n);
	return p ? memset(p, 0, n) : NULL;
}

void *realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	reallocs++;
	if (!p)
		return own_alloc(16, n);
	old = own_hdr(p)->n;
	q = own_alloc(16, n);
	if (q) {
		memcpy(q, p, old < n ? old : n);
		free(p);
	}
	return q;
}

void *memalign(size_t align, size_t n)
{
	return own_alloc(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	return own_alloc(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	void *p = own_alloc(align, n);

	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *valloc(size_t n)
{
	return own_alloc(4096, n);
}

size_t malloc_usable_size(void *p)
{
	return p ? own_hdr(p)->n : 0;
}
#define OWN_REALLOCS(n)	(reallocs == (n))
#else
#define OWN_REALLOCS(n)	1
#endif

/* Keeps the sizes out of the compiler's sight. */
static volatile size_t opaque_one = 1;

int main(int argc, char **argv)
{
	size_t one = opaque_one;
	int *a, *b;
	int i, ok = 1;

	if (argc < 2)
		return 2;
	a = reallocarray(NULL, 10 * one, sizeof(*a));
	if (!a)
		return 3;
	for (i = 0; i < 10; i++)
		a[i] = i * 7;
	if (!strcmp(argv[1], "grow")) {
		b = reallocarray(a, 100000 * one, sizeof(*a));
		if (!b)
			return 3;
		for (i = 0; i < 10; i++)
			ok &= b[i] == i * 7;
		b[99999] = 1;
		ok &= OWN_REALLOCS(2);
		free(b);
	} else if (!strcmp(argv[1], "overflow")) {
		int *volatile keep = a;	/* gcc's use-after-free check */

		errno = 0;
		b = reallocarray(a, SIZE_MAX / 2 * one, 3);
		ok &= !b && errno == ENOMEM;
		for (i = 0; i < 10; i++)
			ok &= keep[i] == i * 7;
		ok &= OWN_REALLOCS(1);
		free(keep);
	} else {
		return 2;
	}
	puts(ok ? "ok" : "wrong");
	return !ok;
}
