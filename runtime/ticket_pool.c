/*
 * runtime/ticket_pool.c: ticket blocks kept for reuse. See
 * runtime/ticket_pool.h for why, and docs/architecture.md for the map.
 *
 * One pool per shape and power-of-two size class, each a lock-free stack of
 * free blocks, linked through each block's first word. Blocks are lent
 * out (`made` counts them) until the pool owns ESR__POOL_BYTES, and a
 * pooled block is never freed, which is what makes the stack safe:
 *
 *   push   Link the block to the head just read, fence (release), then
 *          CAS the head from that value to the block: the block's link, and
 *          every access its last holder made to it (block_put in ticket.c
 *          got there with an acquire), come before the head that publishes
 *          it. A push does not move the generation.
 *   pop    Read the generation, then the head, then the head's link, and
 *          swap head and generation for link and generation + 1 with one
 *          double-width CAS. Between our reads and the CAS another thread
 *          may pop that head, use the block (its first word then holds the
 *          block's own fields) and push it back: the head is the same
 *          pointer again, but every pop moved the generation, so our CAS
 *          fails and we read again. The link we read from a block in use is
 *          garbage only to a CAS that is bound to fail, and the read itself
 *          is safe because the block's memory is never given back. The
 *          acquire fence after the CAS orders the block's reuse after
 *          whatever its last owner wrote (the push's release).
 *
 * Reads of the link go through ck_pr_load_ptr, as the writes do: a racing
 * read of a word the block's next owner is writing is expected here. That is
 * why this is not ck_stack_pop_mpmc, the same algorithm: it reads the link
 * with a plain load, which ThreadSanitizer reports as a race with the
 * block's next owner.
 *
 * Without a double-width CAS (CK_F_PR_CAS_PTR_2_VALUE) nothing is pooled:
 * every block is malloc's and free's.
 */
#include <stdlib.h>

#include "core/sync.h"
#include "runtime/ticket_pool.h"

#ifdef CK_F_PR_CAS_PTR_2_VALUE

#define CLASSES 7 /* 1, 2, 4, ... 64 tickets */
#define SHAPES 4

_Static_assert((1u << (CLASSES - 1)) == ESR__POOL_TICKETS, "size classes");

struct pool {
	/* The stack's two words, swapped together by the pop's CAS. */
	struct {
		void *head;
		char *gen;
	} top CK_CC_ALIGN(16);
	uint32_t made; /* blocks this pool has lent out, ever */
} CK_CC_CACHELINE;

static struct pool pools[SHAPES][CLASSES];

static void **link_of(void *block)
{
	return (void **)block;
}

static void push(struct pool *p, void *block)
{
	void *head = ck_pr_load_ptr(&p->top.head);

	ESR_TSAN_RELEASE(p);
	do {
		ck_pr_store_ptr(link_of(block), head);
		ck_pr_fence_release(); /* the link and the block before the head */
	} while (!ck_pr_cas_ptr_value(&p->top.head, head, block, &head));
}

static void *pop(struct pool *p)
{
	void *seen[2], *next[2];

	seen[1] = ck_pr_load_ptr(&p->top.gen);
	ck_pr_fence_load(); /* the generation before the head it goes with */
	seen[0] = ck_pr_load_ptr(&p->top.head);
	for (;;) {
		if (seen[0] == NULL)
			return NULL;
		ck_pr_fence_load(); /* the head before its link */
		next[0] = ck_pr_load_ptr(link_of(seen[0]));
		next[1] = (char *)seen[1] + 1;
		if (ck_pr_cas_ptr_2_value(&p->top, seen, next, seen))
			break;
	}
	ck_pr_fence_acquire();
	ESR_TSAN_ACQUIRE(p);
	return seen[0];
}

/* The size class of n tickets (n <= ESR__POOL_TICKETS): log2 rounded up. */
static unsigned class_of(size_t n)
{
	unsigned c = 0;

	while (((size_t)1 << c) < n)
		c++;
	return c;
}

/* Take one of the blocks p may still lend; 0 if it has lent them all. */
static int may_make(struct pool *p, size_t bytes)
{
	uint32_t most = bytes < ESR__POOL_BYTES ? (uint32_t)(ESR__POOL_BYTES / bytes) : 1;
	uint32_t m = ck_pr_load_32(&p->made);

	do {
		if (m >= most)
			return 0;
	} while (!ck_pr_cas_32_value(&p->made, m, m + 1, &m));
	return 1;
}

#endif /* CK_F_PR_CAS_PTR_2_VALUE */

void *esr__ticket_pool_get(size_t n, size_t head, size_t stride, unsigned shape,
                           uint32_t *pool)
{
	if (n == 0 || stride == 0 || n > (SIZE_MAX - head) / stride)
		return NULL;
	*pool = 0;
#ifdef CK_F_PR_CAS_PTR_2_VALUE
	if (n <= ESR__POOL_TICKETS && shape < SHAPES) {
		unsigned c = class_of(n);
		struct pool *p = &pools[shape][c];
		size_t bytes = head + ((size_t)1 << c) * stride;
		void *b = pop(p);

		if (b == NULL && may_make(p, bytes) && (b = malloc(bytes)) == NULL) {
			ck_pr_dec_32(&p->made);
			return NULL;
		}
		if (b != NULL) { /* else the pool has lent all it may: plain malloc */
			*pool = shape * CLASSES + c + 1;
			return b;
		}
	}
#else
	(void)shape; /* no double-width CAS: every block is malloc's */
#endif
	return malloc(head + n * stride);
}

void esr__ticket_pool_put(void *block, uint32_t pool)
{
#ifdef CK_F_PR_CAS_PTR_2_VALUE
	if (pool != 0) {
		push(&pools[(pool - 1) / CLASSES][(pool - 1) % CLASSES], block);
		return;
	}
#endif
	(void)pool;
	free(block);
}
