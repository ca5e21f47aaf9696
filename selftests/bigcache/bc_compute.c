// SPDX-License-Identifier: MIT
/*
 * A program that computes between its calls is not idle (lib/purge.c's
 * idle rule), without the background purge thread: selftests/lib/
 * compute_gap.h. runner: long (it computes and sleeps through its rounds,
 * about 5 s; started first)
 */
#include "compute_gap.h"

int main(int argc, char **argv)
{
	(void)argc;
	return compute_gap_main(argv, false);
}
