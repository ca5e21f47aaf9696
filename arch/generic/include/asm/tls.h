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

/* A register hint for the x86_64 fast paths; nothing here. */
#define arch_tls_ix_reg(x)	((void)0)

#endif /* HAK_ASM_GENERIC_TLS_H */
