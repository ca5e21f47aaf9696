// SPDX-License-Identifier: MIT
/*
 * bgp_bigtls: a program with 128 KiB of __thread data gets its purge
 * thread (HAKMEM_BACKGROUND_PURGE=1), silently.
 *
 * glibc carves the static TLS out of each new thread's stack and refuses
 * (EINVAL) a stack too small for it; the purge thread asked for 64 KiB,
 * so before (rv27) such a program had none, and nothing said so.
 *
 * The child runs this program again with the option set (read at the
 * first malloc) and reports what the statistics say.
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

static __thread char big_tls[128 << 10];

static int child_main(void)
{
	struct hak_bgpurge_stats st;
	unsigned i;

	big_tls[1] = 1;
	for (i = 0; i < 200; i++) {
		void *volatile p = malloc(1 << 20);

		free(p);
	}
	hak_bgpurge_stats(&st);
	return st.running && st.starts == 1 && big_tls[1] == 1 ? 0 : 3;
}

int main(int argc, char **argv)
{
	char *env[] = { "BGP_BIGTLS_CHILD", "1", "HAKMEM_BACKGROUND_PURGE", "1", NULL };
	struct child_result r;

	(void)argc;
	if (getenv("BGP_BIGTLS_CHILD"))
		return child_main();
	tap_plan(2);
	child_exec(NULL, argv, env, NULL, &r);
	tap_ok(child_exited_ok(&r),
	       "128 KiB of __thread data: the purge thread runs, started once (status 0x%x)", r.status);
	tap_ok(!*r.err, "nothing on stderr");
	if (*r.err)
		tap_diag("%.*s", (int)strcspn(r.err, "\n"), r.err);
	tap_finish();
}
