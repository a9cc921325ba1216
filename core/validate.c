/* core/validate.c: the argument checks every public entry point shares. */
#include <string.h>

#include "core/internal.h"

esr_status esr__check_type_name(const char *name)
{
	size_t i;

	if (name == NULL || name[0] == '\0')
		return ESR_EINVAL;
	for (i = 0; name[i] != '\0'; i++) {
		if (i == ESR_TYPE_NAME_MAX)
			return ESR_ETOOBIG;
		/* Printable and space-free, so the name reads unambiguously in logs
		 * and in the conflict's one-line form. */
		if (name[i] <= ' ' || name[i] > '~')
			return ESR_EINVAL;
	}
	return ESR_OK;
}

esr_status esr__check_id(const void *id, size_t id_len)
{
	if (id == NULL || id_len == 0)
		return ESR_EINVAL;
	return id_len > ESR_ID_MAX ? ESR_ETOOBIG : ESR_OK;
}

esr_status esr__check_stream(const esr_stream_id *stream)
{
	esr_status st;

	if (stream == NULL)
		return ESR_EINVAL;
	if ((st = esr__check_type_name(stream->type)) != ESR_OK)
		return st;
	return esr__check_id(stream->id, stream->id_len);
}

esr_status esr__check_command_id(const esr_command_id *id)
{
	if (id->bytes == NULL && id->len == 0)
		return ESR_OK;
	if (id->bytes == NULL || id->len == 0)
		return ESR_EINVAL;
	return id->len > ESR_COMMAND_ID_MAX ? ESR_ETOOBIG : ESR_OK;
}

int esr__command_id_equal(const esr_command_id *a, const esr_command_id *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->bytes, b->bytes, a->len) == 0);
}

int esr__command_run_starts(const esr_event *events, size_t i)
{
	return events[i].command_id.len != 0 &&
	       (i == 0 || !esr__command_id_equal(&events[i].command_id, &events[i - 1].command_id));
}

int esr__events_have_ids(const esr_event *events, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (events[i].command_id.len != 0)
			return 1;
	return 0;
}

/* The runs of equal ids are one command's events each: an id that comes back
 * after another would be two commands with one id in one append. */
static esr_status check_id_runs(const esr_event *events, size_t n)
{
	size_t i, j;

	for (i = 1; i < n; i++) {
		const esr_command_id *id = &events[i].command_id;

		if (id->len == 0 || esr__command_id_equal(id, &events[i - 1].command_id))
			continue; /* no id, or the same run */
		for (j = 0; j + 1 < i; j++)
			if (esr__command_id_equal(id, &events[j].command_id))
				return ESR_EINVAL;
	}
	return ESR_OK;
}

esr_status esr__check_events(const esr_event *events, size_t n)
{
	esr_status st;
	size_t i;
	int ids = 0;

	if (events == NULL || n == 0)
		return ESR_EINVAL;
	if (n > ESR_APPEND_MAX)
		return ESR_ETOOBIG;
	for (i = 0; i < n; i++) {
		if (events[i].payload == NULL && events[i].payload_len != 0)
			return ESR_EINVAL;
		if (events[i].payload_len > ESR_PAYLOAD_MAX)
			return ESR_ETOOBIG;
		if ((st = esr__check_command_id(&events[i].command_id)) != ESR_OK)
			return st;
		ids |= events[i].command_id.len != 0;
	}
	return ids ? check_id_runs(events, n) : ESR_OK;
}
