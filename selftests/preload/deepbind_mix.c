// SPDX-License-Identifier: MIT
/*
 * deepbind_mix: a program that loads deepbind_plug.so (from its own folder)
 * with RTLD_DEEPBIND, so that the plugin's malloc and free are the C
 * library's while the program's are the preloaded allocator's.
 *
 *   deepbind_mix OP SIZE
 *
 * OP: free, realloc, usable: a SIZE-byte block from the plugin's malloc
 * handed to the program's free, realloc or malloc_usable_size; prints
 * "reached" only when that foreign pointer was accepted. clean: each block
 * goes back to the family that made it (the plugin's malloc to the
 * plugin's free, the program's to the program's, and the plugin's strdup,
 * which the C library serves with the interposed malloc, to the program's
 * free); must exit 0 and print "clean".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libgen.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps the pointers out of the compiler's sight. */
static void *volatile stash;

int main(int argc, char **argv)
{
	void *(*plug_malloc)(size_t);
	void (*plug_free)(void *);
	char *(*plug_strdup)(const char *);
	char path[4096], self[4096];
	void *h;
	size_t n;
	int i;

	if (argc < 3)
		return 2;
	n = strtoul(argv[2], NULL, 0);
	snprintf(self, sizeof(self), "%s", argv[0]);
	snprintf(path, sizeof(path), "%s/deepbind_plug.so", dirname(self));
	h = dlopen(path, RTLD_LAZY | RTLD_GLOBAL | RTLD_DEEPBIND);
	if (!h) {
		fprintf(stderr, "dlopen: %s\n", dlerror());
		return 3;
	}
	plug_malloc = (void *(*)(size_t))dlsym(h, "plug_malloc");
	plug_free = (void (*)(void *))dlsym(h, "plug_free");
	plug_strdup = (char *(*)(const char *))dlsym(h, "plug_strdup");
	if (!plug_malloc || !plug_free || !plug_strdup)
		return 3;

	if (!strcmp(argv[1], "clean")) {
		for (i = 0; i < 1000; i++) {
			char *a = plug_malloc(n), *b = malloc(n), *c;

			if (!a || !b)
				return 1;
			memset(b, 0x33, n);
			c = plug_strdup("a string the C library copies");
			if (!c || a[n - 1] != 0x5a || b[n - 1] != 0x33)
				return 1;
			plug_free(a);
			free(b);
			free(c);
		}
		puts("clean");
		return 0;
	}

	stash = plug_malloc(n);
	if (!stash)
		return 1;
	if (!strcmp(argv[1], "free"))
		free(stash);
	else if (!strcmp(argv[1], "realloc"))
		stash = realloc(stash, n * 2);
	else if (!strcmp(argv[1], "usable"))
		printf("usable %zu\n", malloc_usable_size(stash));
	else
		return 2;
	puts("reached");
	return 0;
}
