/* runtime/exec.c: load, decide, append, and the optimistic retry loop. */
#include <string.h>

#include "runtime/exec.h"

void esr__exec_bind(struct esr__exec *x, const esr_aggregate_type *type,
                    esr_store *store, const void *id, size_t id_len, void *state)
{
	x->type = type;
	x->store = store;
	x->stream = (esr_stream_id){.type = type->name, .id = id, .id_len = id_len};
	x->handle = NULL;
	x->state = state;
	x->version = 0;
}

static esr_status apply_recorded(void *ctx, const esr_recorded_event *rec)
{
	struct esr__exec *x = ctx;

	/* A store that skips or repeats a version broke its contract; folding
	 * on would build a state no replay can reproduce. */
	if (rec->version != x->version + 1 || rec->version == ESR_VERSION_ANY)
		return ESR_ECORRUPT;
	x->type->apply(x->state, &rec->event);
	x->version = rec->version;
	return ESR_OK;
}

esr_status esr__exec_catch_up(struct esr__exec *x)
{
	return esr_store_read(x->store, &x->stream, x->version + 1, apply_recorded, x);
}

esr_status esr__exec_load(struct esr__exec *x)
{
	memset(x->state, 0, x->type->state_size);
	if (x->type->init)
		x->type->init(x->state, x->stream.id, x->stream.id_len);
	x->version = 0;
	return esr__exec_catch_up(x);
}

esr_status esr__exec_decide(struct esr__exec *x, esr_emitter *em,
                            const void *command, int *rejection)
{
	int code;

	esr__emitter_reset(em);
	code = x->type->handle(x->state, command, em);
	if (em->error != ESR_OK) /* the handler could not say what it meant */
		return em->error;
	if (code != 0) {
		*rejection = code;
		return ESR_EREJECTED;
	}
	return ESR_OK;
}

uint64_t esr__exec_expected(const struct esr__exec *x, esr_strategy strategy)
{
	return strategy == ESR_OPTIMISTIC ? x->version : ESR_VERSION_ANY;
}

esr_status esr__exec_commit(struct esr__exec *x, esr_emitter *em,
                            esr_strategy strategy, uint64_t version)
{
	const esr_event *events = esr__emitter_events(em);
	size_t i;

	/* An optimistic append lands exactly after the version it expected;
	 * anything else is a backend breaking its contract. Under unchecked a
	 * gap is the documented cost: other writers' events are not folded in
	 * (the state never reloads), and `version` is where the stream is. */
	if (version == ESR_VERSION_ANY || /* would read as "no check" next time */
	    (strategy == ESR_OPTIMISTIC && version != x->version + em->count))
		return ESR_ECORRUPT;
	for (i = 0; i < em->count; i++)
		x->type->apply(x->state, &events[i]);
	x->version = version;
	return ESR_OK;
}

void esr__exec_conflict(const struct esr__exec *x, uint64_t expected,
                        uint64_t actual, uint32_t attempts, esr_conflict *c)
{
	strcpy(c->type, x->type->name); /* checked length at registration */
	memcpy(c->id, x->stream.id, x->stream.id_len);
	c->id_len = x->stream.id_len;
	c->expected = expected;
	c->actual = actual;
	c->attempts = attempts;
}

esr_status esr__exec_run(struct esr__exec *x, esr_emitter *em, const void *command,
                         esr_strategy strategy, unsigned max_retries,
                         esr_result *r)
{
	esr_append_result ar;
	uint64_t expected;
	esr_status st;

	memset(r, 0, sizeof *r);
	for (;;) {
		r->attempts++;
		r->version = x->version;
		st = esr__exec_decide(x, em, command, &r->rejection);
		if (st != ESR_OK || em->count == 0)
			return st;
		expected = esr__exec_expected(x, strategy);
		st = esr_store_append(x->store, &x->stream, expected,
		                      esr__emitter_events(em), em->count, &ar);
		if (st == ESR_OK) {
			if ((st = esr__exec_commit(x, em, strategy, ar.version)) != ESR_OK)
				return st;
			r->version = x->version;
			r->appended = (uint32_t)em->count;
			return ESR_OK;
		}
		if (st != ESR_ECONFLICT)
			return st;
		if (strategy == ESR_UNCHECKED) /* an ANY append cannot conflict */
			return ESR_EIO;           /* unless the backend is broken */
		if (r->attempts > max_retries) {
			esr__exec_conflict(x, expected, ar.version, r->attempts, &r->conflict);
			return ESR_ECONFLICT;
		}
		if ((st = esr__exec_catch_up(x)) != ESR_OK)
			return st;
	}
}
