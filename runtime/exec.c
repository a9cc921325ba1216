/*
 * runtime/exec.c: load, decide, append, and the optimistic retry loop. See
 * docs/architecture.md for the map.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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
	x->skipped = 0;
}

/* A replay in progress: x, and what the load reports. */
struct replay {
	struct esr__exec *x;
	struct esr__load *info;
	uint64_t anchor; /* a snapshot's version: the read starts at it, skips it */
	int anchored;    /* the anchor event was there */
};

static esr_status apply_recorded(void *ctx, const esr_recorded_event *rec)
{
	struct replay *r = ctx;
	struct esr__exec *x = r->x;

	if (r->anchor != 0 && !r->anchored) { /* proves the stream reaches it */
		if (rec->version != r->anchor)
			return ESR_ECORRUPT;
		r->anchored = 1;
		return ESR_OK;
	}
	/* A store that skips or repeats a version broke its contract; folding
	 * on would build a state no replay can reproduce. */
	if (rec->version != x->version + 1 || rec->version == ESR_VERSION_ANY)
		return ESR_ECORRUPT;
	x->type->apply(x->state, &rec->event);
	x->version = rec->version;
	if (r->info)
		r->info->replayed++;
	return ESR_OK;
}

esr_status esr__exec_catch_up(struct esr__exec *x, struct esr__load *info)
{
	struct replay r = {x, info, 0, 0};

	return esr_store_read(x->store, &x->stream, x->version + 1, apply_recorded, &r);
}

static void reset(struct esr__exec *x)
{
	memset(x->state, 0, x->type->state_size);
	if (x->type->init)
		x->type->init(x->state, x->stream.id, x->stream.id_len);
	x->version = 0;
	x->skipped = 0;
}

/* Decode a stored snapshot into the (freshly reset) state. */
static esr_status take_snapshot(void *ctx, const esr_snapshot *snap)
{
	struct replay *r = ctx;
	const esr_aggregate_type *t = r->x->type;

	r->info->refused_version = snap->version;
	if (snap->version == 0 || snap->version == ESR_VERSION_ANY) {
		snprintf(r->info->refused, sizeof r->info->refused,
		         "version %" PRIu64 " is no stream version", snap->version);
	} else if (snap->format == 0 || snap->format > t->snapshot_format) {
		snprintf(r->info->refused, sizeof r->info->refused,
		         "format %" PRIu32 " is unknown (this type reads 1..%" PRIu32 ")",
		         snap->format, t->snapshot_format);
	} else if (t->snapshot_decode(r->x->state, snap->format, snap->data, snap->len) != 0) {
		snprintf(r->info->refused, sizeof r->info->refused,
		         "snapshot_decode refused it (format %" PRIu32 ", %" PRIu32 " bytes)",
		         snap->format, snap->len);
	} else {
		r->anchor = snap->version;
		return ESR_OK;
	}
	reset(r->x); /* decode may have written part of it */
	return ESR_OK;
}

esr_status esr__exec_load(struct esr__exec *x, struct esr__load *info)
{
	struct esr__load scratch;
	struct replay r = {x, info ? info : &scratch, 0, 0};
	esr_status st;

	memset(r.info, 0, sizeof *r.info);
	reset(x);
	if (x->type->snapshot_format != 0) {
		st = esr_store_snapshot_load(x->store, &x->stream, take_snapshot, &r);
		if (st != ESR_OK && st != ESR_ENOTSUP) { /* cannot read one: replay all */
			snprintf(r.info->refused, sizeof r.info->refused,
			         "the store could not load it (%s)", esr_status_name(st));
			reset(x);
			r.anchor = 0;
		}
	}
	if (r.anchor == 0)
		return esr_store_read(x->store, &x->stream, 1, apply_recorded, &r);
	x->version = r.anchor;
	st = esr_store_read(x->store, &x->stream, r.anchor, apply_recorded, &r);
	if (st == ESR_OK && r.anchored) {
		r.info->snapshot = r.anchor;
		return ESR_OK;
	}
	if (st != ESR_OK && st != ESR_ECORRUPT)
		return st;
	snprintf(r.info->refused, sizeof r.info->refused,
	         "it claims version %" PRIu64 ", beyond the stream", r.anchor);
	r.info->replayed = 0;
	reset(x);
	r.anchor = 0;
	return esr_store_read(x->store, &x->stream, 1, apply_recorded, &r);
}

esr_status esr__exec_encode(const struct esr__exec *x, size_t room, size_t header,
                            void **out, size_t *len)
{
	const esr_aggregate_type *t = x->type;
	size_t need;
	char *buf;

	if (t->snapshot_encode == NULL)
		return ESR_ENOTSUP;
	if ((buf = malloc(header + room)) == NULL)
		return ESR_ENOMEM;
	need = t->snapshot_encode(x->state, buf + header, room);
	if (need > room && need <= ESR_SNAPSHOT_MAX) {
		char *bigger = realloc(buf, header + need);
		if (bigger == NULL) {
			free(buf);
			return ESR_ENOMEM;
		}
		buf = bigger;
		room = need;
		need = t->snapshot_encode(x->state, buf + header, room);
	}
	if (need == 0 || need > room) {
		free(buf);
		return need == 0 ? ESR_ENOTSUP : ESR_ETOOBIG;
	}
	*out = buf;
	*len = need;
	return ESR_OK;
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
	x->skipped |= version != x->version + em->count;
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
		esr__emitter_restamp(em);
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
		if ((st = esr__exec_catch_up(x, NULL)) != ESR_OK)
			return st;
	}
}
