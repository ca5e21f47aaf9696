// SPDX-License-Identifier: MIT
/*
 * deepbind_plug: the plugin that deepbind_mix loads with RTLD_DEEPBIND, as
 * PHP loads its extensions. Its own calls to malloc and free bind to the C
 * library's (the plugin's dependencies come before the global scope, and
 * so before the preload); its calls into the C library (strdup) allocate
 * with whatever malloc the C library's own references were bound to.
 */
#include <stdlib.h>
#include <string.h>

void *plug_malloc(size_t n)
{
	void *p = malloc(n);

	if (p)
		memset(p, 0x5a, n);
	return p;
}

void plug_free(void *p)
{
	free(p);
}

char *plug_strdup(const char *s)
{
	return strdup(s);
}
