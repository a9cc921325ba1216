/*
 * store/store_internal.h: what store/store.c shares with the backends
 * (store/memory, store/file, store/pg), the subscriptions and the runtime's
 * actors. docs/architecture.md has the map.
 */
#ifndef ESR_STORE_STORE_INTERNAL_H
#define ESR_STORE_STORE_INTERNAL_H

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

#endif /* ESR_STORE_STORE_INTERNAL_H */
