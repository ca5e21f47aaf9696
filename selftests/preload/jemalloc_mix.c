// SPDX-License-Identifier: MIT
/*
 * jemalloc_mix: jemalloc's own API next to the interposed allocator, the
 * way BIND 9.18 runs under LD_PRELOAD=libhakmem.so. Debian links named to
 * libjemalloc.so.2 and libisc calls mallocx, rallocx, sallocx and sdallocx,
 * which hakmem does not export, so they stay with jemalloc, while malloc,
 * realloc and free go to hakmem. Linked to libjemalloc.so.2 by its path,
 * as named is (dlopen cannot load it: it needs static TLS), with jemalloc's
 * four prototypes written here, so the test needs no libjemalloc-dev.
 *
 *   jemalloc_mix OP SIZE
 *
 * OP: free, realloc, usable (malloc_usable_size) of a block from mallocx:
 * hakmem must stop with its one-line report, and "reached" on stdout means
 * the foreign pointer was accepted. clean: two threads, each mixing
 * mallocx/rallocx/sallocx/sdallocx pairs with malloc/realloc/free pairs
 * of SIZE and around it, contents checked; must print "clean", exit 0.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JM_ZERO 0x40	/* MALLOCX_ZERO */
#define JM_ALIGN64 6	/* MALLOCX_LG_ALIGN(6) */
#define ROUNDS 1000

void *mallocx(size_t size, int flags);
void *rallocx(void *ptr, size_t size, int flags);
size_t sallocx(const void *ptr, int flags);
void sdallocx(void *ptr, size_t size, int flags);

/* Keeps the pointers out of the compiler's sight. */
static void *volatile stash;
static size_t size;

static int check(const unsigned char *p, size_t n, unsigned char v)
{
	size_t i;

	for (i = 0; i < n; i += 61)
		if (p[i] != v)
			return 1;
	return n && p[n - 1] != v;
}

static void *mix(void *arg)
{
	unsigned long seed = (unsigned long)arg;
	int r, bad = 0;

	for (r = 0; r < ROUNDS && !bad; r++) {
		size_t n = size / 2 + (seed = seed * 6364136223846793005UL + 1) % (size + 1);
		int flags = (r & 1) ? JM_ZERO : JM_ALIGN64;
		unsigned char *j = mallocx(n, flags);
		unsigned char *h = malloc(n);

		if (!j || !h)
			return (void *)1;
		if (flags == JM_ZERO)
			bad |= check(j, n, 0);
		else
			bad |= ((unsigned long)j & 63) != 0;
		bad |= sallocx(j, 0) < n;
		memset(j, 0x11, n);
		memset(h, 0x22, n);
		j = rallocx(j, n * 2 + 1, 0);
		h = realloc(h, n * 2 + 1);
		if (!j || !h)
			return (void *)1;
		bad |= check(j, n, 0x11) | check(h, n, 0x22);
		sdallocx(j, n * 2 + 1, 0);
		free(h);
	}
	return (void *)(long)bad;
}

int main(int argc, char **argv)
{
	void *res[2];
	pthread_t t[2];
	long i;

	if (argc < 3)
		return 2;
	size = strtoul(argv[2], NULL, 0);
	if (!strcmp(argv[1], "clean")) {
		for (i = 0; i < 2; i++)
			if (pthread_create(&t[i], NULL, mix, (void *)(i + 28)))
				return 3;
		for (i = 0; i < 2; i++)
			pthread_join(t[i], &res[i]);
		if (res[0] || res[1])
			return 1;
		printf("clean\n");
		return 0;
	}
	stash = mallocx(size, 0);
	if (!stash)
		return 3;
	memset(stash, 0x5a, size);
	if (!strcmp(argv[1], "free"))
		free(stash);
	else if (!strcmp(argv[1], "realloc"))
		stash = realloc(stash, size * 2);
	else if (!strcmp(argv[1], "usable"))
		printf("usable %zu\n", malloc_usable_size(stash));
	else
		return 2;
	printf("reached\n");
	return 0;
}
