// SPDX-License-Identifier: MIT
/*
 * hd_interposer: the hardened box asks the kernel for its secret, never a
 * getrandom interposer in the process (libfaketime, which exports one for
 * FAKERANDOM_SEED). This program defines getrandom (it links libhakmem.a,
 * so the library's call would bind to it, as to a preloaded one) the way
 * libfaketime's behaves before its initialiser ran: it mallocs (dlsym's
 * error path). Before the fix the first malloc came here from inside the
 * heap attach that sets the secret, and with libfaketime every process of
 * the hardened build overflowed its stack at its first malloc.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include "tap.h"
#include "boxes/hardened/hardened.h"

static unsigned long calls;	/* atomic: calls of this getrandom */

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
	unsigned char *b = buf;

	(void)flags;
	__atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
	free(malloc(78));
	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(i * 37 + 11);
	return (ssize_t)len;
}

int main(void)
{
	void *volatile p = malloc(64);

	tap_plan(2);
	tap_ok(p && __hak_hd_secret, "the first malloc returns with the secret set (%#lx)",
	       (unsigned long)__hak_hd_secret);
	free(p);
	tap_ok(!__atomic_load_n(&calls, __ATOMIC_RELAXED),
	       "the library never called the program's getrandom (%lu calls)",
	       __atomic_load_n(&calls, __ATOMIC_RELAXED));
	tap_finish();
}
