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
