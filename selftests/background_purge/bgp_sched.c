// SPDX-License-Identifier: MIT
/*
 * bgp_sched: the purge thread runs at the default policy whatever the
 * thread whose slow path started it (HAKMEM_BACKGROUND_PURGE=1).
 *
 * pthread_create gives a new thread its creator's policy: a program whose
 * first allocator slow path came from a SCHED_FIFO thread (an audio or
 * control loop) had a SCHED_FIFO purge thread, whose passes (thousands of
 * madvise calls on a large idle heap) then preempted every default-policy
 * thread of the machine on its CPU (rv30). Which thread starts it is an
 * accident of timing, so its policy was one too.
 *
 * The child runs this program again with the option set, makes its main
 * thread SCHED_FIFO (skipped without the right to), starts the purge
 * thread with a large malloc and reads the policy of the thread named
 * hakmem-purge. runner: serial (a real-time thread, briefly).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tap.h"
#include "proc.h"
#include "child.h"
#include "init.h"
#include "boxes/background_purge/bgpurge.h"

/* 0: default policy; 1: the creator's; 2: no thread; 3: no SCHED_FIFO here. */
static int child_main(void)
{
	struct sched_param sp = { .sched_priority = 1 }, none = { 0 };
	struct hak_bgpurge_stats st;
	int policy;
	pid_t tid = 0;

	if (sched_setscheduler(0, SCHED_FIFO, &sp))
		return 3;
	for (unsigned i = 0; i < 20; i++) {
		void *volatile p = malloc(1 << 20);

		free(p);
	}
	sched_setscheduler(0, SCHED_OTHER, &none);
	hak_bgpurge_stats(&st);
	if (!st.running || proc_threads_named("hakmem-purge", &tid) != 1)
		return 2;
	policy = sched_getscheduler(tid);
	printf("# purge thread %d: policy %d\n", (int)tid, policy);
	return policy == SCHED_OTHER ? 0 : 1;
}

int main(int argc, char **argv)
{
	char *env[] = { "BGP_SCHED_CHILD", "1", "HAKMEM_BACKGROUND_PURGE", "1", NULL };
	struct child_result r;

	(void)argc;
	if (getenv("BGP_SCHED_CHILD"))
		return child_main();
	tap_plan(1);
	child_exec(NULL, argv, env, NULL, &r);
	if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3)
		tap_skip_all("no right to SCHED_FIFO");
	tap_ok(child_exited_ok(&r),
	       "started from a SCHED_FIFO thread, the purge thread runs at SCHED_OTHER "
	       "(child status 0x%x: 1 inherited, 2 no thread)", r.status);
	tap_finish();
}
