/* SPDX-License-Identifier: MIT */
/*
 * tap.h: a tiny TAP 13 producer for hakmem selftests (header-only,
 * kselftest style). Each test program:
 *
 *	tap_plan(3);                  // or tap_plan(0): plan printed at the end
 *	tap_ok(x == 1, "x is one");   // "ok 1 x is one" / "not ok 1 x is one"
 *	tap_skip("no %s", "NUMA");    // "ok 2 # SKIP no NUMA"
 *	tap_diag("seed %u", seed);    // "# seed 42"
 *	tap_finish();                 // exit 0 if all passed and count == plan
 *
 * tap_skip_all() skips the whole program (exit 4) and tap_bail() aborts it
 * (exit 1). Every call flushes stdout, so output survives fork(), abort()
 * and crashes. State is static: one TAP stream per process.
 */
#ifndef HAK_SELFTESTS_TAP_H
#define HAK_SELFTESTS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define TAP_EXIT_PASS	0
#define TAP_EXIT_FAIL	1
#define TAP_EXIT_SKIP	4

struct tap_state {
	unsigned int plan;	/* 0: no plan yet, printed by tap_finish() */
	unsigned int count;	/* test points so far */
	unsigned int failed;
};

static struct tap_state tap_state;

static inline void tap_vprint(const char *prefix, const char *fmt, va_list ap)
{
	fputs(prefix, stdout);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static inline void tap_plan(unsigned int n)
{
	tap_state.plan = n;
	printf("TAP version 13\n");
	if (n)
		printf("1..%u\n", n);
	fflush(stdout);
}

__attribute__((format(printf, 2, 3)))
static inline void tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_state.count++;
	if (!cond)
		tap_state.failed++;
	printf("%sok %u ", cond ? "" : "not ", tap_state.count);
	va_start(ap, fmt);
	tap_vprint("", fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2)))
static inline void tap_skip(const char *fmt, ...)
{
	va_list ap;

	tap_state.count++;
	printf("ok %u # SKIP ", tap_state.count);
	va_start(ap, fmt);
	tap_vprint("", fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2)))
static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vprint("# ", fmt, ap);
	va_end(ap);
}

__attribute__((noreturn, format(printf, 1, 2)))
static inline void tap_skip_all(const char *fmt, ...)
{
	va_list ap;

	if (!tap_state.plan && !tap_state.count)
		printf("TAP version 13\n");
	va_start(ap, fmt);
	tap_vprint("1..0 # SKIP ", fmt, ap);
	va_end(ap);
	exit(TAP_EXIT_SKIP);
}

__attribute__((noreturn, format(printf, 1, 2)))
static inline void tap_bail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vprint("Bail out! ", fmt, ap);
	va_end(ap);
	exit(TAP_EXIT_FAIL);
}

__attribute__((noreturn))
static inline void tap_finish(void)
{
	if (!tap_state.plan)
		printf("1..%u\n", tap_state.count);
	else if (tap_state.count != tap_state.plan)
		printf("# planned %u tests but ran %u\n", tap_state.plan, tap_state.count);
	if (tap_state.failed)
		printf("# %u of %u tests failed\n", tap_state.failed, tap_state.count);
	fflush(stdout);
	exit(!tap_state.failed && (!tap_state.plan || tap_state.count == tap_state.plan)
	     ? TAP_EXIT_PASS : TAP_EXIT_FAIL);
}

#endif /* HAK_SELFTESTS_TAP_H */
