/* The allocator concurrencykit's hash sets take (ck_malloc.h), over the C
 * library's: one instance shared by every ck_hs of the tree. */
#ifndef SYM_CK_ALLOC_H
#define SYM_CK_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

#include <ck_malloc.h>

extern struct ck_malloc sym_ck_malloc;

#endif
