// SPDX-License-Identifier: MIT
/*
 * bgp_tlsfit: the purge thread has room for its passes whatever the size
 * of the program's static TLS (HAKMEM_BACKGROUND_PURGE=1). runner: long
 *
 * glibc carves the static TLS (every initial-exec variable of the program
 * and its libraries, plus a surplus that glibc.rtld.optional_static_tls
 * raises) out of a new thread's stack, and refuses only a stack that
 * leaves less than 2 KiB (MINIMAL_REST_STACK) beside it. The purge thread
 * asked for 64 KiB until 2026-12-06: with 59-62 KiB of static TLS it got a
 * few KiB of stack, and its first pass over an idle heap ran off the end
 * into the guard page: the whole program died of SIGSEGV (rv30). It has
 * the default size now. bgp_bigtls covers a TLS larger than that old
 * stack (EINVAL then).
 *
 * The static TLS is set here with the tunable, which adds to it: the child
 * (this program again, with the option, a 10 ms purge delay and the
 * tunable) has a thread free most of 50,000 small blocks, some mid-size
 * and large ones, and then sleep with its heap attached, so the purge
 * thread's passes scan that heap and purge; it waits until a pass purged
 * something. Each size of a sweep in 1 KiB steps across those that leave
 * 0-15 KiB of a 64 KiB stack (or make it too small) must exit 0: on main
 * three of them died (50, 51 and 52 KiB more).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tap.h"
#include "child.h"
#include "init.h"
#include "boxes/background_purge/bgpurge.h"

#define NB	50000
static void *blk[NB];
static volatile int stop;

static void *worker(void *arg)
{
	unsigned i;

	(void)arg;
	for (i = 0; i < NB; i++) {
		blk[i] = malloc(16 + (i % 50) * 16);
		if (!blk[i])
			exit(5);
		memset(blk[i], 1, 16);
	}
	for (i = 0; i < NB; i++)
		if (i % 37) {
			free(blk[i]);
			blk[i] = NULL;
		}
	for (i = 0; i < 100; i++) {
		void *volatile p = malloc(40000 + i * 1000);

		free(p);
	}
	for (i = 0; i < 16; i++) {
		char *volatile p = malloc((size_t)(1 + i % 8) << 20);

		if (p)
			p[0] = 1;
		free(p);
	}
	while (!stop)
		usleep(5000);	/* idle, its heap attached: the passes scan it */
	return NULL;
}

/*
 * 0: the thread ran passes (until one purged, 5 s at most: a purge is
 * what runs deepest); 2: no thread; 3: no pass at all.
 */
static int child_main(void)
{
	struct hak_bgpurge_stats st;
	pthread_t t;
	unsigned i;

	if (pthread_create(&t, NULL, worker, NULL))
		return 4;
	for (i = 0; i < 500; i++) {
		usleep(10000);
		hak_bgpurge_stats(&st);
		if (st.purged_bytes && st.passes >= 3)
			break;
	}
	stop = 1;
	pthread_join(t, NULL);
	if (!st.running)
		return 2;
	return st.passes ? 0 : 3;
}

int main(int argc, char **argv)
{
	char *env[] = { "BGP_TLSFIT_CHILD", "1", "HAKMEM_BACKGROUND_PURGE", "1",
			"HAKMEM_PURGE_DELAY_MS", "10", "GLIBC_TUNABLES", NULL, NULL };
	char tun[64];
	unsigned kib, bad = 0, runs = 0;

	(void)argc;
	if (getenv("BGP_TLSFIT_CHILD"))
		return child_main();
	tap_plan(1);
	env[7] = tun;
	for (kib = 40; kib <= 62; kib++) {
		struct child_result r;

		snprintf(tun, sizeof(tun), "glibc.rtld.optional_static_tls=%u", kib << 10);
		child_exec(NULL, argv, env, NULL, &r);
		runs++;
		if (!child_exited_ok(&r)) {
			bad++;
			tap_diag("%u KiB more static TLS: child %s %d", kib,
				 WIFSIGNALED(r.status) ? "signal" : "exit",
				 WIFSIGNALED(r.status) ? WTERMSIG(r.status) : WEXITSTATUS(r.status));
		}
	}
	tap_ok(!bad, "static TLS raised by 40..62 KiB: the purge thread's passes ran "
	       "in %u of %u children", runs - bad, runs);
	tap_finish();
}
