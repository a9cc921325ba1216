/*
 * runtime/exec.h: running commands against one aggregate instance.
 *
 * This is the one place that knows the strategies: how to load an aggregate,
 * run its handler, append with or without a version check, and, on a
 * conflict, catch up from the store and try again. The repository drives it
 * from the caller's thread; the actor runtime drives it from its workers.
 *
 * An esr__exec is used by one thread at a time.
 */
#ifndef ESR_RUNTIME_EXEC_H
#define ESR_RUNTIME_EXEC_H

#include <stdint.h>

#include "esr/esr.h"
#include "runtime/emitter.h"

struct esr__exec {
	const esr_aggregate_type *type;
	esr_store *store;
	esr_stream_id stream; /* type name and id point at the caller's memory */
	void *state;          /* type->state_size bytes */
	uint64_t version;     /* the stream version `state` reflects */
	esr_emitter emit;
};

/* Bind x to (type, id) over store; allocates the state. */
esr_status esr__exec_init(struct esr__exec *x, const esr_aggregate_type *type,
                          esr_store *store, const void *id, size_t id_len);
void esr__exec_free(struct esr__exec *x);

/* Reset the state to init() and replay the whole stream. */
esr_status esr__exec_load(struct esr__exec *x);

/* Apply the events after x->version only. */
esr_status esr__exec_catch_up(struct esr__exec *x);

/*
 * Run one command: handle, append (expected = x->version under optimistic,
 * ESR_VERSION_ANY under unchecked), apply the events on success. Under
 * optimistic a conflict triggers a catch-up and another attempt, up to
 * max_retries more. Fills every field of *r.
 */
esr_status esr__exec_run(struct esr__exec *x, const void *command,
                         esr_strategy strategy, unsigned max_retries,
                         esr_result *r);

#endif /* ESR_RUNTIME_EXEC_H */
