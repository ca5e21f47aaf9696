/* SPDX-License-Identifier: MIT */
/*
 * Clearing the old part of a large block for calloc (lib/zero.c): zeros
 * without faulting in the pages that are not resident.
 */
#ifndef HAK_ZERO_H
#define HAK_ZERO_H

#include <stddef.h>

/*
 * Make [p, p + len) read as 0. p is inside a private anonymous mapping that
 * no one else uses (a large block just taken, not yet handed out); errno
 * is kept.
 */
void __hak_zero_big(void *p, size_t len);
/*
 * Bytes __hak_zero_big gave back with madvise, ever (statistics): pages
 * of blocks in use that were absent (or read as zero) when calloc took
 * them.
 */
size_t __hak_zero_purged(void);

#endif /* HAK_ZERO_H */
