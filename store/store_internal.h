/*
 * store/store_internal.h: what store/store.c shares with the backends
 * (store/memory, store/file, store/pg), the subscriptions and the runtime's
 * actors. docs/architecture.md has the map.
 */
#ifndef ESR_STORE_STORE_INTERNAL_H
#define ESR_STORE_STORE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "esr/esr.h"

/*
 * For the runtime's actors. esr__store_resolve sets *handle to the backend's
 * handle for the stream, or NULL when the backend has none (then appends go
 * by id). esr__store_append_built appends events an emitter built, which are
 * valid by construction, to a stream whose id was checked when its actor was
 * created: no argument checks, through the handle when there is one.
 */
esr_status esr__store_resolve(esr_store *s, const esr_stream_id *stream, void **handle);
/* The backend behind s, if its vtable is vt (a backend's own extra calls). */
esr_status esr__store_impl(esr_store *s, const esr_store_vtable *vt, void **impl);
esr_status esr__store_append_built(esr_store *s, const esr_stream_id *stream,
                                   void *handle, uint64_t expected,
                                   const esr_event *events, size_t n,
                                   esr_append_cb done, void *ctx);

/*
 * A hint that the stream behind `handle` will be appended to soon, so the
 * worker can start the cache misses of several actors' appends at once
 * instead of taking them one after another. depth 0 asks for the handle's
 * own memory; each deeper one, issued later, for what the one before
 * reached (it reads that memory, so only after it had time to arrive): the
 * memory store goes to depth 2. Never blocks,
 * never fails, and does nothing on a backend that gave none (only the memory
 * store does: the durable ones wait on the disk or the network, not on the
 * cache). esr__store_set_prefetch is the backend's side, set once at open.
 */
typedef void esr__prefetch_fn(void *impl, void *handle, int depth);
/* A backend whose appends always complete inside the append call, on the
 * caller's thread, says so at open (the memory store); the runtime then may
 * keep several commands' completions for one hand-over. */
void esr__store_set_inline(esr_store *s);
int esr__store_completes_inline(const esr_store *s);

/* Whether the backend records command ids (its vtable has `command`). */
int esr__store_records_ids(const esr_store *s);
/* The payload bytes one append of an actor's turn may carry (runtime/turn.h):
 * ESR__TURN_BYTES unless the backend states another at open. A command alone
 * over it is still appended (or refused) by itself. */
#define ESR__TURN_BYTES (1u << 20)
void esr__store_set_turn_bytes(esr_store *s, size_t bytes);
size_t esr__store_turn_bytes(const esr_store *s);
void esr__store_set_prefetch(esr_store *s, esr__prefetch_fn *fn);
void esr__store_prefetch(esr_store *s, void *handle, int depth);

/* ESR_OK for a valid checkpoint name; whether a store keeps checkpoints. */
esr_status esr__check_checkpoint_name(const char *name);
int esr__store_has_checkpoints(const esr_store *s);

/*
 * store/store_wait.c: the vtable's wait for backends whose writer raises
 * *head (with ck_pr), then fences, loads *waiters and, if it is not zero,
 * broadcasts cond under lock. Returns once *head passes `after`, or once the
 * timed wait fails (timeout_ms ran out); a spurious wake-up waits again. The
 * caller reads the head either way. *waiters counts the callers inside
 * (changed under lock).
 */
void esr__store_wait_past(pthread_mutex_t *lock, pthread_cond_t *cond, unsigned *waiters,
                          const uint64_t *head, uint64_t after, unsigned timeout_ms);

#endif /* ESR_STORE_STORE_INTERNAL_H */
