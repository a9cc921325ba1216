/*
 * runtime/mpsc.h: an intrusive multi-producer, single-consumer queue (the
 * mailbox). Unbounded and allocation-free: the queued node is the caller's
 * (a ticket), and an empty queue costs three pointers, so an idle actor stays
 * small. Capacity is enforced by the actor's pending count, not here. See
 * docs/architecture.md for the map.
 *
 * Push is one atomic exchange on `head` and one store: lock-free, and FIFO in
 * the order the exchanges happen, so one producer's pushes stay in order.
 * Pop belongs to the one consumer (the worker running the actor).
 *
 * Memory ordering: a producer writes its node (next = NULL and the payload),
 * issues ck_pr_fence_store(), swaps itself into `head`, then links the
 * previous head's `next` to it. The consumer reads `next` and depends on the
 * pointer for the node's contents. Between the swap and the link the queue
 * looks shorter than it is: pop then returns NULL although a push is under
 * way, and the caller, who knows from the pending count that a node is
 * coming, retries.
 */
#ifndef ESR_RUNTIME_MPSC_H
#define ESR_RUNTIME_MPSC_H

#include <stddef.h>

#include "core/sync.h"

struct esr__mpsc_node {
	struct esr__mpsc_node *next;
};

struct esr__mpsc {
	struct esr__mpsc_node *head; /* last pushed; producers swap it */
	struct esr__mpsc_node stub;  /* keeps the queue non-empty for the swap */
	struct esr__mpsc_node *tail; /* next to pop; consumer only (last: an
	                              * embedder may keep it apart from the
	                              * producers' two words) */
};

static inline void esr__mpsc_init(struct esr__mpsc *q)
{
	q->stub.next = NULL;
	q->head = &q->stub;
	q->tail = &q->stub;
}

static inline void esr__mpsc_push(struct esr__mpsc *q, struct esr__mpsc_node *n)
{
	struct esr__mpsc_node *prev;

	n->next = NULL;
	/* Store fence: the node (and what the caller wrote before the push,
	 * such as the count of outstanding commands) before the swap that
	 * makes it reachable. */
	ck_pr_fence_store();
	ESR_TSAN_RELEASE(n);
	/* The swap is one location's read-modify-write, so producers are
	 * totally ordered by it; the next producer's link into n depends on
	 * the swap's result (its address), so it lands after our NULL. */
	prev = ck_pr_fas_ptr(&q->head, n);
	ck_pr_store_ptr(&prev->next, n);
}

/*
 * Push the chain first..last, already linked through `next` by the caller, as
 * one push: the same swap and link, so a consumer sees the chain's nodes in
 * order and after the nodes of earlier pushes; the store fence covers the
 * chain's links as it covers a single node's NULL.
 */
static inline void esr__mpsc_push_chain(struct esr__mpsc *q, struct esr__mpsc_node *first,
                                        struct esr__mpsc_node *last)
{
	struct esr__mpsc_node *prev, *n, *next;

	last->next = NULL;
	ck_pr_fence_store();
	/* Each link is read before its node's release: once released, a node
	 * is the consumer's, which may relink it (actor.c puts one back). */
	for (n = first; n != NULL; n = next) {
		next = n->next;
		ESR_TSAN_RELEASE(n);
	}
	prev = ck_pr_fas_ptr(&q->head, last);
	ck_pr_store_ptr(&prev->next, first);
}

static inline struct esr__mpsc_node *esr__mpsc_next(struct esr__mpsc_node *n)
{
	struct esr__mpsc_node *next = ck_pr_load_ptr(&n->next);

	if (next != NULL)
		ESR_TSAN_ACQUIRE(next);
	return next;
}

/* The oldest node, or NULL if none is (completely) pushed yet. */
static inline struct esr__mpsc_node *esr__mpsc_pop(struct esr__mpsc *q)
{
	struct esr__mpsc_node *tail = q->tail, *next = esr__mpsc_next(tail);

	if (tail == &q->stub) {
		if (next == NULL)
			return NULL;
		q->tail = tail = next;
		next = esr__mpsc_next(next);
	}
	if (next != NULL) {
		q->tail = next;
		return tail;
	}
	if (tail != ck_pr_load_ptr(&q->head))
		return NULL; /* a push is between its swap and its link */
	/* tail is the only node: put the stub behind it so it can leave. */
	esr__mpsc_push(q, &q->stub);
	next = esr__mpsc_next(tail);
	if (next != NULL) {
		q->tail = next;
		return tail;
	}
	return NULL;
}

#endif /* ESR_RUNTIME_MPSC_H */
