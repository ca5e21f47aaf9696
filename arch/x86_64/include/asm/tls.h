/* SPDX-License-Identifier: MIT */
/*
 * Thread-pointer-relative access to an initial-exec TLS variable on x86_64.
 *
 * GCC addresses an element of a TLS array by a variable index by adding
 * the thread pointer (%fs:0) to the variable's offset and indexing the sum:
 * two instructions the access does not need, since %fs can prefix any
 * address. ARCH_TLS_SEG names the %fs address space (GCC's __seg_fs), and
 * arch_tls_off(sym) is sym's offset from the thread pointer (the one GOT
 * load every initial-exec access makes anyway), so
 * (T ARCH_TLS_SEG *)(arch_tls_off(sym) + x) is sym's byte x in one operand.
 * sym must be declared tls_model("initial-exec"). sparse sees the generic
 * form (plain pointers).
 */
#ifndef HAK_ASM_X86_64_TLS_H
#define HAK_ASM_X86_64_TLS_H

#include <stdint.h>
#include <asm/processor.h>

/*
 * ASan and TSan would check a %fs-relative access at its offset as if it
 * were an address: they get the generic form too. GCC says so with
 * __SANITIZE_*__, clang 14 only through __has_feature.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HAK_TLS_SANITIZED	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define HAK_TLS_SANITIZED	1
#endif
#endif

#if defined(__SEG_FS) && !defined(__CHECKER__) && !defined(HAK_TLS_SANITIZED)

#define ARCH_TLS_SEG	__seg_fs

/*
 * The page map may sit at a fixed address (lib/superslab.h): not for
 * sanitizers, whose shadow memory is where it would go.
 */
#define ARCH_PM_FIXED	1

/*
 * Not volatile: every use in a function shares the one load. In %rdx, not
 * any register: malloc's pop returns the block in %rax, and GCC, left to
 * choose, put the offset there and spent a MOV on the result (the offset
 * stays live until the pop's last store; free has no preference).
 */
#define arch_tls_off(sym) ({						\
	uintptr_t __off;						\
	__asm__("movq " #sym "@gottpoff(%%rip), %0" : "=d"(__off));	\
	__off;								\
})

#ifdef __clang__
/*
 * clang (14) prints an "m" operand in the %fs address space without its
 * %fs: prefix, so an asm given such an operand reads and writes the
 * offset as an address (every malloc past the first size check crashed):
 * clang gets the C forms, whose %fs accesses it emits itself.
 */
static inline __attribute__((always_inline)) int
arch_tls_sub_borrows(unsigned long ARCH_TLS_SEG *p, unsigned long n)
{
	unsigned long old = *p;

	*p = old - n;
	return n > old;
}

#define arch_tls_test_ne(a, m)	(((a) & *(m)) != 0)
#else
/* *p -= n; true when that borrowed (n > old *p): SUB and JB. */
static inline __attribute__((always_inline)) int
arch_tls_sub_borrows(unsigned long ARCH_TLS_SEG *p, unsigned long n)
{
	/* *p an input, as in arch_sub_borrows (asm/processor.h) */
	__asm__ goto("subq %1, %0\n\tjb %l[borrow]" : : "m"(*p), "er"(n) : "cc" : borrow);
	return 0;
borrow:
	return 1;
}
#endif

/*
 * *x ^= (the byte at TLS offset base + disp) << 8, on bits 8..15 only;
 * true when those bits are not zero afterwards (byte 1 of *x was not that
 * byte). One XOR into the register's high byte (%ch, ...: x in a Q
 * register) and its flag, where the full-width XOR needed a CMP more to
 * test the byte: the free fast path's owner-tag check (lib/alloc.h). The
 * address is spelt out with base in a legacy register ("R"): a high-byte
 * register cannot be encoded next to %r8-%r15 (a REX prefix), which GCC
 * picks at -O0. The unused "m" operand tells GCC what the XOR reads.
 * Reading the whole register after writing its high byte costs a merge
 * uop on some Intel cores, no instruction.
 */
#define arch_tls_xor_byte1_ne(x, base, disp) ({				\
	int __ne;							\
	__asm__("xorb %%fs:%c3(%2), %h0"				\
		: "+Q"(*(x)), "=@ccnz"(__ne)				\
		: "R"(base), "i"(disp),					\
		  "m"(*(const uint8_t ARCH_TLS_SEG *)((base) + (disp))));	\
	__ne;								\
})

/*
 * (a & *m) != 0 for a word *m in TLS: one TEST with *m as its operand
 * (GCC copied a and used an AND for the 64-bit form: two instructions).
 */
#ifndef __clang__
#define arch_tls_test_ne(a, m) ({					\
	int __ne;							\
	__asm__("testq %1, %2" : "=@ccnz"(__ne) : "r"(a), "m"(*(m)));	\
	__ne;								\
})
#endif

#else

#define ARCH_TLS_SEG
#define arch_tls_off(sym)	((uintptr_t)&(sym))

/* A plain pointer: the ordinary SUB and JB (C for sparse). */
static inline __attribute__((always_inline)) int
arch_tls_sub_borrows(unsigned long *p, unsigned long n)
{
	return arch_sub_borrows(p, n);
}

/* The same in C (sparse, sanitizers). */
#define arch_tls_xor_byte1_ne(x, base, disp) ({				\
	*(x) ^= (uintptr_t)*(const uint8_t *)((base) + (disp)) << 8;	\
	(*(x) & 0xff00) != 0;						\
})

/* The same in C (sparse, sanitizers). */
#define arch_tls_test_ne(a, m)	(((a) & *(m)) != 0)

#endif

/*
 * Keep x in %rsi from here on (an empty asm): malloc's direct pop holds
 * the request size in %rdi for its miss path, and GCC, left to choose,
 * put the bin index in %rax and spent a MOV on the returned block.
 */
#define arch_tls_ix_reg(x)	__asm__("" : "+S"(x))

/*
 * Keep x in %rcx (an empty asm): the free fast path's bin index comes out
 * of arch_tls_xor_byte1_ne in a register with a high byte, and GCC, left
 * to choose, moved it to %rsi (the slow calls' second argument) at the
 * cost of two MOVs on the hot path.
 */
#define arch_tls_ix_reg_free(x)	__asm__("" : "+c"(x))

#endif /* HAK_ASM_X86_64_TLS_H */
