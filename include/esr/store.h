/*
 * esr/store.h: the event store contract: the backend vtable and the
 * esr_store_* calls every backend answers. The backends are opened from
 * their own headers: esr/memory_store.h, esr/file_store.h, esr/pg_store.h.
 *
 * A store is an opaque handle over a backend vtable. Every backend keeps the
 * same promises, checked by the store conformance suite in tests/:
 *  - versions are contiguous from 1 in every stream;
 *  - an append is atomic: all of its events become visible together, or none;
 *    a reader never sees part of a batch;
 *  - an append with an exact expected version succeeds only if the stream is
 *    at that version at the instant the append takes effect; otherwise it
 *    completes with ESR_ECONFLICT and the stream's actual version;
 *  - an append with ESR_VERSION_ANY never conflicts and never loses, reorders
 *    within its batch or duplicates an event;
 *  - every event gets a global position when it is committed: positions grow
 *    in commit order, a stream's events are in version order, and a global
 *    read never skips a position that may still be committed (see read_all).
 *    Positions have no gaps in the memory and file stores; see
 *    docs/projections.md for PostgreSQL's;
 *  - a store that records command ids (the three built in do) records each
 *    (stream, command id) atomically with the events that carry it, and never
 *    appends a second set of events with an id the stream has recorded
 *    (ESR_EDUPLICATE, below). docs/command-ids.md says how long each keeps them.
 * Beside the streams a store keeps the latest snapshot of each stream and
 * named checkpoints (esr/subscription.h); both are optional for a backend.
 *
 * The public functions below check their arguments before a backend sees them,
 * so a backend only ever receives well-formed input.
 */
#ifndef ESR_STORE_H
#define ESR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "esr/event.h"
#include "esr/export.h"
#include "esr/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct esr_store esr_store;

/*
 * The outcome of one append.
 * status:   ESR_OK, ESR_ECONFLICT, or the error that failed the append.
 * version:  on ESR_OK, the stream's version after the append (the version of
 *           the batch's last event); on ESR_ECONFLICT, the stream's actual
 *           version; otherwise 0.
 * position: on ESR_OK, the global position of the batch's first event, or 0
 *           for a store that assigns no positions.
 * On ESR_EDUPLICATE (nothing appended): duplicate_at is the index in the
 * append's events of the first event of a command whose id the stream has
 * already recorded, and recorded_first..version the versions that id's
 * events got when they were stored.
 */
typedef struct esr_append_result {
	esr_status status;
	uint64_t version;
	uint64_t position;
	uint64_t recorded_first;
	uint32_t duplicate_at;
} esr_append_result;

/* Called exactly once per accepted append, with its outcome. */
typedef void (*esr_append_cb)(void *ctx, const esr_append_result *result);

/*
 * A read visitor: called once per event, in version order. Return ESR_OK to go
 * on; any other status stops the read, which then returns that status.
 */
typedef esr_status (*esr_visit_fn)(void *ctx, const esr_recorded_event *event);

/*
 * A snapshot: an aggregate's state encoded by its type's snapshot_encode.
 * version: the stream version the state reflects (>= 1).
 * format:  the type's snapshot format version when it was taken (>= 1).
 * data, len: the encoded state, at most ESR_SNAPSHOT_MAX bytes.
 */
typedef struct esr_snapshot {
	uint64_t version;
	uint32_t format;
	uint32_t len;
	const void *data;
} esr_snapshot;

/* Receives a loaded snapshot; data is valid only during the call. */
typedef esr_status (*esr_snapshot_fn)(void *ctx, const esr_snapshot *snapshot);

/*
 * The version of the vtable's layout and promises below. It goes up by one
 * whenever either changes in a way a backend must know of; a backend sets
 * vtable_version to the value it was written against, and esr_store_create
 * refuses any other with ESR_ENOTSUP, so a backend built for another
 * contract is refused rather than misread.
 */
#define ESR_STORE_VTABLE_VERSION 2

/*
 * A backend. All functions receive the `impl` pointer given to
 * esr_store_create and arguments that esr_store_* has already validated.
 *
 * vtable_version: ESR_STORE_VTABLE_VERSION as the backend was compiled
 *   against. It comes first and stays first in every version, so that it is
 *   read from the same place whatever the rest of the layout.
 * append: place events[0..n) after version `expected` (or anywhere at the end
 *   for ESR_VERSION_ANY). The backend copies what it needs before returning,
 *   so the caller may free `events` and their payloads at once. It returns
 *   ESR_OK when it has taken the append, and then calls done(ctx, result)
 *   exactly once: on this thread before returning (the memory store does), or
 *   later from another thread (a durable store, after the sync that covers
 *   it). Any other return value refuses the append: nothing was stored and
 *   done is not called.
 *   Command ids (only to a backend with `command`; esr_store_append refuses
 *   them to others with ESR_ENOTSUP): the events that carry one id are
 *   consecutive, and no id appears in two runs of one append (checked before
 *   the backend sees it). After the version check (ESR_ECONFLICT comes
 *   first), if the stream has recorded any of the append's ids, nothing is
 *   stored and the result is ESR_EDUPLICATE with the first such command's
 *   index and recorded versions. Otherwise the ids are recorded with the
 *   events, atomically: a reader that finds an id finds its events, and two
 *   appends racing with one id never both succeed. Events are stored with
 *   their ids and read back with them.
 * read: visit the stream's events with version >= from (from 0 counts as 1),
 *   up to the version the stream had when the read began. An absent stream
 *   reads as empty.
 * version: the stream's current version (0 for an absent stream).
 * destroy: free the backend. No call is in progress or will follow.
 * resolve, append_resolved (optional: both or neither; NULL when absent): for
 *   a caller that appends to one stream many times (a live actor), resolve
 *   finds or creates the stream once and returns a handle valid until the
 *   store closes; append_resolved then appends as `append` does, to that
 *   stream, skipping the lookup. Creating a stream this way leaves it at
 *   version 0, which reads exactly as an absent stream does.
 * read_all (optional): visit up to `max` events with position >= from, in
 *   position order, and set *next to the position to read from next time
 *   (one past the last event visited, or `from` if none was). It stops early
 *   rather than pass a position that is not readable yet but may still be
 *   committed, so a caller that reads again from *next never misses one.
 *   Each visited event carries its stream.
 * head (optional, with read_all): the highest position committed, 0 if none.
 * wait (optional): return once head may exceed `after`, or after timeout_ms,
 *   whichever is first (ESR_OK either way: the caller reads and sees). A
 *   backend without it is polled.
 * snapshot_save, snapshot_load (optional: both or neither): keep one
 *   snapshot per stream. save replaces the stream's snapshot, whatever its
 *   version: the last save wins, so a bad one (say, claiming a version the
 *   stream never reached) is replaced by the next good one. load calls
 *   fn once with the stream's snapshot, or not at all if it has none, and
 *   returns ESR_OK or fn's status. A torn or unreadable stored snapshot
 *   loads as none; it never fails the load.
 * checkpoint_save, checkpoint_load (optional: both or neither): a named
 *   position, durable as the store's events are. load sets 0 for a name
 *   never saved.
 * command (optional): present in a backend that records command ids. Sets
 *   *first..*last to the versions the events of (stream, id) got, or both to
 *   0 if the stream has recorded no such id (an absent stream has none). It
 *   sees every append that completed before the call began.
 * Every other function pointer is required.
 */
typedef struct esr_store_vtable {
	unsigned vtable_version;
	const char *name;
	esr_status (*append)(void *impl, const esr_stream_id *stream,
	                     uint64_t expected, const esr_event *events, size_t n,
	                     esr_append_cb done, void *ctx);
	esr_status (*read)(void *impl, const esr_stream_id *stream, uint64_t from,
	                   esr_visit_fn visit, void *ctx);
	esr_status (*version)(void *impl, const esr_stream_id *stream,
	                      uint64_t *version);
	void (*destroy)(void *impl);
	esr_status (*resolve)(void *impl, const esr_stream_id *stream, void **handle);
	esr_status (*append_resolved)(void *impl, void *handle, uint64_t expected,
	                              const esr_event *events, size_t n,
	                              esr_append_cb done, void *ctx);
	esr_status (*read_all)(void *impl, uint64_t from, size_t max, esr_visit_fn visit,
	                       void *ctx, uint64_t *next);
	esr_status (*head)(void *impl, uint64_t *position);
	esr_status (*wait)(void *impl, uint64_t after, unsigned timeout_ms);
	esr_status (*snapshot_save)(void *impl, const esr_stream_id *stream,
	                            const esr_snapshot *snap);
	esr_status (*snapshot_load)(void *impl, const esr_stream_id *stream,
	                            esr_snapshot_fn fn, void *ctx);
	esr_status (*checkpoint_save)(void *impl, const char *name, uint64_t position);
	esr_status (*checkpoint_load)(void *impl, const char *name, uint64_t *position);
	esr_status (*command)(void *impl, const esr_stream_id *stream, const void *id,
	                      size_t len, uint64_t *first, uint64_t *last);
} esr_store_vtable;

/*
 * esr_store_create: wrap a backend in a store handle. On success *out owns
 * impl: esr_store_close calls vtable->destroy(impl). On failure impl is left to
 * the caller and *out is not written. The vtable must outlive the store.
 * ESR_EINVAL for NULL out or vtable, a required function missing, or an
 * optional pair half set; ESR_ENOTSUP for a vtable_version other than
 * ESR_STORE_VTABLE_VERSION (a backend written against another contract);
 * ESR_ENOMEM.
 */
ESR_API esr_status esr_store_create(const esr_store_vtable *vtable, void *impl,
                                    esr_store **out);

/*
 * esr_store_close: destroy the backend and free the handle. No other call on
 * the store may be in progress or follow. NULL is accepted and ignored.
 */
ESR_API esr_status esr_store_close(esr_store *store);

/* esr_store_name: the backend's name ("memory"); "" for NULL. */
ESR_API const char *esr_store_name(const esr_store *store);

/*
 * esr_store_append: append and wait for the outcome, which is both returned
 * and stored in *result (result may be NULL). ESR_ECONFLICT leaves the actual
 * version in result->version. Refused arguments: ESR_EINVAL (NULL store,
 * stream, events or a NULL payload with a non-zero length; n == 0; a malformed
 * stream id), ESR_ETOOBIG (n > ESR_APPEND_MAX, a payload > ESR_PAYLOAD_MAX, an
 * id or type name too long, a command id over ESR_COMMAND_ID_MAX), ESR_EINVAL
 * also for a malformed command id or one id in two runs of events, ESR_ENOTSUP
 * for command ids to a backend that does not record them, ESR_EDUPLICATE (see
 * esr_append_result). Nothing is appended on any error.
 */
ESR_API esr_status esr_store_append(esr_store *store,
                                    const esr_stream_id *stream,
                                    uint64_t expected, const esr_event *events,
                                    size_t n, esr_append_result *result);

/*
 * esr_store_append_async: as esr_store_append, but returns once the backend
 * has taken the append; done(ctx, result) then runs exactly once, possibly
 * before this function returns and possibly on another thread. When it
 * returns anything but ESR_OK, done is never called and nothing was appended.
 */
ESR_API esr_status esr_store_append_async(esr_store *store,
                                          const esr_stream_id *stream,
                                          uint64_t expected,
                                          const esr_event *events, size_t n,
                                          esr_append_cb done, void *ctx);

/*
 * esr_store_read: visit events with version >= from, in order (see the
 * vtable's read). Returns ESR_OK, the visitor's own status if it stopped the
 * read, or an argument error (ESR_EINVAL for NULL store/stream/visit).
 */
ESR_API esr_status esr_store_read(esr_store *store, const esr_stream_id *stream,
                                  uint64_t from, esr_visit_fn visit, void *ctx);

/* esr_store_version: the stream's current version into *version. */
ESR_API esr_status esr_store_version(esr_store *store,
                                     const esr_stream_id *stream,
                                     uint64_t *version);

/*
 * esr_store_read_all: visit up to max events (1..ESR_READ_ALL_MAX) with
 * position >= from (0 counts as 1), across all streams in position order, and
 * set *next where the next read should start (see the vtable's read_all).
 * ESR_EINVAL for NULL arguments or max == 0; ESR_ETOOBIG for max too large;
 * ESR_ENOTSUP for a backend without global reads; else ESR_OK or the visitor's
 * status (then *next is one past the last event visited with ESR_OK).
 */
#define ESR_READ_ALL_MAX 65536
ESR_API esr_status esr_store_read_all(esr_store *store, uint64_t from, size_t max,
                                      esr_visit_fn visit, void *ctx, uint64_t *next);

/*
 * esr_store_command: the versions (stream, command id)'s events got, into
 * *first and *last; both 0 if the stream has recorded no such id. ESR_EINVAL
 * for NULL arguments, a malformed stream or an empty id; ESR_ETOOBIG for an
 * id over ESR_COMMAND_ID_MAX; ESR_ENOTSUP for a backend that records no ids.
 */
ESR_API esr_status esr_store_command(esr_store *store, const esr_stream_id *stream,
                                     const void *id, size_t len, uint64_t *first,
                                     uint64_t *last);

/* esr_store_head: the highest committed position into *position (0: none). */
ESR_API esr_status esr_store_head(esr_store *store, uint64_t *position);

/*
 * esr_store_wait: wait until the head may have moved past `after`, at most
 * timeout_ms. ESR_OK on either; ESR_EINVAL for NULL store. A backend without
 * a wait of its own sleeps min(timeout_ms, 10) ms: callers read and see.
 */
ESR_API esr_status esr_store_wait(esr_store *store, uint64_t after, unsigned timeout_ms);

/*
 * esr_store_snapshot_save: keep snap as the stream's snapshot, replacing the
 * one kept (the last save wins, whatever the versions). ESR_EINVAL for NULL arguments,
 * a version of 0 or ESR_VERSION_ANY, a format of 0, or NULL data with len > 0;
 * ESR_ETOOBIG for len > ESR_SNAPSHOT_MAX; ESR_ENOTSUP for a backend without
 * snapshots. Other errors are the backend's (ESR_EIO, ESR_ENOMEM).
 */
ESR_API esr_status esr_store_snapshot_save(esr_store *store, const esr_stream_id *stream,
                                           const esr_snapshot *snap);

/*
 * esr_store_snapshot_load: call fn(ctx, snapshot) with the stream's latest
 * snapshot, or not at all if there is none. Returns ESR_OK, fn's status, or as
 * esr_store_snapshot_save for bad arguments and missing support.
 */
ESR_API esr_status esr_store_snapshot_load(esr_store *store, const esr_stream_id *stream,
                                           esr_snapshot_fn fn, void *ctx);

/*
 * esr_store_checkpoint_save / _load: a named position (a projection's last
 * handled event), saved durably in the store. A name is 1..ESR_CHECKPOINT_NAME_MAX
 * characters of [A-Za-z0-9_.-] (ESR_EINVAL otherwise). A position of
 * UINT64_MAX is no position (ESR_EINVAL). load gives 0 for a name never
 * saved, and writes *position only on success. ESR_ENOTSUP for a backend
 * without checkpoints.
 */
ESR_API esr_status esr_store_checkpoint_save(esr_store *store, const char *name,
                                             uint64_t position);
ESR_API esr_status esr_store_checkpoint_load(esr_store *store, const char *name,
                                             uint64_t *position);

/*
 * esr_store_open_spec: open the store a selector names, as a host program's
 * configuration or esr-stress's --store would give it:
 *   "memory"             esr_memory_store_open
 *   "file:DIR"           esr_file_store_open(DIR) with the default options
 *   "postgres:CONNINFO"  esr_pg_store_open(CONNINFO) with the default options;
 *                        CONNINFO may be empty (libpq's PG* variables)
 * why (may be NULL) gets a one-line reason on failure. ESR_EINVAL for NULL
 * arguments or a selector of no known kind; otherwise what the backend's
 * open returns.
 */
ESR_API esr_status esr_store_open_spec(const char *spec, char *why, size_t why_size,
                                       esr_store **out);

#ifdef __cplusplus
}
#endif

#endif /* ESR_STORE_H */
