/*
 * core/keyset.c: sharded ck_hs sets keyed by (type name, id bytes).
 *
 * When a ck_hs set grows it hands its old table back with defer = true,
 * because readers may still be probing it. We keep such tables on the shard's
 * `retired` list until the set is destroyed: each is at most half the size of
 * the next, so together they stay smaller than the live table, and the read
 * path needs no epoch protection of its own.
 */
#include <ck_hs.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/internal.h"
#include "core/keyset.h"
#include "core/sync.h"

#define SHARD_BITS 6
#define SHARDS (1u << SHARD_BITS)
#define SHARD_INITIAL_CAPACITY 64

/* Header in front of every table ck_hs allocates, to chain it when retired. */
struct retired {
	struct retired *next;
	void *pad; /* keeps the table 16-byte aligned */
};

struct shard {
	pthread_mutex_t lock; /* the single ck_hs writer */
	ck_hs_t set;
	struct retired *retired; /* guarded by lock */
} CK_CC_CACHELINE;

struct esr__keyset {
	struct shard shards[SHARDS];
	uint64_t seed;
};

/*
 * ck_malloc's free callback has no context argument, so the shard whose
 * write is running is passed to it through this thread-local. ck_hs only
 * frees with defer = true inside the writes we make under the shard lock.
 */
static _Thread_local struct shard *writing;

static void *hs_malloc(size_t n)
{
	struct retired *r = malloc(sizeof *r + n);

	return r ? r + 1 : NULL;
}

static void hs_free(void *p, size_t n, bool defer)
{
	struct retired *r;

	(void)n;
	if (p == NULL)
		return;
	r = (struct retired *)p - 1;
	if (!defer) {
		free(r);
	} else if (writing != NULL) {
		r->next = writing->retired;
		writing->retired = r;
	}
	/* defer outside a write cannot happen; leaking beats a use-after-free. */
}

static void *hs_realloc(void *p, size_t old, size_t n, bool defer)
{
	void *q = hs_malloc(n);

	if (q != NULL && p != NULL) {
		memcpy(q, p, old < n ? old : n);
		hs_free(p, old, defer);
	}
	return q;
}

static struct ck_malloc hs_allocator = {
	.malloc = hs_malloc,
	.realloc = hs_realloc,
	.free = hs_free,
};

static unsigned long key_hash(const void *object, unsigned long seed)
{
	(void)seed; /* already folded in when the key was built */
	return (unsigned long)((const struct esr__key *)object)->hash;
}

/* A probe key with this type_len asks for a prefetch (esr__keyset_prefetch):
 * its id_len is how many bytes of the object to hint. */
#define PREFETCH_PROBE UINT32_MAX

static bool key_equal(const void *a, const void *b)
{
	const struct esr__key *x = a, *y = b;
	uint32_t at;

	if (y->type_len == PREFETCH_PROBE) {
		/* Hint the object's lines without reading them (the first, with
		 * the key, for writing), and take the first candidate ck_hs
		 * offers (its packed hash bits matched): a wrong one only
		 * wastes a hint. */
		__builtin_prefetch(a, 1, 3);
		for (at = 64; at < y->id_len; at += 64)
			__builtin_prefetch((const char *)a + at, 0, 3);
		return true;
	}
	/* ck_hs calls this on stored objects from inside ck_hs_get, before the
	 * caller sees the pointer: the acquire for the object's publication has
	 * to be here. (Acquiring a stack-built probe key is a no-op.) */
	ESR_TSAN_ACQUIRE(a);
	ESR_TSAN_ACQUIRE(b);
	return x->hash == y->hash && x->id_len == y->id_len &&
	       x->type_len == y->type_len &&
	       memcmp(x->id, y->id, x->id_len) == 0 &&
	       memcmp(x->type, y->type, x->type_len) == 0;
}

static struct shard *shard_of(struct esr__keyset *ks, const struct esr__key *k)
{
	return &ks->shards[k->hash >> (64 - SHARD_BITS)];
}

static void shard_destroy(struct shard *sh, void (*free_object)(struct esr__key *))
{
	ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
	struct retired *r;
	void *object;

	while (free_object && ck_hs_next(&sh->set, &it, &object))
		free_object(object);
	ck_hs_destroy(&sh->set);
	while ((r = sh->retired) != NULL) {
		sh->retired = r->next;
		free(r);
	}
	pthread_mutex_destroy(&sh->lock);
}

esr_status esr__keyset_create(struct esr__keyset **out)
{
	struct esr__keyset *ks;
	unsigned i;

	if (posix_memalign((void **)&ks, CK_MD_CACHELINE, sizeof *ks) != 0)
		return ESR_ENOMEM;
	ks->seed = esr__hash_mix((uint64_t)(uintptr_t)ks ^ esr__now_ns());
	for (i = 0; i < SHARDS; i++) {
		struct shard *sh = &ks->shards[i];
		sh->retired = NULL;
		if (!ck_hs_init(&sh->set, CK_HS_MODE_SPMC | CK_HS_MODE_OBJECT, key_hash,
		                key_equal, &hs_allocator, SHARD_INITIAL_CAPACITY,
		                (unsigned long)ks->seed))
			break;
		pthread_mutex_init(&sh->lock, NULL);
	}
	if (i < SHARDS) {
		while (i-- > 0)
			shard_destroy(&ks->shards[i], NULL);
		free(ks);
		return ESR_ENOMEM;
	}
	*out = ks;
	return ESR_OK;
}

void esr__keyset_destroy(struct esr__keyset *ks, void (*free_object)(struct esr__key *))
{
	unsigned i;

	if (ks == NULL)
		return;
	for (i = 0; i < SHARDS; i++)
		shard_destroy(&ks->shards[i], free_object);
	free(ks);
}

void esr__keyset_type(const struct esr__keyset *ks, const char *type,
                      struct esr__key_type *t)
{
	t->name = type;
	t->len = (uint32_t)strlen(type);
	/* Hash the type with its NUL so ("ab","c") and ("a","bc") differ. */
	t->hash = esr__hash_bytes(ks->seed, type, t->len + 1);
}

void esr__keyset_key_of(const struct esr__key_type *t, const void *id, size_t id_len,
                        struct esr__key *k)
{
	k->type = t->name;
	k->type_len = t->len;
	k->id = id;
	k->id_len = (uint32_t)id_len;
	k->hash = esr__hash_bytes(t->hash, id, id_len);
}

void esr__keyset_key(const struct esr__keyset *ks, const char *type, const void *id,
                     size_t id_len, struct esr__key *k)
{
	struct esr__key_type t;

	esr__keyset_type(ks, type, &t);
	esr__keyset_key_of(&t, id, id_len, k);
}

size_t esr__key_storage(const struct esr__key *k)
{
	return k->type_len + 1 + k->id_len;
}

void esr__key_copy(struct esr__key *dst, const struct esr__key *k, void *storage)
{
	char *names = storage;

	memcpy(names, k->type, k->type_len + 1);
	memcpy(names + k->type_len + 1, k->id, k->id_len);
	*dst = *k;
	dst->type = names;
	dst->id = (const uint8_t *)names + k->type_len + 1;
}

struct esr__key *esr__keyset_get(struct esr__keyset *ks, const struct esr__key *k)
{
	struct esr__key *o = ck_hs_get(&shard_of(ks, k)->set, k->hash, k);

	if (o != NULL)
		ESR_TSAN_ACQUIRE(o);
	return o;
}

struct esr__key *esr__keyset_prefetch(struct esr__keyset *ks, const struct esr__key *k,
                                      uint32_t bytes)
{
	struct esr__key probe = *k;

	probe.type_len = PREFETCH_PROBE;
	probe.id_len = bytes;
	return ck_hs_get(&shard_of(ks, k)->set, k->hash, &probe);
}

int esr__keyset_is(const struct esr__key *obj, const struct esr__key *k)
{
	return key_equal(obj, k);
}

struct esr__key *esr__keyset_insert(struct esr__keyset *ks, struct esr__key *fresh)
{
	struct shard *sh = shard_of(ks, fresh);
	struct esr__key *o;

	pthread_mutex_lock(&sh->lock);
	o = ck_hs_get(&sh->set, fresh->hash, fresh); /* someone may have won */
	if (o == NULL) {
		ck_pr_fence_store(); /* fresh's fields before its publication */
		ESR_TSAN_RELEASE(fresh);
		writing = sh;
		if (ck_hs_put(&sh->set, fresh->hash, fresh))
			o = fresh;
		writing = NULL;
	}
	pthread_mutex_unlock(&sh->lock);
	return o;
}

void esr__keyset_remove_locked(struct esr__keyset *ks, struct esr__key *obj)
{
	struct shard *sh = shard_of(ks, obj);

	writing = sh;
	ck_hs_remove(&sh->set, obj->hash, obj);
	writing = NULL;
}

void esr__keyset_remove(struct esr__keyset *ks, struct esr__key *obj)
{
	struct shard *sh = shard_of(ks, obj);

	pthread_mutex_lock(&sh->lock);
	esr__keyset_remove_locked(ks, obj);
	pthread_mutex_unlock(&sh->lock);
}

void esr__keyset_scan(struct esr__keyset *ks,
                      void (*visit)(void *ctx, struct esr__keyset *ks, struct esr__key *obj),
                      void *ctx)
{
	unsigned i;

	for (i = 0; i < SHARDS; i++) {
		struct shard *sh = &ks->shards[i];
		ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
		void *object;

		pthread_mutex_lock(&sh->lock);
		while (ck_hs_next(&sh->set, &it, &object))
			visit(ctx, ks, object);
		pthread_mutex_unlock(&sh->lock);
	}
}
