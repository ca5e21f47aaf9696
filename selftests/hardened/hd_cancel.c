// SPDX-License-Identifier: MIT
/*
 * hd_cancel: the process's first heap attach sets the link secret from
 * getrandom() (boxes/hardened/hardened.c, hak_hd_init), which glibc makes
 * a cancellation point; malloc is not one. A thread whose first malloc
 * was the process's, made with a cancel pending (deferred: only pending),
 * was unwound out of malloc there (rv25, Documentation/reliability.md,
 * "Many-thread paths reviewed").
 *
 * A program's first malloc is its main thread's in practice (even here:
 * pthread_create allocates), so the check calls hak_hd_init in a thread
 * with a cancel pending, the secret cleared around the call and put back
 * by a clean-up handler (no other thread allocates meanwhile: main waits
 * in pthread_join). The call must return and set a secret.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include "tap.h"
#include "boxes/hardened/hardened.h"

static uintptr_t saved, got;

static void put_back(void *arg)
{
	(void)arg;
	__atomic_store_n(&__hak_hd_secret, saved, __ATOMIC_RELAXED);
}

static void *set_secret(void *arg)
{
	(void)arg;
	pthread_cancel(pthread_self());	/* loads the unwinder: allocates */
	saved = __atomic_load_n(&__hak_hd_secret, __ATOMIC_RELAXED);
	pthread_cleanup_push(put_back, NULL);
	__atomic_store_n(&__hak_hd_secret, 0, __ATOMIC_RELAXED);
	hak_hd_init();
	got = __atomic_load_n(&__hak_hd_secret, __ATOMIC_RELAXED);
	pthread_cleanup_pop(1);
	return (void *)1;
}

int main(void)
{
	pthread_t t;
	void *rv = NULL;

	tap_plan(2);
	free(malloc(64));	/* the real first attach: the secret is set */
	if (pthread_create(&t, NULL, set_secret, NULL) || pthread_join(t, &rv))
		tap_bail("pthread_create/join failed");
	tap_ok(rv != PTHREAD_CANCELED,
	       "setting the secret with a cancel pending returns (%s)",
	       rv == PTHREAD_CANCELED ? "cancelled" : "returned");
	tap_ok(got & 1, "and sets a secret");
	tap_finish();
}
