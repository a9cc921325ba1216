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

#define SLOTS_FIRST 8

/*
 * The index: open addressing with linear probing, each slot the id's hash
 * beside its record, at most half full. A look-up of an id that is not
 * there (every append's case) reads one or two slots, usually on one cache
 * line, and no record unless a full hash matches.
 */
struct esr__ids_slot {
	uint64_t hash;
	struct esr__mem_cmd *cmd; /* NULL: empty */
};

struct esr__ids {
	pthread_mutex_t lock;
	size_t count, cap; /* cap: a power of two */
	struct esr__ids_slot *slots;
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
	if ((fresh->slots = calloc(SLOTS_FIRST, sizeof *fresh->slots)) == NULL) {
		free(fresh);
		return NULL;
	}
	fresh->cap = SLOTS_FIRST;
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

int esr__memory_ids_find(const struct esr__ids *ids, const esr_command_id *id,
                         uint64_t *first, uint64_t *last)
{
	uint64_t h = hash_of(id->bytes, id->len);
	size_t i = h & (ids->cap - 1);
	const struct esr__mem_cmd *c;

	for (; (c = ids->slots[i].cmd) != NULL; i = (i + 1) & (ids->cap - 1))
		if (ids->slots[i].hash == h && c->len == id->len &&
		    memcmp(c->bytes, id->bytes, id->len) == 0) {
			*first = c->first;
			*last = c->last;
			return 1;
		}
	return 0;
}

struct esr__mem_cmd *esr__memory_cmd_new(const esr_command_id *id)
{
	struct esr__mem_cmd *c = malloc(sizeof *c + id->len);

	if (c != NULL) {
		c->first = c->last = 0;
		c->len = (uint32_t)id->len;
		memcpy(c->bytes, id->bytes, id->len);
	}
	return c;
}

static void place(struct esr__ids_slot *slots, size_t cap, uint64_t h, struct esr__mem_cmd *c)
{
	size_t i = h & (cap - 1);

	while (slots[i].cmd != NULL)
		i = (i + 1) & (cap - 1);
	slots[i] = (struct esr__ids_slot){h, c};
}

int esr__memory_ids_reserve(struct esr__ids *ids, size_t more)
{
	struct esr__ids_slot *slots;
	size_t cap = ids->cap, i;

	while ((ids->count + more) * 2 > cap)
		cap *= 2;
	if (cap == ids->cap)
		return 0;
	if ((slots = calloc(cap, sizeof *slots)) == NULL)
		return -1;
	for (i = 0; i < ids->cap; i++)
		if (ids->slots[i].cmd != NULL)
			place(slots, cap, ids->slots[i].hash, ids->slots[i].cmd);
	free(ids->slots);
	ids->slots = slots;
	ids->cap = cap;
	return 0;
}

void esr__memory_ids_add(struct esr__ids *ids, struct esr__mem_cmd *c, uint64_t first,
                         uint64_t last)
{
	c->first = first;
	c->last = last;
	place(ids->slots, ids->cap, hash_of(c->bytes, c->len), c);
	ids->count++;
}

void esr__memory_ids_free(struct esr__ids *ids)
{
	size_t i;

	if (ids == NULL)
		return;
	for (i = 0; i < ids->cap; i++)
		free(ids->slots[i].cmd);
	free(ids->slots);
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
