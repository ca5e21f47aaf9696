/* SPDX-License-Identifier: MIT */
/*
 * Page faults of one malloc of each of a list of classes, in the calling
 * thread (carve_page, carve_start: start it in a new thread, so its heap
 * is fresh). A first malloc of 16 B attaches the heap outside the count;
 * each request is `under` bytes below its class size, so it is the class
 * itself with or without a header. getrusage(RUSAGE_THREAD) counts this
 * thread's faults only.
 */
#ifndef HAK_SELFTEST_CLASS_FAULTS_H
#define HAK_SELFTEST_CLASS_FAULTS_H

#include <stdlib.h>
#include "minflt.h"
#include "tap.h"

static inline long class_faults(const size_t *class_sz, size_t n, size_t under)
{
	void *p[64];
	size_t i;
	long f0;

	if (n > sizeof(p) / sizeof(p[0]))
		tap_bail("class_faults: %zu classes, at most 64", n);
	free(malloc(16));
	f0 = thread_minflt();
	for (i = 0; i < n; i++)
		if (!(p[i] = malloc(class_sz[i] - under)))
			tap_bail("malloc(%zu) failed", class_sz[i] - under);
	f0 = thread_minflt() - f0;
	for (i = 0; i < n; i++)
		free(p[i]);
	return f0;
}

#endif
