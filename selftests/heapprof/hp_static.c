// SPDX-License-Identifier: MIT
/*
 * hp_static: a program linked with -static (this one, without
 * -Wl,--eh-frame-hdr) has no .eh_frame_hdr, which the profiler's DWARF
 * walk needs: its stacks read [unknown]. The profiler says so, once, at
 * its first sample. Before (rv27) the profile was all [unknown] and
 * nothing said why.
 *
 * (clang passes --eh-frame-hdr to -static links as well: then no line.)
 *
 * The child runs this program again with HAKMEM_PROF=1 and a sample for
 * every byte; the profile goes to a directory of its own, removed after.
 */
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tap.h"
#include "child.h"

static int child_main(void)
{
	unsigned i;

	for (i = 0; i < 100; i++) {
		void *volatile p = malloc(64 + i);

		free(p);
	}
	return 0;
}

static int phdr_one(struct dl_phdr_info *info, size_t size, void *arg)
{
	int i;

	(void)size;
	for (i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME)
			*(int *)arg = 1;
	return 1;	/* the program only, the first */
}

/* Whether this program was linked with an .eh_frame_hdr. */
static int has_eh_frame_hdr(void)
{
	int has = 0;

	dl_iterate_phdr(phdr_one, &has);
	return has;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/hp_static.XXXXXX", out[64];
	char *env[] = { "HP_STATIC_CHILD", "1", "HAKMEM_PROF", "1", "HAKMEM_PROF_SAMPLE", "1",
			"HAKMEM_PROF_OUT", out, NULL };
	struct child_result r;
	int lines;

	(void)argc;
	if (getenv("HP_STATIC_CHILD"))
		return child_main();
	tap_plan(2);
	if (!mkdtemp(dir))
		tap_bail("no directory of its own");
	snprintf(out, sizeof(out), "%s/prof", dir);
	child_exec(NULL, argv, env, NULL, &r);
	lines = child_err_lines(&r);
	tap_ok(child_exited_ok(&r), "a -static program profiles and exits (status 0x%x)", r.status);
	if (has_eh_frame_hdr())		/* clang passes --eh-frame-hdr to -static links too */
		tap_ok(lines == 0, "with an .eh_frame_hdr (clang's link), no line (%d lines)", lines);
	else
		tap_ok(lines == 1 && strstr(r.err, ".eh_frame_hdr"),
		       "one line says its frames will read [unknown] (%d lines)", lines);
	if (*r.err)
		tap_diag("%.*s", (int)strcspn(r.err, "\n"), r.err);
	dir_remove(dir);
	tap_finish();
}
