// SPDX-License-Identifier: MIT
/* A thread whose last free comes from glibc's own thread-exit clean-up
 * (__libc_thread_freeres: strerror's buffer for an unknown errno), after
 * every pthread key destructor ran. Counts heaps via hak_stats_get. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <hakmem/hakmem.h>

__attribute__((weak)) void hak_stats_get(struct hak_stats *st);

static void *worker(void *arg)
{
	void *p = malloc(64);
	free(p);
	(void)arg;
	/* glibc keeps the message of an unknown errno in a malloc'd TLS buffer */
	if (!strstr(strerror(12345), "12345"))
		abort();
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	struct hak_stats st;

	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, NULL) || pthread_join(t, NULL))
			abort();
	}
	if (!hak_stats_get) {
		puts("not hakmem");
		return 0;
	}
	memset(&st, 0, sizeof(st));
	hak_stats_get(&st);
	printf("threads %d heaps %zu mapped %zu small_in_use %zu\n", n, (size_t)st.heaps,
	       (size_t)st.mapped_bytes, (size_t)st.small_in_use);
	return st.heaps > 8;
}
