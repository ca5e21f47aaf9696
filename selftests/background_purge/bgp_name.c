// SPDX-License-Identifier: MIT
/*
 * bgp_name: the purge thread is named hakmem-purge without opening a file,
 * and the thread that started it keeps its own name.
 *
 * glibc's pthread_setname_np on another thread opens /proc/self/task/N/comm
 * (without O_CLOEXEC in 2.36: a concurrent fork and exec passed it on), so
 * a program at its descriptor limit had an unnamed purge thread. The child
 * runs this program again with HAKMEM_BACKGROUND_PURGE=1, names its main
 * thread, uses up its descriptors, starts the purge thread with large
 * mallocs, then frees two descriptors to read the threads' names.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include "tap.h"
#include "proc.h"
#include "child.h"
#include "init.h"
#include "boxes/background_purge/bgpurge.h"

enum { NAMED, NO_THREAD = 2, UNNAMED, CREATOR_RENAMED, EARLY, NO_LIMIT };

static int child_main(void)
{
	struct rlimit rl;
	struct hak_bgpurge_stats st;
	char own[16] = "";
	int fds[64], n = 0;

	prctl(PR_SET_NAME, "bgp-main", 0UL, 0UL, 0UL);
	hak_bgpurge_stats(&st);
	if (st.running)
		return EARLY;
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_max < 32)
		return NO_LIMIT;
	rl.rlim_cur = 32;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return NO_LIMIT;
	while (n < 64 && (fds[n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		n++;
	if (n < 2 || n == 64)
		return NO_LIMIT;
	for (unsigned i = 0; i < 20; i++) {
		void *volatile p = malloc(1 << 20);

		free(p);
	}
	close(fds[--n]);
	close(fds[--n]);
	hak_bgpurge_stats(&st);
	if (!st.running)
		return NO_THREAD;
	if (proc_threads_named("hakmem-purge", NULL) != 1)
		return UNNAMED;
	prctl(PR_GET_NAME, own, 0UL, 0UL, 0UL);
	return strcmp(own, "bgp-main") ? CREATOR_RENAMED : NAMED;
}

int main(int argc, char **argv)
{
	char *env[] = { "BGP_NAME_CHILD", "1", "HAKMEM_BACKGROUND_PURGE", "1", NULL };
	struct child_result r;
	int code;

	(void)argc;
	if (getenv("BGP_NAME_CHILD"))
		return child_main();
	tap_plan(1);
	child_exec(NULL, argv, env, NULL, &r);
	code = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
	if (code == EARLY)
		tap_skip_all("the purge thread started before the child's first line");
	if (code == NO_LIMIT)
		tap_skip_all("cannot lower RLIMIT_NOFILE to 32");
	tap_ok(code == NAMED,
	       "started with no descriptor free, the purge thread is named hakmem-purge "
	       "and its creator keeps its name (child status 0x%x: 2 no thread, 3 unnamed, "
	       "4 creator renamed)", r.status);
	tap_finish();
}
