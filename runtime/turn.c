/*
 * runtime/turn.c: deciding a turn's commands one after another and reading
 * each one's outcome from the turn's one append (runtime/turn.h).
 */
#include <string.h>

#include "runtime/emitter.h"
#include "runtime/exec.h"
#include "runtime/turn.h"

/* Forget what the command being decided emitted: back to its mark. */
static void rewind_to(esr_emitter *em, size_t count, size_t used)
{
	em->count = count;
	em->used = used;
	em->error = ESR_OK;
}

/* Bring the scratch state up to em's events [*applied, em->count). */
static const void *advance(struct esr__exec *x, esr_emitter *em, void *scratch,
                           const void *state, size_t *applied)
{
	size_t j;

	if (*applied == em->count)
		return state;
	if (state == x->state) /* the first command to follow events: copy once */
		memcpy(scratch, x->state, x->type->state_size);
	for (j = *applied; j < em->count; j++)
		x->type->apply(scratch, esr__emitter_event(em, j));
	*applied = em->count;
	return scratch;
}

unsigned esr__turn_decide(struct esr__exec *x, esr_emitter *em, struct esr__turn *t,
                          void *scratch, size_t max_bytes)
{
	const void *state = x->state;
	size_t applied = 0, count, used;
	unsigned i;
	int code;

	esr__emitter_reset(em);
	for (i = 0; i < t->n; i++) {
		struct esr__turn_cmd *c = &t->c[i];

		state = advance(x, em, scratch, state, &applied);
		count = em->count;
		used = em->used;
		c->first = (uint32_t)count;
		c->count = 0;
		c->rejection = 0;
		code = x->type->handle(state, c->command, em);
		/* Full: the events before it take the room it needs. */
		if (count > 0 && ((em->error == ESR_ETOOBIG && em->count == ESR_APPEND_MAX) ||
		                  (em->error == ESR_OK && code == 0 && em->used > max_bytes))) {
			rewind_to(em, count, used);
			return i;
		}
		if (em->error != ESR_OK) { /* the handler could not say what it meant */
			c->status = em->error;
			rewind_to(em, count, used);
		} else if (code != 0) {
			c->status = ESR_EREJECTED;
			c->rejection = code;
			rewind_to(em, count, used);
		} else {
			c->status = ESR_OK;
			c->count = (uint32_t)(em->count - count);
		}
	}
	return t->n;
}

esr_status esr__turn_outcome(const struct esr__turn_cmd *c, uint64_t total, uint64_t base,
                             esr_status appended, uint64_t last, esr_result *r)
{
	r->rejection = c->rejection;
	r->appended = 0;
	if (total == 0) { /* nothing to append: each decision stands */
		r->version = base;
		return c->status;
	}
	if (appended != ESR_OK) {
		r->version = base;
		/* Decided on the state before the turn, emitting nothing: it does
		 * not depend on the append. Every other command does. */
		if (c->first == 0 && c->count == 0)
			return c->status;
		r->rejection = 0;
		return appended;
	}
	/* Stored: the turn's events end at `last`, each command's where its own
	 * end (or, for one that emitted nothing, its start) falls among them. */
	r->version = last - total + c->first + c->count;
	r->appended = c->count;
	return c->status;
}
