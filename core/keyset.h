/*
 * core/keyset.h: a concurrent set of objects named by (type name, id bytes),
 * the shape both the memory store (streams) and the runtime (live actors)
 * need.
 *
 * Objects embed a struct esr__key as their first member. Lookups are
 * lock-free; inserts and removals take the lock of one of SHARDS shards,
 * because each shard is a Concurrency Kit ck_hs set, which allows a single
 * writer beside any number of readers. Publication: an inserted object's
 * fields are written before esr__keyset_insert, which fences and publishes
 * it; a reader that finds it sees them (ThreadSanitizer is told, too).
 * A removed object may still be in the hands of a reader that found it just
 * before: the caller must defer freeing it (the runtime uses ck_epoch).
 */
#ifndef ESR_CORE_KEYSET_H
#define ESR_CORE_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#include "esr/status.h"

struct esr__key {
	uint64_t hash;
	const char *type;
	const uint8_t *id;
	uint32_t type_len; /* lengths are checked before a key is made: */
	uint32_t id_len;   /* ESR_TYPE_NAME_MAX and ESR_ID_MAX fit */
};

struct esr__keyset;

esr_status esr__keyset_create(struct esr__keyset **out);

/* Frees the set and, through free_object (may be NULL), every object in it.
 * No other call may be running. */
void esr__keyset_destroy(struct esr__keyset *ks, void (*free_object)(struct esr__key *));

/* Builds a probe key (pointing at the caller's memory) with its hash. */
void esr__keyset_key(const struct esr__keyset *ks, const char *type,
                     const void *id, size_t id_len, struct esr__key *k);

/* The same in two steps, for a caller that makes many keys of one type:
 * the type's part of the hash once (esr__keyset_type), then each key from
 * it (esr__keyset_key_of). t->name must outlive the keys. */
struct esr__key_type {
	const char *name;
	uint32_t len;
	uint64_t hash;
};
void esr__keyset_type(const struct esr__keyset *ks, const char *type,
                      struct esr__key_type *t);
void esr__keyset_key_of(const struct esr__key_type *t, const void *id, size_t id_len,
                        struct esr__key *k);

/* Bytes needed to keep a copy of k's names, and the copy itself: dst gets
 * k's hash and points at `storage`, which receives type, NUL, id. */
size_t esr__key_storage(const struct esr__key *k);
void esr__key_copy(struct esr__key *dst, const struct esr__key *k, void *storage);

/* The object with key k, or NULL. Lock-free. */
struct esr__key *esr__keyset_get(struct esr__keyset *ks, const struct esr__key *k);

/*
 * Hint the first `bytes` of the object k probably names into the cache
 * (the first line for writing), without reading it: a caller about to look
 * up many keys issues their misses together first. The table is probed by
 * hash alone, so the hint may fall on another object (harmless) or on one
 * being freed (a hint reads nothing). Lock-free; the object need not be
 * kept alive.
 *
 * Returns the object hinted, or NULL: a candidate, not an answer. A caller
 * that kept it alive since before this call (a read section the frees wait
 * for) may confirm it with esr__keyset_is and use it instead of
 * esr__keyset_get, which would probe the table again; it then has what a
 * get in that section could have returned.
 */
struct esr__key *esr__keyset_prefetch(struct esr__keyset *ks, const struct esr__key *k,
                                      uint32_t bytes);

/* Whether obj, a candidate from esr__keyset_prefetch, has key k. */
int esr__keyset_is(const struct esr__key *obj, const struct esr__key *k);

/*
 * Inserts `fresh` (its key fully built) unless an object with an equal key is
 * there. Returns the object in the set afterwards: fresh, or the one that won
 * the race (the caller then still owns fresh). NULL: out of memory.
 */
struct esr__key *esr__keyset_insert(struct esr__keyset *ks, struct esr__key *fresh);

/* Removes obj, which must be in the set. */
void esr__keyset_remove(struct esr__keyset *ks, struct esr__key *obj);

/*
 * Calls visit for every object, one shard at a time, holding that shard's
 * writer lock: visit may call esr__keyset_remove_locked on the object, but
 * must not insert or remove anything else.
 */
void esr__keyset_scan(struct esr__keyset *ks,
                      void (*visit)(void *ctx, struct esr__keyset *ks, struct esr__key *obj),
                      void *ctx);
void esr__keyset_remove_locked(struct esr__keyset *ks, struct esr__key *obj);

#endif /* ESR_CORE_KEYSET_H */
