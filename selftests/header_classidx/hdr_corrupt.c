// SPDX-License-Identifier: MIT
/*
 * hdr_corrupt: a block header the program wrote over (a write before its
 * block) is caught, not trusted: free, realloc and malloc_usable_size
 * abort() with one line, whatever the fail-fast level (0 here, where
 * that box is built: the check is the core's).
 *
 * Before (rv27): the class byte was taken as it stood. A 48-byte block
 * whose byte said the 1 KiB class went into that class's bin, and the
 * next malloc(1000) returned it (950 bytes of overflow into its
 * neighbours); a smaller class or 255 served it as a 16..224-byte block;
 * an owner byte naming the freeing thread cached another heap's block in
 * that thread's bins; an aligned block's forged slot class or distance
 * cached a slot of another class or an address that is no block. Each
 * scenario exited 0.
 *
 * Each runs in a child (selftests/lib/child.h); a last one frees clean
 * aligned and plain blocks across threads and must exit 0, silent.
 */
#include <stdint.h>
#include <string.h>
#include <malloc.h>
#include <pthread.h>
#include "tap.h"
#include "child.h"
#include "size_class.h"
#include "tcache.h"
#include "boxes/failfast/failfast.h"
#include "boxes/header_classidx/header.h"

static void *launder(void *p)
{
	__asm__ __volatile__("" : "+r"(p) :: "memory");
	return p;
}

static void ff_off(void)
{
#if IS_ENABLED(CONFIG_HAK_FAILFAST)
	__hak_ff_level = 0;
#endif
}

/* malloc(48), its class byte set to v, freed; then what a malloc(n) serves. */
static void class_byte(unsigned v, size_t n)
{
	unsigned char *p = launder(malloc(48)), *q;
	unsigned i;

	ff_off();
	p[-1] = (unsigned char)v;
	free(launder(p));
	for (i = 0; i < 4000; i++) {
		q = malloc(n);
		if (q == p) {
			fprintf(stderr, "malloc(%zu) served the 48-byte block\n", n);
			break;
		}
	}
}

static void do_class_bigger(void *arg)
{
	(void)arg;
	class_byte(__hak_class_of(1000), 1000);
}

static void do_class_smaller(void *arg)
{
	(void)arg;
	class_byte(0, 8);
}

static void do_class_255(void *arg)
{
	(void)arg;
	class_byte(255, 8);
}

static void do_class_realloc(void *arg)
{
	unsigned char *p = launder(malloc(48));

	(void)arg;
	ff_off();
	p[-1] = (unsigned char)__hak_class_of(1000);
	p = realloc(launder(p), 900);	/* in place, the byte trusted */
	if (p)
		memset(p, 0x41, 900);
}

static void do_class_usable(void *arg)
{
	unsigned char *p = launder(malloc(48));

	(void)arg;
	ff_off();
	p[-1] = (unsigned char)__hak_class_of(1000);
	fprintf(stderr, "usable %zu\n", malloc_usable_size(launder(p)));
}

/* The thread frees the main thread's block with the thread's own tag in it. */
static void *owner_thread(void *arg)
{
	unsigned char *p = launder(arg);

	free(malloc(48));		/* a heap of its own */
	p[-4] = __hak_tc.tag;
	free(launder(p));
	free(malloc(48));
	return NULL;
}

static void do_owner_byte(void *arg)
{
	pthread_t t;

	(void)arg;
	ff_off();
	if (pthread_create(&t, NULL, owner_thread, launder(malloc(48))) == 0)
		pthread_join(t, NULL);
}

static void do_slot_class(void *arg)
{
	unsigned char *p = launder(aligned_alloc(256, 16));

	(void)arg;
	ff_off();
	hak_hdr_of(p)->slot_class = (uint8_t)__hak_class_of(2000);
	free(launder(p));
	p = malloc(2000);
	if (p)
		memset(p, 0x41, 2000);
}

static void do_slot_delta(void *arg)
{
	unsigned char *p = launder(aligned_alloc(256, 16));

	(void)arg;
	ff_off();
	hak_hdr_of(p)->delta++;
	free(launder(p));
}

static void *clean_thread(void *arg)
{
	void **v = arg;
	unsigned i;

	for (i = 0; i < 256; i++)
		free(v[i]);
	return NULL;
}

static void do_clean(void *arg)
{
	static void *v[256];
	pthread_t t;
	unsigned r, i;

	(void)arg;
	ff_off();
	for (r = 0; r < 20; r++) {
		for (i = 0; i < 256; i++) {
			v[i] = i & 1 ? aligned_alloc((size_t)32 << (i % 6), 1 + i % 200) :
				       malloc(1 + (i * 37) % 2000);
			if (v[i] && (i & 1))
				(void)malloc_usable_size(v[i]);
		}
		if (r & 1) {
			for (i = 0; i < 256; i++)
				free(v[i]);
		} else if (pthread_create(&t, NULL, clean_thread, v) == 0) {
			pthread_join(t, NULL);
		}
	}
}

static const struct {
	const char *name;
	void (*run)(void *);
} scenarios[] = {
	{ "class byte of a larger class", do_class_bigger },
	{ "class byte of a smaller class", do_class_smaller },
	{ "class byte 255", do_class_255 },
	{ "realloc with a forged class byte", do_class_realloc },
	{ "usable size with a forged class byte", do_class_usable },
	{ "owner byte of the freeing thread", do_owner_byte },
	{ "aligned block with a forged slot class", do_slot_class },
	{ "aligned block with a forged slot distance", do_slot_delta },
};

int main(void)
{
	struct child_result r;
	unsigned i;

	tap_plan(ARRAY_SIZE(scenarios) + 1);
	for (i = 0; i < ARRAY_SIZE(scenarios); i++) {
		child_run(scenarios[i].run, NULL, &r);
		tap_ok(child_aborted(&r) && child_err_lines(&r) == 1 &&
		       strstr(r.err, "hakmem: "), "%s: caught", scenarios[i].name);
		if (r.err[0])
			tap_diag("%.*s", (int)strcspn(r.err, "\n"), r.err);
		else
			tap_diag("status 0x%x, nothing on stderr", r.status);
	}
	child_run(do_clean, NULL, &r);
	tap_ok(child_exited_ok(&r) && !r.err[0], "clean aligned and plain frees, across threads");
	if (r.err[0])
		tap_diag("%.*s", (int)strcspn(r.err, "\n"), r.err);
	tap_finish();
}
