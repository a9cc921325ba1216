/*
 * runtime/ticket.c: a command's completion, waited on through a futex. See
 * docs/architecture.md for the map.
 *
 * state goes PENDING -> DONE, or PENDING -> SLEEPER -> DONE when a waiter
 * is (about to be) asleep in the kernel. The completer writes the outcome,
 * then swaps DONE in (release) and calls futex_wake only if it replaced
 * SLEEPER, so a command nobody sleeps on costs no system call. A waiter that
 * loads DONE (acquire) reads the outcome. refs counts the runtime and the
 * caller; the last to let go gives the ticket back to its block.
 */
#define _GNU_SOURCE /* syscall */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/futex.h"
#include "runtime/ticket.h"
#include "runtime/ticket_pool.h"

enum { TICKET_PENDING = 0, TICKET_SLEEPER = 1, TICKET_DONE = 2 };

/* n rounded up to the alignment of anything malloc returns. */
static size_t aligned(size_t n)
{
	const size_t align = _Alignof(max_align_t);

	return (n + align - 1) / align * align;
}

/* Where a block's tickets start. */
#define BLOCK_HEAD aligned(sizeof(struct esr__ticket_block))

struct esr__ticket_block *esr__tickets_alloc(size_t n, int waitable, int ids)
{
	size_t head = BLOCK_HEAD, room = ids ? ESR_COMMAND_ID_MAX : 0;
	size_t stride = aligned((waitable ? sizeof(esr_ticket) : offsetof(esr_ticket, result)) + room);
	struct esr__ticket_block *b;
	uint32_t pool;

	if (n >= UINT32_MAX ||
	    (b = esr__ticket_pool_get(n, head, stride, (unsigned)(!!waitable * 2 + !!ids),
	                              &pool)) == NULL)
		return NULL;
	b->pool = pool;
	b->live = (uint32_t)n + 1; /* + the submitter's, until release_unused */
	b->used = 0;
	b->n = (uint32_t)n;
	b->stride = (uint32_t)stride;
	b->id_room = (uint32_t)room;
	return b;
}

esr_ticket *esr__tickets_take(struct esr__ticket_block *b, const void *command,
                              esr_query_fn query, esr_ticket_cb cb, void *ctx)
{
	esr_ticket *t;

	if (b->used == b->n)
		return NULL;
	t = (esr_ticket *)((char *)b + BLOCK_HEAD + (size_t)b->used++ * b->stride);
	t->command = command;
	t->cid = (esr_command_id){NULL, 0};
	t->cb = cb;
	t->cb_ctx = ctx;
	t->query = query;
	t->block = b;
	t->state = TICKET_PENDING;
	t->refs = cb ? 1 : 2;
	return t;
}

/* Let go of `k` tickets of b; the last one out frees the block. */
static void block_put(struct esr__ticket_block *b, uint32_t k)
{
	/* Release/acquire: whoever frees the block sees every write made
	 * through any of its tickets. */
	ck_pr_fence_release();
	ESR_TSAN_RELEASE(&b->live);
	if (ck_pr_faa_32(&b->live, (uint32_t)-k) == k) {
		ck_pr_fence_acquire();
		ESR_TSAN_ACQUIRE(&b->live);
		esr__ticket_pool_put(b, b->pool);
	}
}

void esr__tickets_release_unused(struct esr__ticket_block *b)
{
	block_put(b, b->n - b->used + 1);
}

/*
 * Drop one of the ticket's two holds (runtime, caller). Release before the
 * decrement: this holder's reads and writes of the ticket come before it
 * (ck's decrement orders nothing: on aarch64 it is a loop of plain cas).
 * Acquire after reaching zero: the other holder's come before the block_put
 * that may free the block.
 */
static void unref(esr_ticket *t)
{
	bool zero;

	ck_pr_fence_release();
	ESR_TSAN_RELEASE(&t->refs);
	ck_pr_dec_32_zero(&t->refs, &zero);
	if (zero) {
		ck_pr_fence_acquire();
		ESR_TSAN_ACQUIRE(&t->refs);
		block_put(t->block, 1);
	}
}

/* The room for a command id at the end of t's stride, or NULL. */
static unsigned char *id_room(esr_ticket *t)
{
	const struct esr__ticket_block *b = t->block;

	return b->id_room ? (unsigned char *)t + b->stride - b->id_room : NULL;
}

int esr__ticket_set_cid(esr_ticket *t, const esr_command_id *id)
{
	unsigned char *copy = id_room(t);

	if (id->len == 0)
		return 0;
	if (copy == NULL && (copy = malloc(id->len)) == NULL)
		return -1;
	memcpy(copy, id->bytes, id->len);
	t->cid = (esr_command_id){copy, id->len};
	return 0;
}

void esr__ticket_drop_cid(esr_ticket *t)
{
	if (t->cid.bytes != NULL && t->cid.bytes != id_room(t))
		free((void *)t->cid.bytes);
	t->cid = (esr_command_id){NULL, 0};
}

void esr__ticket_complete(esr_ticket *t, esr_status status, const esr_result *r)
{
	esr__ticket_drop_cid(t); /* the decision is made: nothing reads it again */
	if (t->cb != NULL) { /* the result stays the callback's to read */
		t->cb(t->cb_ctx, status, r);
		block_put(t->block, 1);
		return;
	}
	t->status = status;
	t->result = *r;
	ck_pr_fence_release();
	ESR_TSAN_RELEASE(&t->state);
	if (ck_pr_fas_32(&t->state, TICKET_DONE) == TICKET_SLEEPER)
		esr__futex_wake_all(&t->state);
	unref(t);
}

void esr__ticket_debt_pay(struct esr__ticket_debt *d)
{
	if (d->block != NULL)
		block_put(d->block, d->count);
	d->block = NULL;
	d->count = 0;
}

void esr__ticket_complete_owing(esr_ticket *t, esr_status status, const esr_result *r,
                                struct esr__ticket_debt *d)
{
	struct esr__ticket_block *b = t->block;

	if (t->cb == NULL) {
		esr__ticket_complete(t, status, r);
		return;
	}
	esr__ticket_drop_cid(t);
	t->cb(t->cb_ctx, status, r); /* t is not read after this */
	if (d->block != b) {
		esr__ticket_debt_pay(d);
		d->block = b;
	}
	d->count++;
}

static int is_done(esr_ticket *t)
{
	if (ck_pr_load_32(&t->state) != TICKET_DONE)
		return 0;
	ck_pr_fence_acquire();
	ESR_TSAN_ACQUIRE(&t->state);
	return 1;
}

static long remaining_ns(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000000000L +
	       (deadline->tv_nsec - now.tv_nsec);
}

esr_status esr_ticket_wait(esr_ticket *t, long timeout_ms)
{
	struct timespec deadline, rel, *relp = NULL;
	int spins;
	long ns;

	if (t == NULL || t->cb != NULL)
		return ESR_EINVAL;
	for (spins = 0; spins < 200; spins++) { /* completions are often close */
		if (is_done(t))
			return ESR_OK;
		ck_pr_stall();
	}
	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	for (;;) {
		if (is_done(t))
			return ESR_OK;
		if (timeout_ms >= 0) {
			if ((ns = remaining_ns(&deadline)) <= 0)
				return ESR_ETIMEDOUT;
			rel.tv_sec = ns / 1000000000L;
			rel.tv_nsec = ns % 1000000000L;
			relp = &rel;
		}
		/* The state word is one location, so its CAS and the completer's
		 * swap are ordered by the word itself: either our CAS to SLEEPER
		 * comes first and the swap returns SLEEPER (the completer wakes
		 * us), or the swap comes first and the CAS fails, or futex_wait
		 * finds the word no longer SLEEPER and returns at once. */
		if (ck_pr_load_32(&t->state) == TICKET_PENDING &&
		    !ck_pr_cas_32(&t->state, TICKET_PENDING, TICKET_SLEEPER))
			continue; /* it just completed */
		esr__futex_wait(&t->state, TICKET_SLEEPER, relp);
	}
}

esr_status esr_ticket_poll(esr_ticket *t, int *done)
{
	if (t == NULL || done == NULL || t->cb != NULL)
		return ESR_EINVAL;
	*done = is_done(t);
	return ESR_OK;
}

esr_status esr_ticket_result(esr_ticket *t, esr_status *status, esr_result *result)
{
	if (t == NULL || status == NULL || t->cb != NULL)
		return ESR_EINVAL;
	if (!is_done(t))
		return ESR_EBUSY;
	*status = t->status;
	if (result)
		*result = t->result;
	return ESR_OK;
}

esr_status esr_ticket_release(esr_ticket *t)
{
	if (t != NULL)
		unref(t);
	return ESR_OK;
}
