/*
 * runtime/exec.h: running commands against one aggregate instance. See
 * docs/architecture.md for the map.
 *
 * This is the one place that knows the strategies: how to load an aggregate,
 * run its handler, append with or without a version check, and, on a
 * conflict, catch up from the store and try again. The repository drives it
 * synchronously (esr__exec_run); the actor runtime drives the same steps
 * (decide, append asynchronously, commit or catch up) from its workers.
 *
 * An esr__exec is used by one thread at a time. It does not own an emitter:
 * emitters hold the buffers of a decision in progress and belong to whoever
 * runs it (a repository call, a worker, or an actor with an append in flight).
 */
#ifndef ESR_RUNTIME_EXEC_H
#define ESR_RUNTIME_EXEC_H

#include <stdint.h>

#include "esr/esr.h"
#include "runtime/emitter.h"

struct esr__exec {
	const esr_aggregate_type *type;
	esr_store *store;
	esr_stream_id stream; /* type name and id point at memory outliving x */
	void *handle;         /* the store's handle for stream, or NULL (by id) */
	void *state;          /* type->state_size bytes */
	uint64_t version;     /* the stream version `state` reflects */
	/* Unchecked only: an append landed past other writers' events, so
	 * `state` is no longer the fold of the stream's first `version`
	 * events. Never snapshot it. Cleared by a load. */
	int skipped;
};

/* Bind x to (type, id) over store, with `state` as its state buffer. */
void esr__exec_bind(struct esr__exec *x, const esr_aggregate_type *type,
                    esr_store *store, const void *id, size_t id_len, void *state);

/*
 * What a load did, for the caller's counters and warnings.
 * snapshot: the version of the snapshot the state started from (0: none).
 * replayed: events applied, on top of the snapshot if there was one.
 * refused:  why a stored snapshot was not used ("" if none was refused);
 *           refused_version is the version it claimed.
 */
struct esr__load {
	uint64_t snapshot;
	uint64_t replayed;
	uint64_t refused_version;
	char refused[96];
};

/*
 * Reset the state to init() and rebuild it: from the latest snapshot and the
 * events after it when the type has snapshots and the stored one is sound,
 * else by replaying the whole stream. A snapshot is refused (and the stream
 * replayed) if its format is not one the type reads, decode refuses it, or it
 * claims a version the stream does not have. info may be NULL.
 */
esr_status esr__exec_load(struct esr__exec *x, struct esr__load *info);

/* Apply the events after x->version only; info (may be NULL) counts them in
 * `replayed`, which it does not reset. */
esr_status esr__exec_catch_up(struct esr__exec *x, struct esr__load *info);

/*
 * Encode the state with the type's snapshot_encode into a buffer of at least
 * `room` bytes from malloc, which *out receives (len in *len); it grows once
 * if encode asks for more. ESR_ENOTSUP (the type has no snapshots or encode
 * returned 0), ESR_ETOOBIG (more than ESR_SNAPSHOT_MAX), ESR_ENOMEM.
 */
esr_status esr__exec_encode(const struct esr__exec *x, size_t room, size_t header,
                            void **out, size_t *len);

/*
 * Run handle() on the current state into em (reset first). ESR_OK: em holds
 * the events to append (possibly none). ESR_EREJECTED: *rejection holds the
 * handler's code. Any other status: an emit failed.
 */
esr_status esr__exec_decide(struct esr__exec *x, esr_emitter *em,
                            const void *command, int *rejection);

/* The expected version an append of the decision carries. */
uint64_t esr__exec_expected(const struct esr__exec *x, esr_strategy strategy);

/*
 * After the append of em's events succeeded at `version`: apply them.
 * ESR_ECORRUPT (state untouched) if an optimistic append did not land right
 * after the expected version.
 */
esr_status esr__exec_commit(struct esr__exec *x, esr_emitter *em,
                            esr_strategy strategy, uint64_t version);

/* Fill c from x and the failed append. */
void esr__exec_conflict(const struct esr__exec *x, uint64_t expected,
                        uint64_t actual, uint32_t attempts, esr_conflict *c);

/*
 * Run one command synchronously: decide, append, commit; under optimistic a
 * conflict triggers a catch-up and another attempt, up to max_retries more.
 * Fills every field of *r.
 */
esr_status esr__exec_run(struct esr__exec *x, esr_emitter *em, const void *command,
                         esr_strategy strategy, unsigned max_retries,
                         esr_result *r);

#endif /* ESR_RUNTIME_EXEC_H */
