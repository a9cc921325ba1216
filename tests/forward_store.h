/*
 * tests/forward_store.h: vtable entries that pass a call straight through to
 * an inner store, for the test backends that wrap one (async_store.c,
 * wrap_store.c). Each takes an impl whose first member is `esr_store *inner`.
 */
#ifndef ESR_TESTS_FORWARD_STORE_H
#define ESR_TESTS_FORWARD_STORE_H

#include <esr/esr.h>

esr_status forward_read_all(void *impl, uint64_t from, size_t max, esr_visit_fn visit,
                            void *ctx, uint64_t *next);
esr_status forward_head(void *impl, uint64_t *position);
esr_status forward_wait(void *impl, uint64_t after, unsigned timeout_ms);
esr_status forward_snapshot_save(void *impl, const esr_stream_id *sid,
                                 const esr_snapshot *snap);
esr_status forward_snapshot_load(void *impl, const esr_stream_id *sid, esr_snapshot_fn fn,
                                 void *ctx);
esr_status forward_checkpoint_save(void *impl, const char *name, uint64_t position);
esr_status forward_checkpoint_load(void *impl, const char *name, uint64_t *position);

/* The lines of a vtable initializer that use them all. */
#define FORWARD_STORE_GLOBAL_OPS                                                  \
	.read_all = forward_read_all, .head = forward_head, .wait = forward_wait,  \
	.snapshot_save = forward_snapshot_save,                                    \
	.snapshot_load = forward_snapshot_load,                                    \
	.checkpoint_save = forward_checkpoint_save,                                \
	.checkpoint_load = forward_checkpoint_load

#endif
