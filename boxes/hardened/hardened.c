// SPDX-License-Identifier: MIT
/*
 * The hardened box: the per-process secret of the link encoding, the
 * report of a bad link, and the random carve order (a shuffle of each
 * batch of blocks cut from a slab).
 *
 * The secret is set once, by the first heap attach (before any free-list
 * link exists; a link is only ever written by a thread with a heap), with
 * a compare-and-swap so that racing first attaches agree. It comes from
 * getrandom(), or when that fails (very early boot, seccomp) from the
 * clock, the pid and addresses (ASLR). fork keeps it: the child's links
 * are the parent's.
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <asm/atomic.h>
#include "box.h"
#include "boxes/hardened/hardened.h"

uintptr_t __hak_hd_secret;
static uint64_t carve_state;		/* xorshift state, racy by design */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

void hak_hd_init(void)
{
	uint64_t v[2] = { 0, 0 };
	struct timespec ts;

	if (arch_load_relaxed(&__hak_hd_secret))
		return;
	if (getrandom(v, sizeof(v), GRND_NONBLOCK) != sizeof(v)) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v[0] = mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
			   (uint64_t)getpid() ^ (uint64_t)(uintptr_t)&ts);
		v[1] = mix(v[0] ^ (uint64_t)(uintptr_t)&__hak_hd_secret);
	}
	/* never 0, the "not set" value */
	v[0] |= 1;
	arch_cmpxchg(&__hak_hd_secret, (uintptr_t)0, (uintptr_t)v[0]);
	arch_cmpxchg(&carve_state, (uint64_t)0, v[1] | 1);
}

void hak_hd_bad_link(const void *where, uintptr_t v)
{
	__hak_report("corrupted free-list link in the free block at %p (stored %#lx): "
		     "overflow or write after free", where, (unsigned long)v);
	abort();
}

/* Fisher-Yates over 0..n-1 with a xorshift generator (not for secrets). */
void hak_hd_shuffle(uint16_t *idx, uint32_t n)
{
	uint64_t x = arch_load_relaxed(&carve_state);
	uint32_t i;

	for (i = 0; i < n; i++)
		idx[i] = (uint16_t)i;
	for (i = n; i > 1; i--) {
		uint32_t j;
		uint16_t t;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		j = (uint32_t)((x >> 16) % i);
		t = idx[i - 1];
		idx[i - 1] = idx[j];
		idx[j] = t;
	}
	arch_store_relaxed(&carve_state, x);
}
