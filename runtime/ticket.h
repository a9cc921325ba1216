/*
 * runtime/ticket.h: a command's ticket and the blocks tickets come in
 * (runtime/ticket.c). See docs/architecture.md for the path of a command.
 */
#ifndef ESR_RUNTIME_TICKET_H
#define ESR_RUNTIME_TICKET_H

#include <stddef.h>
#include <stdint.h>

#include "esr/esr.h"
#include "runtime/mpsc.h"

/*
 * Tickets come in blocks: a batch submit takes one allocation for all its
 * commands instead of one each, and the block goes back when its last ticket
 * is let go (`live` counts them down): to its pool (runtime/ticket_pool.h),
 * or to free(). A ticket completed through a callback never holds its
 * result, so callback blocks leave `result` out of every ticket.
 */
struct esr__ticket_block {
	uint32_t live;   /* tickets not yet freed, + 1 while the submitter fills it */
	uint32_t used;   /* tickets handed out: the submitting thread's alone */
	uint32_t n;      /* tickets the block holds */
	uint32_t stride; /* bytes per ticket */
	uint32_t id_room; /* of which the last ones hold a command id copy (0: none) */
	uint32_t pool;   /* where it goes back (esr__ticket_pool_put) */
	/* n tickets follow, max_align_t aligned */
};

struct esr_ticket {
	struct esr__mpsc_node node; /* first: mailboxes link tickets */
	const void *command;
	esr_command_id cid; /* a copy the ticket owns until it completes; {NULL, 0}: none */
	esr_ticket_cb cb; /* NULL: a caller holds the ticket and waits or polls */
	void *cb_ctx;
	esr_query_fn query; /* a query's read (`command` is its ctx); NULL: a command */
	struct esr__ticket_block *block;
	uint32_t state;   /* TICKET_PENDING / _SLEEPER / _DONE; a futex word */
	uint32_t refs;    /* runtime + caller; the last release frees */
	esr_status status;
	esr_result result; /* absent from callback tickets: keep it last */
};

/* A block of n tickets: callback ones (`waitable` 0) or waitable ones, each
 * with room for a command id's copy when `ids` is set. */
struct esr__ticket_block *esr__tickets_alloc(size_t n, int waitable, int ids);
/* The block's next ticket, set up for `command` (for a query: its ctx, with
 * `query` its read; NULL for a command); NULL when all are taken. */
esr_ticket *esr__tickets_take(struct esr__ticket_block *b, const void *command,
                              esr_query_fn query, esr_ticket_cb cb, void *ctx);
/* Give back the last k tickets taken, which were never enqueued. */
static inline void esr__tickets_untake(struct esr__ticket_block *b, uint32_t k)
{
	b->used -= k;
}
/* The submitter is done with b: its hold and the tickets it did not hand out go. */
void esr__tickets_release_unused(struct esr__ticket_block *b);
/* Record the outcome and wake or call back; the runtime's last touch. */
void esr__ticket_complete(esr_ticket *t, esr_status status, const esr_result *r);

/* Give t its own copy of a command id (nothing for none): in the ticket's
 * room when its block was made with ids, else allocated. 0, or -1 if out of
 * memory. An allocated copy is freed when t completes, or by
 * esr__ticket_drop_cid for a ticket that was never enqueued. */
int esr__ticket_set_cid(esr_ticket *t, const esr_command_id *id);
void esr__ticket_drop_cid(esr_ticket *t);

/*
 * What a completer owes the blocks of the callback tickets it completed:
 * their return to the block, paid with one atomic per run of tickets from
 * one block instead of one each. A worker completes many tickets of the
 * same submit call in a row, and the block's count is a line every worker
 * completing them would otherwise take in turn. A debt delays only the
 * freeing of its block; the worker pays it before it idles.
 */
struct esr__ticket_debt {
	struct esr__ticket_block *block; /* NULL: nothing owed */
	uint32_t count;
};
/* As esr__ticket_complete, a callback ticket's return owed in d. */
void esr__ticket_complete_owing(esr_ticket *t, esr_status status, const esr_result *r,
                                struct esr__ticket_debt *d);
void esr__ticket_debt_pay(struct esr__ticket_debt *d);

#endif /* ESR_RUNTIME_TICKET_H */
