// SPDX-License-Identifier: MIT
/*
 * old_names: the allocation names glibc exports besides the usual ones,
 * which a program can still reach.
 *
 *   old_names names        where the dynamic linker finds mallopt,
 *                          __libc_mallopt, __libc_mallinfo, and where it
 *                          bound this program's cfree@GLIBC_2.2.5 (one
 *                          line each: name, file)
 *   old_names mallopt      mallopt's answers (compared with glibc's)
 *   old_names cfree SIZE   a SIZE-byte block freed with cfree, as a
 *                          program linked before glibc 2.26 does (cfree is
 *                          a compatibility symbol since then): "clean"
 *   old_names cfree-twice  a 64-byte block freed twice with cfree
 *
 * cfree is bound through its old version, GLIBC_2.2.5 (x86_64) or
 * GLIBC_2.17 (aarch64), so the program is such an old binary.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
# define OLD_VERSION	"GLIBC_2.2.5"
#elif defined(__aarch64__)
# define OLD_VERSION	"GLIBC_2.17"
#else
# error "old_names: no glibc base version known for this architecture"
#endif

void cfree(void *p);
__asm__(".symver cfree,cfree@" OLD_VERSION);

static void *volatile stash;

static void where(const char *name, void *sym)
{
	Dl_info di;
	const char *file = "(none)";

	if (sym && dladdr(sym, &di) && di.dli_fname) {
		file = strrchr(di.dli_fname, '/');
		file = file ? file + 1 : di.dli_fname;
	}
	printf("%s %s\n", name, file);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	if (!strcmp(argv[1], "names")) {
		where("mallopt", dlsym(RTLD_DEFAULT, "mallopt"));
		where("__libc_mallopt", dlsym(RTLD_DEFAULT, "__libc_mallopt"));
		where("__libc_mallinfo", dlsym(RTLD_DEFAULT, "__libc_mallinfo"));
		/* the program's own reference (dlvsym wants the version itself) */
		where("cfree", (void *)cfree);
		return 0;
	}
	if (!strcmp(argv[1], "mallopt")) {
		static const int mx[] = { -1, 0, 64, 160, 161, 1000 };
		unsigned i;

		for (i = 0; i < sizeof(mx) / sizeof(mx[0]); i++)
			printf("M_MXFAST %d: %d\n", mx[i], mallopt(M_MXFAST, mx[i]));
		printf("M_MMAP_THRESHOLD: %d\n", mallopt(M_MMAP_THRESHOLD, 1 << 20));
		printf("M_TRIM_THRESHOLD: %d\n", mallopt(M_TRIM_THRESHOLD, -1));
		printf("M_ARENA_MAX: %d\n", mallopt(M_ARENA_MAX, 1));
		printf("M_PERTURB: %d\n", mallopt(M_PERTURB, 0x5a));
		printf("unknown: %d\n", mallopt(12345, 1));
		return 0;
	}
	if (!strcmp(argv[1], "cfree") && argc > 2) {
		stash = malloc(strtoul(argv[2], NULL, 0));
		memset(stash, 1, 16);
		cfree(stash);
		stash = malloc(64);
		free(stash);
		puts("clean");
		return 0;
	}
	if (!strcmp(argv[1], "cfree-twice")) {
		stash = malloc(64);
		cfree(stash);
		cfree(stash);
		puts("reached");
		return 0;
	}
	return 2;
}
