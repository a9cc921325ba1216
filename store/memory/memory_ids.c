/*
 * store/memory/memory_ids.c: the memory store's command ids (esr/store.h):
 * per stream, the ids its appends carried and the versions their events got.
 *
 * A stream gets its index at its first append with an id (`ids`, installed
 * by CAS, never freed before the stream), so a stream that never sees one
 * pays one NULL pointer. The index's mutex serialises the appends with ids
 * to that stream: look the ids up, claim versions, fill and publish, record
 * the ids, all under it, so of two appends racing with one id the second
 * finds the first's record. Appends without ids never take it; they claim
 * versions beside it with the usual CAS, which is all the version check
 * needs. An id is recorded after its events are published, so whoever finds
 * it under the mutex can read them. Ids are kept as long as the stream: for
 * as long as the store is open.
 */
#include <ck_pr.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/internal.h"
#include "core/sync.h"
#include "store/memory/memory_internal.h"

#define BUCKETS_FIRST 8

struct esr__ids {
	pthread_mutex_t lock;
	size_t count, nbuckets;
	struct esr__cmd **buckets;
};

static uint64_t hash_of(const void *bytes, size_t len)
{
	return esr__hash_bytes(0x6964u, bytes, len);
}

struct esr__ids *esr__memory_ids(struct esr__stream *s)
{
	struct esr__ids *ids = ck_pr_load_ptr(&s->ids), *fresh;

	if (ids != NULL) {
		ESR_TSAN_ACQUIRE(ids);
		return ids;
	}
	if ((fresh = calloc(1, sizeof *fresh)) == NULL)
		return NULL;
	if ((fresh->buckets = calloc(BUCKETS_FIRST, sizeof *fresh->buckets)) == NULL) {
		free(fresh);
		return NULL;
	}
	fresh->nbuckets = BUCKETS_FIRST;
	pthread_mutex_init(&fresh->lock, NULL);
	/* Initialised, then published: a loser's load depends on the pointer. */
	ck_pr_fence_store();
	ESR_TSAN_RELEASE(fresh);
	if (ck_pr_cas_ptr(&s->ids, NULL, fresh))
		return fresh;
	esr__memory_ids_free(fresh);
	ids = ck_pr_load_ptr(&s->ids);
	ESR_TSAN_ACQUIRE(ids);
	return ids;
}

void esr__memory_ids_lock(struct esr__ids *ids)
{
	pthread_mutex_lock(&ids->lock);
}

void esr__memory_ids_unlock(struct esr__ids *ids)
{
	pthread_mutex_unlock(&ids->lock);
}

/* Under the lock: the record of id, or NULL. */
static const struct esr__cmd *find(const struct esr__ids *ids, const void *bytes, size_t len)
{
	uint64_t h = hash_of(bytes, len);
	const struct esr__cmd *c;

	for (c = ids->buckets[h & (ids->nbuckets - 1)]; c != NULL; c = c->next)
		if (c->hash == h && c->len == len && memcmp(c->bytes, bytes, len) == 0)
			return c;
	return NULL;
}

int esr__memory_ids_find(const struct esr__ids *ids, const esr_command_id *id,
                         uint64_t *first, uint64_t *last)
{
	const struct esr__cmd *c = find(ids, id->bytes, id->len);

	if (c == NULL)
		return 0;
	*first = c->first;
	*last = c->last;
	return 1;
}

struct esr__cmd *esr__memory_cmd_new(const esr_command_id *id)
{
	struct esr__cmd *c = malloc(sizeof *c + id->len);

	if (c != NULL) {
		c->next = NULL;
		c->hash = hash_of(id->bytes, id->len);
		c->first = c->last = 0;
		c->len = (uint32_t)id->len;
		memcpy(c->bytes, id->bytes, id->len);
	}
	return c;
}

/* Twice the buckets, when they are as many as the records; best effort: a
 * failed allocation only leaves the chains longer. */
static void grow(struct esr__ids *ids)
{
	size_t n = ids->nbuckets * 2, i;
	struct esr__cmd **b = calloc(n, sizeof *b), *c, *next;

	if (b == NULL)
		return;
	for (i = 0; i < ids->nbuckets; i++)
		for (c = ids->buckets[i]; c != NULL; c = next) {
			next = c->next;
			c->next = b[c->hash & (n - 1)];
			b[c->hash & (n - 1)] = c;
		}
	free(ids->buckets);
	ids->buckets = b;
	ids->nbuckets = n;
}

void esr__memory_ids_add(struct esr__ids *ids, struct esr__cmd *c, uint64_t first,
                         uint64_t last)
{
	struct esr__cmd **b;

	if (ids->count >= ids->nbuckets)
		grow(ids);
	c->first = first;
	c->last = last;
	b = &ids->buckets[c->hash & (ids->nbuckets - 1)];
	c->next = *b;
	*b = c;
	ids->count++;
}

void esr__memory_ids_free(struct esr__ids *ids)
{
	struct esr__cmd *c, *next;
	size_t i;

	if (ids == NULL)
		return;
	for (i = 0; i < ids->nbuckets; i++)
		for (c = ids->buckets[i]; c != NULL; c = next) {
			next = c->next;
			free(c);
		}
	free(ids->buckets);
	pthread_mutex_destroy(&ids->lock);
	free(ids);
}

esr_status esr__memory_command(void *impl, const esr_stream_id *sid, const void *id,
                               size_t len, uint64_t *first, uint64_t *last)
{
	esr_command_id cid = {id, len};
	struct esr__stream *s;
	struct esr__ids *ids;
	struct esr__key k;

	*first = *last = 0;
	esr__memory_key(impl, sid, &k);
	if ((s = esr__memory_lookup(impl, &k)) == NULL)
		return ESR_OK;
	if ((ids = ck_pr_load_ptr(&s->ids)) == NULL)
		return ESR_OK;
	ESR_TSAN_ACQUIRE(ids);
	pthread_mutex_lock(&ids->lock);
	if (!esr__memory_ids_find(ids, &cid, first, last))
		*first = *last = 0;
	pthread_mutex_unlock(&ids->lock);
	return ESR_OK;
}
