// SPDX-License-Identifier: MIT
/*
 * carve_page: a refill of a class of 4 KiB blocks or more carves one block,
 * not half the bin (lib/heap.c, refill_want). Each carved block is a page
 * made resident (the carve writes its link and header), so a thread that
 * asked for one block of each of the 13 page classes (4-32 KiB) faulted in
 * about 4 pages of each: 106 page faults where glibc takes 15, and
 * glibc-thread at 32 threads peaked at 19.3 MB against 13.0 with one.
 *
 * In a fresh thread, after a first small malloc (its heap attached), one
 * malloc of each page class may fault at most 3 pages per class: 13 under
 * defconfig and hardened_defconfig, 26 under perf_defconfig (its first
 * page-class malloc faults 15, metadata), glibc 14; 104-123 before.
 */
#include <pthread.h>
#include "class_faults.h"

static const size_t class_sz[] = {
	4096, 5120, 6144, 7168, 8192, 10240, 12288, 14336,
	16384, 20480, 24576, 28672, 32768,
};
#define NCLS	(sizeof(class_sz) / sizeof(class_sz[0]))

static long faults;

static void *run(void *arg)
{
	/* 64 B under the class size: the class itself with or without a header */
	faults = class_faults(class_sz, NCLS, 64);
	return arg;
}

int main(void)
{
	pthread_t t;

	tap_plan(1);
	if (pthread_create(&t, NULL, run, NULL) || pthread_join(t, NULL))
		tap_bail("pthread_create");
	tap_ok(faults <= 3 * (long)NCLS,
	       "one block of each of %zu page classes: %ld page faults (at most %zu)",
	       NCLS, faults, 3 * NCLS);
	tap_finish();
}
