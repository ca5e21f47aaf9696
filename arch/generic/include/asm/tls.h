/* SPDX-License-Identifier: MIT */
/*
 * Access to a TLS variable (generic): plain pointers. The x86_64 version
 * addresses it relative to the thread pointer instead (asm/tls.h there).
 */
#ifndef HAK_ASM_GENERIC_TLS_H
#define HAK_ASM_GENERIC_TLS_H

#include <stdint.h>

#define ARCH_TLS_SEG
#define arch_tls_off(sym)	((uintptr_t)&(sym))

/* *p -= n; true when that borrowed (n > old *p). */
static inline int arch_tls_sub_borrows(unsigned long *p, unsigned long n)
{
	unsigned long old = *p;

	*p = old - n;
	return n > old;
}

/*
 * *x ^= (the byte at base + disp) << 8 on bits 8..15; true when those
 * bits are not zero after.
 */
#define arch_tls_xor_byte1_ne(x, base, disp) ({				\
	*(x) ^= (uintptr_t)*(const uint8_t *)((base) + (disp)) << 8;	\
	(*(x) & 0xff00) != 0;						\
})

/* (a & *m) != 0 for a word *m in TLS. */
#define arch_tls_test_ne(a, m)	(((a) & *(m)) != 0)

/* A register hint for the x86_64 fast paths; nothing here. */
#define arch_tls_ix_reg(x)	((void)0)
#define arch_tls_ix_reg_free(x)	((void)0)

#endif /* HAK_ASM_GENERIC_TLS_H */
