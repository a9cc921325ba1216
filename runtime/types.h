/*
 * runtime/types.h: the registry of aggregate types, by name. See
 * docs/architecture.md for the map.
 *
 * Registration is rare and lookups are on every command, so lookups take no
 * lock: an entry is written completely, then published by a release store of
 * `count`; a lookup loads `count` with acquire and scans only below it.
 * Entries never change or move once published.
 */
#ifndef ESR_RUNTIME_TYPES_H
#define ESR_RUNTIME_TYPES_H

#include <pthread.h>

#include "esr/esr.h"

struct esr__type {
	esr_aggregate_type def; /* def.name points at name[] */
	char name[ESR_TYPE_NAME_MAX + 1];
};

struct esr__types {
	pthread_mutex_t lock; /* serializes registrations */
	unsigned count;
	struct esr__type entries[ESR_TYPES_MAX];
};

void esr__types_init(struct esr__types *t);
void esr__types_destroy(struct esr__types *t);

/* Check and copy a definition. ESR_EINVAL, ESR_EEXIST or ESR_ETOOBIG. */
esr_status esr__types_add(struct esr__types *t, const esr_aggregate_type *def);

/* Look a name up: ESR_EINVAL/ESR_ETOOBIG for a malformed name, ESR_ENOTYPE. */
esr_status esr__types_find(struct esr__types *t, const char *name,
                           const esr_aggregate_type **out);

#endif /* ESR_RUNTIME_TYPES_H */
