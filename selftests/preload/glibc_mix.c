// SPDX-License-Identifier: MIT
/*
 * glibc_mix: a program that takes blocks from the C library's own malloc
 * (looked up in libc.so.6 itself, as a program or library that binds to
 * libc directly would) and hands them to the interposed allocator.
 *
 *   glibc_mix OP SIZE
 *
 * OP: free, realloc, usable (malloc_usable_size), calloc (glibc's calloc,
 * then free), clean (glibc's block back to glibc's free, and hakmem's own
 * blocks to hakmem: must exit 0). Prints "reached" on stdout only when the
 * foreign pointer was accepted, so the script can tell a silent fallback
 * from the fail-fast abort.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps the pointers out of the compiler's sight. */
static void *volatile stash;

int main(int argc, char **argv)
{
	void *libc, *mine;
	void *(*libc_malloc)(size_t);
	void *(*libc_calloc)(size_t, size_t);
	void (*libc_free)(void *);
	size_t n;

	if (argc < 3)
		return 2;
	n = strtoul(argv[2], NULL, 0);
	libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	if (!libc)
		return 3;
	libc_malloc = (void *(*)(size_t))dlsym(libc, "malloc");
	libc_calloc = (void *(*)(size_t, size_t))dlsym(libc, "calloc");
	libc_free = (void (*)(void *))dlsym(libc, "free");
	if (!libc_malloc || !libc_calloc || !libc_free)
		return 3;
	/* the lookup must give libc's allocator, not the interposed one */
	if ((void *)libc_malloc == (void *)malloc)
		return 5;
	stash = libc_malloc(n);
	if (!stash)
		return 3;
	memset(stash, 0x5a, n);
	if (!strcmp(argv[1], "free")) {
		free(stash);
	} else if (!strcmp(argv[1], "realloc")) {
		stash = realloc(stash, n * 2);
	} else if (!strcmp(argv[1], "usable")) {
		printf("usable %zu\n", malloc_usable_size(stash));
	} else if (!strcmp(argv[1], "calloc")) {
		libc_free(stash);
		stash = libc_calloc(1, n);
		free(stash);
	} else if (!strcmp(argv[1], "clean")) {
		libc_free(stash);
		mine = malloc(n);
		memset(mine, 0xa5, n);
		stash = realloc(mine, n + 100);
		free(stash);
		printf("clean\n");
		return 0;
	} else {
		return 2;
	}
	printf("reached\n");
	return 0;
}
