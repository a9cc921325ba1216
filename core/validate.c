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

esr_status esr__check_events(const esr_event *events, size_t n)
{
	size_t i;

	if (events == NULL || n == 0)
		return ESR_EINVAL;
	if (n > ESR_APPEND_MAX)
		return ESR_ETOOBIG;
	for (i = 0; i < n; i++) {
		if (events[i].payload == NULL && events[i].payload_len != 0)
			return ESR_EINVAL;
		if (events[i].payload_len > ESR_PAYLOAD_MAX)
			return ESR_ETOOBIG;
	}
	return ESR_OK;
}
