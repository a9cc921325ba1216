/*
 * runtime/turn.c: deciding a turn's commands one after another and reading
 * each one's outcome from the turn's one append (runtime/turn.h).
 */
#include <string.h>

#include "core/internal.h"
#include "runtime/emitter.h"
#include "runtime/exec.h"
#include "runtime/turn.h"
#include "store/store_internal.h"

/* Forget what the command being decided emitted: back to its mark. */
static void rewind_to(esr_emitter *em, size_t count, size_t used)
{
	em->count = count;
	em->used = used;
	em->error = ESR_OK;
}

/* An earlier command of the turn with c's id that emitted events: c is its
 * duplicate (1 + its index), or 0. One that emitted none recorded nothing,
 * and c is decided as a resubmission of it would be. */
static unsigned same_id_before(const struct esr__turn *t, unsigned i)
{
	const struct esr__turn_cmd *c = &t->c[i];
	unsigned j;

	for (j = 0; c->cid.len != 0 && j < i; j++)
		if (t->c[j].count != 0 && esr__command_id_equal(&t->c[j].cid, &c->cid))
			return j + 1;
	return 0;
}

/* A command with an id that appends nothing (rejected, or no events) never
 * meets the store's check: look its id up, so that a retry of a command
 * stored before is answered as a duplicate rather than decided again on
 * the state its first run left. */
static void look_up(struct esr__exec *x, struct esr__turn_cmd *c)
{
	uint64_t first = 0, last = 0;

	if (c->cid.len == 0 || c->duplicate ||
	    esr_store_command(x->store, &x->stream, c->cid.bytes, c->cid.len, &first, &last) != ESR_OK ||
	    first == 0)
		return;
	c->duplicate = 1;
	c->dup_first = first;
	c->dup_last = last;
	c->status = ESR_OK;
	c->rejection = 0;
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
		c->status = ESR_OK;
		if (c->duplicate || (c->same_as = same_id_before(t, i)) != 0)
			continue; /* answered by the store's record, or by the earlier one */
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
			for (size_t j = count; j < em->count; j++)
				em->events[j].command_id = c->cid;
		}
		if (c->count == 0)
			look_up(x, c);
	}
	return t->n;
}

int esr__turn_mark_duplicate(struct esr__turn *t, const esr_append_result *r)
{
	unsigned i;

	for (i = 0; i < t->n; i++) {
		struct esr__turn_cmd *c = &t->c[i];

		if (c->count != 0 && c->first == r->duplicate_at && c->cid.len != 0) {
			c->duplicate = 1;
			c->dup_first = r->recorded_first;
			c->dup_last = r->version;
			return 1;
		}
	}
	return 0;
}

esr_status esr__turn_settle_unknown(struct esr__exec *x, const struct esr__turn *t,
                                    size_t total, uint64_t *last)
{
	uint64_t first, end;
	unsigned i;

	for (i = 0; i < t->n; i++) {
		const struct esr__turn_cmd *c = &t->c[i];

		if (c->count == 0 || c->cid.len == 0 ||
		    esr_store_command(x->store, &x->stream, c->cid.bytes, c->cid.len, &first,
		                      &end) != ESR_OK || first == 0)
			continue;
		if (end - first + 1 != c->count) /* another run's: not this append */
			return ESR_EUNKNOWN;
		*last = end + (total - c->first - c->count);
		return ESR_OK;
	}
	return ESR_EUNKNOWN;
}

esr_status esr__turn_outcome(const struct esr__turn *t, unsigned i, uint64_t total,
                             uint64_t base, esr_status appended, uint64_t last, esr_result *r)
{
	const struct esr__turn_cmd *c = &t->c[i];
	esr_status st;

	r->duplicate = 0;
	if (c->duplicate) { /* stored before: its first run's versions */
		r->rejection = 0;
		r->duplicate = 1;
		r->version = c->dup_last;
		r->appended = (uint32_t)(c->dup_last - c->dup_first + 1);
		return ESR_OK;
	}
	if (c->same_as != 0) { /* the earlier one's events are its own */
		if ((st = esr__turn_outcome(t, c->same_as - 1, total, base, appended, last, r)) != ESR_OK)
			return st;
		r->duplicate = 1;
		return ESR_OK;
	}
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

/* Every decided command's outcome from the append's (see esr__turn_outcome). */
static void fill(const struct esr__turn *t, unsigned k, uint64_t total, uint64_t base,
                 esr_status appended, uint64_t last, uint32_t attempts, esr_status *st,
                 esr_result *r)
{
	unsigned i;

	for (i = 0; i < k; i++) {
		memset(&r[i], 0, sizeof r[i]);
		st[i] = esr__turn_outcome(t, i, total, base, appended, last, &r[i]);
		r[i].attempts = attempts;
	}
}

unsigned esr__turn_run(struct esr__exec *x, esr_emitter *em, struct esr__turn *t, void *scratch,
                       esr_strategy strategy, unsigned max_retries, esr_status *st,
                       esr_result *r)
{
	esr_append_result ar;
	uint64_t expected, base;
	uint32_t attempts = 0;
	esr_status a;
	unsigned k, i;

	for (;;) {
		attempts++;
		base = x->version;
		esr__emitter_restamp(em);
		k = esr__turn_decide(x, em, t, scratch, esr__store_turn_bytes(x->store));
		if (em->count == 0) {
			fill(t, k, 0, base, ESR_OK, 0, attempts, st, r);
			return k;
		}
		expected = esr__exec_expected(x, strategy);
		a = esr_store_append(x->store, &x->stream, expected, esr__emitter_events(em),
		                     em->count, &ar);
		if (a == ESR_EUNKNOWN && esr__turn_settle_unknown(x, t, em->count, &ar.version) == ESR_OK)
			a = ESR_OK; /* its ids are recorded: it was stored after all */
		if (a == ESR_OK) {
			a = esr__exec_commit(x, em, strategy, ar.version);
			fill(t, k, em->count, base, a, ar.version, attempts, st, r);
			return k;
		}
		if (a == ESR_EDUPLICATE && esr__turn_mark_duplicate(t, &ar))
			continue; /* decided again without it: nothing was appended */
		if (a == ESR_EDUPLICATE)
			a = ESR_EIO; /* no command of ours owns that event: a broken backend */
		if (a == ESR_ECONFLICT && strategy == ESR_UNCHECKED)
			a = ESR_EIO; /* an ANY append cannot conflict unless the backend is broken */
		if (a != ESR_ECONFLICT || attempts > max_retries) {
			fill(t, k, em->count, base, a, 0, attempts, st, r);
			for (i = 0; a == ESR_ECONFLICT && i < k; i++)
				if (st[i] == ESR_ECONFLICT)
					esr__exec_conflict(x, expected, ar.version, attempts,
					                   &r[i].conflict);
			return k;
		}
		if ((a = esr__exec_catch_up(x, NULL)) != ESR_OK) {
			fill(t, k, em->count, base, a, 0, attempts, st, r);
			return k;
		}
	}
}
