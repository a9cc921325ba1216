/* core/status.c: status names, sentences, and the conflict's one-line form. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "esr/status.h"

struct status_text {
	const char *name;
	const char *sentence;
};

/* Indexed by esr_status; keep in step with the enum. */
static const struct status_text texts[] = {
	[ESR_OK] = {"ESR_OK", "success"},
	[ESR_EINVAL] = {"ESR_EINVAL", "invalid argument: a required argument is missing, empty or malformed"},
	[ESR_ENOMEM] = {"ESR_ENOMEM", "out of memory: an allocation failed and nothing was changed"},
	[ESR_ETOOBIG] = {"ESR_ETOOBIG", "argument too large: it exceeds a documented limit"},
	[ESR_ENOTYPE] = {"ESR_ENOTYPE", "unknown aggregate type: no type of that name is registered"},
	[ESR_EEXIST] = {"ESR_EEXIST", "already exists: an aggregate type of that name is already registered"},
	[ESR_ECONFLICT] = {"ESR_ECONFLICT", "optimistic concurrency conflict: the stream is not at the expected version"},
	[ESR_EREJECTED] = {"ESR_EREJECTED", "command rejected by the aggregate's handler"},
	[ESR_EBUSY] = {"ESR_EBUSY", "busy: a bounded queue is full, a result is not ready yet, or the store's directory is held by another store"},
	[ESR_ESHUTDOWN] = {"ESR_ESHUTDOWN", "shut down: the object is stopping or stopped"},
	[ESR_EIO] = {"ESR_EIO", "I/O error"},
	[ESR_ECORRUPT] = {"ESR_ECORRUPT", "corrupt data: stored data failed an integrity check"},
	[ESR_ECANCELED] = {"ESR_ECANCELED", "canceled: a callback asked to stop"},
	[ESR_ENOTSUP] = {"ESR_ENOTSUP", "not supported by this backend"},
	[ESR_ETIMEDOUT] = {"ESR_ETIMEDOUT", "timed out: the wait ended before completion"},
	[ESR_EUNKNOWN] = {"ESR_EUNKNOWN", "outcome unknown: the write may or may not have taken effect; read the stream to find out"},
	[ESR_EDUPLICATE] = {"ESR_EDUPLICATE", "duplicate command: its command id is already recorded for this stream, so nothing was appended"},
};

static const struct status_text *lookup(esr_status status)
{
	if ((unsigned)status < sizeof texts / sizeof texts[0] && texts[status].name)
		return &texts[status];
	return NULL;
}

const char *esr_strerror(esr_status status)
{
	const struct status_text *t = lookup(status);

	return t ? t->sentence : "unknown esr status code";
}

const char *esr_status_name(esr_status status)
{
	const struct status_text *t = lookup(status);

	return t ? t->name : "ESR_E?";
}

void esr__put_id(char *buf, size_t size, size_t *at, const uint8_t *id, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char esc[4];
	size_t i, k, len;

	for (i = 0; i < n; i++) {
		const char *piece = esc;
		if (id[i] > ' ' && id[i] <= '~' && id[i] != '\\') {
			esc[0] = (char)id[i];
			len = 1;
		} else {
			esc[0] = '\\';
			esc[1] = 'x';
			esc[2] = hex[id[i] >> 4];
			esc[3] = hex[id[i] & 15];
			len = 4;
		}
		for (k = 0; k < len; k++, (*at)++)
			if (*at + 1 < size)
				buf[*at] = piece[k];
	}
}

esr_status esr_conflict_format(const esr_conflict *c, char *buf, size_t size)
{
	size_t at;
	int n;

	if (c == NULL || buf == NULL || size == 0)
		return ESR_EINVAL;
	n = snprintf(buf, size, "esr: optimistic conflict: type=%.*s id=",
	             ESR_TYPE_NAME_MAX, c->type);
	at = (size_t)n;
	esr__put_id(buf, size, &at, c->id, c->id_len < ESR_ID_MAX ? c->id_len : ESR_ID_MAX);
	if (at < size) {
		n = snprintf(buf + at, size - at,
		             " expected-version=%" PRIu64 " actual-version=%" PRIu64
		             " attempts=%" PRIu32,
		             c->expected, c->actual, c->attempts);
		at += (size_t)n;
	}
	buf[at < size ? at : size - 1] = '\0';
	return at < size ? ESR_OK : ESR_ETOOBIG;
}
