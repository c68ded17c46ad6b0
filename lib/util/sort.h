/*
 * Sorting node and group ids (small arrays: membership lists, group sets).
 */
#ifndef RD_UTIL_SORT_H
#define RD_UTIL_SORT_H

#include <stddef.h>
#include <stdint.h>

/* Sort `n` ids ascending, in place. */
void rd_sort_u64(uint64_t *v, size_t n);

#endif
