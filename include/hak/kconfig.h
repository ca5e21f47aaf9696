/* SPDX-License-Identifier: MIT */
/*
 * Configuration as values. Every translation unit is compiled with
 * -include of this file, so CONFIG_* macros and IS_ENABLED() are always
 * there. IS_ENABLED(CONFIG_X) is 1 when X=y and 0 otherwise; it works in
 * both #if and ordinary expressions, so .c files can write
 * "if (IS_ENABLED(CONFIG_HAK_X))" and the compiler (and sparse) still see
 * both branches.
 */
#ifndef HAK_KCONFIG_H
#define HAK_KCONFIG_H

#include <generated/autoconf.h>

#define __ARG_PLACEHOLDER_1		0,
#define __take_second_arg(__ignored, val, ...)	val
#define __is_defined(x)			___is_defined(x)
#define ___is_defined(val)		____is_defined(__ARG_PLACEHOLDER_##val)
#define ____is_defined(arg1_or_junk)	__take_second_arg(arg1_or_junk 1, 0)

#define IS_ENABLED(option)		__is_defined(option)

#endif /* HAK_KCONFIG_H */
