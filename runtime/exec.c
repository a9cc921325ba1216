/* runtime/exec.c: load, handle, append, and the optimistic retry loop. */
#include <stdlib.h>
#include <string.h>

#include "runtime/exec.h"

esr_status esr__exec_init(struct esr__exec *x, const esr_aggregate_type *type,
                          esr_store *store, const void *id, size_t id_len)
{
	memset(x, 0, sizeof *x);
	if ((x->state = malloc(type->state_size)) == NULL)
		return ESR_ENOMEM;
	x->type = type;
	x->store = store;
	x->stream = (esr_stream_id){.type = type->name, .id = id, .id_len = id_len};
	esr__emitter_init(&x->emit);
	return ESR_OK;
}

void esr__exec_free(struct esr__exec *x)
{
	free(x->state);
	esr__emitter_free(&x->emit);
	x->state = NULL;
}

static esr_status apply_recorded(void *ctx, const esr_recorded_event *rec)
{
	struct esr__exec *x = ctx;

	/* A store that skips or repeats a version broke its contract; folding
	 * on would build a state no replay can reproduce. */
	if (rec->version != x->version + 1)
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

static void fill_conflict(const struct esr__exec *x, uint64_t expected,
                          uint64_t actual, uint32_t attempts, esr_conflict *c)
{
	strcpy(c->type, x->type->name); /* checked length at registration */
	memcpy(c->id, x->stream.id, x->stream.id_len);
	c->id_len = x->stream.id_len;
	c->expected = expected;
	c->actual = actual;
	c->attempts = attempts;
}

/* One attempt: handle on the current state, then append what it decided. */
static esr_status attempt(struct esr__exec *x, const void *command,
                          esr_strategy strategy, esr_result *r,
                          esr_append_result *ar)
{
	const esr_event *events;
	esr_status st;
	size_t i;
	int code;

	esr__emitter_reset(&x->emit);
	code = x->type->handle(x->state, command, &x->emit);
	if (x->emit.error != ESR_OK) /* the handler could not say what it meant */
		return x->emit.error;
	if (code != 0) {
		r->rejection = code;
		return ESR_EREJECTED;
	}
	if (x->emit.count == 0)
		return ESR_OK;
	events = esr__emitter_events(&x->emit);
	st = esr_store_append(x->store, &x->stream,
	                      strategy == ESR_OPTIMISTIC ? x->version : ESR_VERSION_ANY,
	                      events, x->emit.count, ar);
	if (st != ESR_OK)
		return st;
	for (i = 0; i < x->emit.count; i++)
		x->type->apply(x->state, &events[i]);
	x->version = ar->version;
	r->appended = (uint32_t)x->emit.count;
	return ESR_OK;
}

esr_status esr__exec_run(struct esr__exec *x, const void *command,
                         esr_strategy strategy, unsigned max_retries,
                         esr_result *r)
{
	esr_append_result ar;
	uint64_t expected;
	esr_status st;

	memset(r, 0, sizeof *r);
	for (;;) {
		r->attempts++;
		expected = x->version;
		st = attempt(x, command, strategy, r, &ar);
		r->version = x->version;
		if (st != ESR_ECONFLICT)
			return st;
		if (strategy == ESR_UNCHECKED) /* an ANY append cannot conflict */
			return ESR_EIO;           /* unless the backend is broken */
		if (r->attempts > max_retries) {
			fill_conflict(x, expected, ar.version, r->attempts, &r->conflict);
			return ESR_ECONFLICT;
		}
		if ((st = esr__exec_catch_up(x)) != ESR_OK)
			return st;
	}
}
