/*
 * runtime/emitter.c: collecting the events a handler decides on. See
 * docs/architecture.md for the map.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "runtime/emitter.h"

void esr__emitter_init(esr_emitter *em)
{
	memset(em, 0, sizeof *em);
}

void esr__emitter_reset(esr_emitter *em)
{
	em->count = 0;
	em->used = 0;
	em->error = ESR_OK;
}

void esr__emitter_free(esr_emitter *em)
{
	free(em->events);
	free(em->offsets);
	free(em->bytes);
	esr__emitter_init(em);
}

static esr_status grow_events(esr_emitter *em)
{
	size_t cap = em->cap ? em->cap * 2 : 4;
	esr_event *events;
	size_t *offsets;

	if (cap > ESR_APPEND_MAX)
		cap = ESR_APPEND_MAX;
	if ((events = realloc(em->events, cap * sizeof *events)) == NULL)
		return ESR_ENOMEM;
	em->events = events;
	if ((offsets = realloc(em->offsets, cap * sizeof *offsets)) == NULL)
		return ESR_ENOMEM;
	em->offsets = offsets;
	em->cap = cap;
	return ESR_OK;
}

static esr_status grow_bytes(esr_emitter *em, size_t need)
{
	size_t cap = em->bytes_cap ? em->bytes_cap : 256;
	uint8_t *bytes;

	while (cap < need)
		cap *= 2;
	if ((bytes = realloc(em->bytes, cap)) == NULL)
		return ESR_ENOMEM;
	em->bytes = bytes;
	em->bytes_cap = cap;
	return ESR_OK;
}

static esr_status emit(esr_emitter *em, const esr_event *ev)
{
	esr_event *slot;

	if (ev->payload == NULL && ev->payload_len != 0)
		return ESR_EINVAL;
	if (ev->payload_len > ESR_PAYLOAD_MAX || em->count == ESR_APPEND_MAX)
		return ESR_ETOOBIG;
	if (em->count == em->cap && grow_events(em) != ESR_OK)
		return ESR_ENOMEM;
	if (em->used + ev->payload_len > em->bytes_cap &&
	    grow_bytes(em, em->used + ev->payload_len) != ESR_OK)
		return ESR_ENOMEM;
	if (ev->payload_len)
		memcpy(em->bytes + em->used, ev->payload, ev->payload_len);
	slot = &em->events[em->count];
	*slot = *ev;
	slot->payload = NULL;
	slot->command_id = (esr_command_id){NULL, 0}; /* the command's, set by its turn */
	if (slot->meta.timestamp_ns == 0) {
		if (em->stamp_ns == 0)
			em->stamp_ns = esr__now_ns();
		slot->meta.timestamp_ns = em->stamp_ns;
	}
	em->offsets[em->count++] = em->used;
	em->used += ev->payload_len;
	return ESR_OK;
}

/* Record the first failure; later emits fail with it too. */
static esr_status sticky(esr_emitter *em, esr_status st)
{
	if (st != ESR_OK && em->error == ESR_OK)
		em->error = st;
	return st;
}

esr_status esr_emit_event(esr_emitter *em, const esr_event *ev)
{
	if (em == NULL)
		return ESR_EINVAL;
	if (em->error != ESR_OK)
		return em->error;
	if (ev == NULL)
		return sticky(em, ESR_EINVAL);
	return sticky(em, emit(em, ev));
}

esr_status esr_emit(esr_emitter *em, uint32_t type, const void *payload, size_t len)
{
	esr_event ev = {.type = type, .payload = payload};

	if (em == NULL)
		return ESR_EINVAL;
	if (len > ESR_PAYLOAD_MAX) /* before narrowing to payload_len */
		return sticky(em, ESR_ETOOBIG);
	ev.payload_len = (uint32_t)len;
	return esr_emit_event(em, &ev);
}

const esr_event *esr__emitter_events(esr_emitter *em)
{
	size_t i;

	for (i = 0; i < em->count; i++)
		em->events[i].payload =
			em->events[i].payload_len ? em->bytes + em->offsets[i] : NULL;
	return em->events;
}
