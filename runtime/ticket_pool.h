/*
 * runtime/ticket_pool.h: ticket blocks kept for reuse (runtime/ticket_pool.c).
 *
 * A submitter allocates a block for each run of commands and a worker
 * usually frees it, so with malloc every block crosses from one thread's
 * allocator arena to another's, and the two threads take turns on that
 * arena's lock; on a loaded machine the worker sleeps on it in the kernel.
 * The pool hands finished blocks back to the next submitter without a lock.
 */
#ifndef ESR_RUNTIME_TICKET_POOL_H
#define ESR_RUNTIME_TICKET_POOL_H

#include <stddef.h>
#include <stdint.h>

/* Blocks for up to this many tickets are pooled; larger ones use malloc. */
#define ESR__POOL_TICKETS 64
/* Bytes of blocks one pool (one shape and size class) may ever own; with 4
 * shapes and 7 classes, 3.5 MiB at most in a process. */
#define ESR__POOL_BYTES ((size_t)128 << 10)

/*
 * Memory for a block of n tickets of `stride` bytes after `head` bytes of
 * header (a pooled block has room for n rounded up to a power of two), and
 * in *pool the tag esr__ticket_pool_put needs (0: not pooled). `shape`
 * (0-3) keeps blocks apart whose stride differs. NULL without memory, or if
 * the size overflows.
 *
 * A block that belonged to a pool once is never freed: it goes back to its
 * pool each time, so a pool lends at most ESR__POOL_BYTES of blocks and
 * keeps them for the life of the process. When a pool has lent all it may
 * own, further blocks are plain malloc and free.
 */
void *esr__ticket_pool_get(size_t n, size_t head, size_t stride, unsigned shape,
                           uint32_t *pool);
/* Give back memory esr__ticket_pool_get returned with tag `pool`; its first
 * pointer-sized word is overwritten. Any thread may give back any block. */
void esr__ticket_pool_put(void *block, uint32_t pool);

#endif /* ESR_RUNTIME_TICKET_POOL_H */
