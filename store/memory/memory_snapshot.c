/*
 * store/memory/memory_snapshot.c: the memory store's snapshots (one kept per
 * stream) and checkpoints (a list under snap_lock). docs/architecture.md has
 * the map.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/memory/memory_internal.h"

/* A kept snapshot is never changed: a save replaces it whole. refs (under
 * snap_lock) counts the stream's hold and each load's, so that a load hands
 * it to the caller's function without the lock held. */
struct snap {
	unsigned refs;
	uint64_t version;
	uint32_t format;
	uint32_t len;
	unsigned char data[];
};

struct checkpoint {
	struct checkpoint *next;
	uint64_t position;
	char name[ESR_CHECKPOINT_NAME_MAX + 1];
};

static void snap_release(struct esr__memory_store *ms, struct snap *snap)
{
	unsigned left;

	if (snap == NULL)
		return;
	pthread_mutex_lock(&ms->snap_lock);
	left = --snap->refs;
	pthread_mutex_unlock(&ms->snap_lock);
	if (left == 0)
		free(snap);
}

esr_status esr__memory_snapshot_save(void *impl, const esr_stream_id *sid,
                                     const esr_snapshot *snap)
{
	struct esr__memory_store *ms = impl;
	struct snap *copy, *old;
	struct esr__stream *s;
	esr_status st;

	if ((st = esr__memory_resolve(impl, sid, (void **)&s)) != ESR_OK)
		return st;
	if ((copy = malloc(sizeof *copy + snap->len)) == NULL)
		return ESR_ENOMEM;
	copy->refs = 1;
	copy->version = snap->version;
	copy->format = snap->format;
	copy->len = snap->len;
	if (snap->len)
		memcpy(copy->data, snap->data, snap->len);
	pthread_mutex_lock(&ms->snap_lock);
	old = s->snap;
	s->snap = copy;
	pthread_mutex_unlock(&ms->snap_lock);
	snap_release(ms, old);
	return ESR_OK;
}

/* fn runs without snap_lock, on a held reference: it may call the store
 * (save a migrated snapshot, say) without deadlocking. */
esr_status esr__memory_snapshot_load(void *impl, const esr_stream_id *sid,
                                     esr_snapshot_fn fn, void *ctx)
{
	struct esr__memory_store *ms = impl;
	struct esr__stream *s;
	struct snap *held;
	struct esr__key k;
	esr_status st;

	esr__memory_key(ms, sid, &k);
	if ((s = esr__memory_lookup(ms, &k)) == NULL)
		return ESR_OK;
	pthread_mutex_lock(&ms->snap_lock);
	if ((held = s->snap) != NULL)
		held->refs++;
	pthread_mutex_unlock(&ms->snap_lock);
	if (held == NULL)
		return ESR_OK;
	st = fn(ctx, &(esr_snapshot){held->version, held->format, held->len, held->data});
	snap_release(ms, held);
	return st;
}

static struct checkpoint *checkpoint_find(struct esr__memory_store *ms, const char *name)
{
	struct checkpoint *c;

	for (c = ms->checkpoints; c != NULL && strcmp(c->name, name) != 0; c = c->next)
		;
	return c;
}

esr_status esr__memory_checkpoint_save(void *impl, const char *name, uint64_t position)
{
	struct esr__memory_store *ms = impl;
	esr_status st = ESR_OK;
	struct checkpoint *c;

	pthread_mutex_lock(&ms->snap_lock);
	if ((c = checkpoint_find(ms, name)) == NULL && (c = calloc(1, sizeof *c)) != NULL) {
		strcpy(c->name, name); /* checked: at most ESR_CHECKPOINT_NAME_MAX */
		c->next = ms->checkpoints;
		ms->checkpoints = c;
	}
	if (c != NULL)
		c->position = position;
	else
		st = ESR_ENOMEM;
	pthread_mutex_unlock(&ms->snap_lock);
	return st;
}

esr_status esr__memory_checkpoint_load(void *impl, const char *name, uint64_t *position)
{
	struct esr__memory_store *ms = impl;
	struct checkpoint *c;

	pthread_mutex_lock(&ms->snap_lock);
	c = checkpoint_find(ms, name);
	*position = c ? c->position : 0;
	pthread_mutex_unlock(&ms->snap_lock);
	return ESR_OK;
}

void esr__memory_checkpoints_free(struct esr__memory_store *ms)
{
	struct checkpoint *c;

	while ((c = ms->checkpoints) != NULL) {
		ms->checkpoints = c->next;
		free(c);
	}
}
