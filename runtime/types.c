/*
 * runtime/types.c: the aggregate type registry (see types.h). See
 * docs/architecture.md for the map.
 */
#include <string.h>

#include "core/internal.h"
#include "core/sync.h"
#include "runtime/types.h"

void esr__types_init(struct esr__types *t)
{
	pthread_mutex_init(&t->lock, NULL);
	t->count = 0;
}

void esr__types_destroy(struct esr__types *t)
{
	pthread_mutex_destroy(&t->lock);
}

static esr_status check_def(const esr_aggregate_type *def)
{
	esr_status st;

	if (def == NULL)
		return ESR_EINVAL;
	if ((st = esr__check_type_name(def->name)) != ESR_OK)
		return st;
	if (def->apply == NULL || def->handle == NULL || def->state_size == 0)
		return ESR_EINVAL;
	if (def->state_size > ESR_STATE_MAX)
		return ESR_ETOOBIG;
	/* Snapshots: all three parts or none (a format alone means nothing). */
	if ((def->snapshot_encode == NULL) != (def->snapshot_decode == NULL) ||
	    (def->snapshot_encode == NULL) != (def->snapshot_format == 0))
		return ESR_EINVAL;
	return ESR_OK;
}

static const esr_aggregate_type *scan(struct esr__types *t, unsigned count,
                                      const char *name)
{
	unsigned i;

	for (i = 0; i < count; i++)
		if (strcmp(t->entries[i].name, name) == 0)
			return &t->entries[i].def;
	return NULL;
}

esr_status esr__types_add(struct esr__types *t, const esr_aggregate_type *def)
{
	struct esr__type *e;
	esr_status st;

	if ((st = check_def(def)) != ESR_OK)
		return st;
	pthread_mutex_lock(&t->lock);
	if (scan(t, t->count, def->name) != NULL) {
		st = ESR_EEXIST;
	} else if (t->count == ESR_TYPES_MAX) {
		st = ESR_ETOOBIG;
	} else {
		e = &t->entries[t->count];
		e->def = *def;
		strcpy(e->name, def->name); /* length checked by check_def */
		e->def.name = e->name;
		/* Release: the entry is whole before the count that shows it;
		 * pairs with esr__types_find's acquire after its load. Writers
		 * are serialised by the lock. */
		ck_pr_fence_release();
		ESR_TSAN_RELEASE(&t->count);
		ck_pr_store_uint(&t->count, t->count + 1);
	}
	pthread_mutex_unlock(&t->lock);
	return st;
}

esr_status esr__types_find(struct esr__types *t, const char *name,
                           const esr_aggregate_type **out)
{
	unsigned count;
	esr_status st;

	if ((st = esr__check_type_name(name)) != ESR_OK)
		return st;
	count = ck_pr_load_uint(&t->count);
	ck_pr_fence_acquire(); /* entries below count read as add wrote them */
	ESR_TSAN_ACQUIRE(&t->count);
	*out = scan(t, count, name);
	return *out ? ESR_OK : ESR_ENOTYPE;
}
