/*
 * esr/aggregate.h: what the host writes to define an aggregate type.
 *
 * An aggregate's state is the fold of its events: init() gives the state of an
 * empty stream and apply() moves it one event forward. handle() decides what a
 * command means given the current state: it emits zero or more events, or
 * rejects the command with a code of its own. esr calls these from whatever
 * thread runs the command, but never concurrently on the same state.
 */
#ifndef ESR_AGGREGATE_H
#define ESR_AGGREGATE_H

#include <stddef.h>
#include <stdint.h>

#include "esr/event.h"
#include "esr/export.h"
#include "esr/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Collects the events one run of handle() decides on. Owned by esr. */
typedef struct esr_emitter esr_emitter;

typedef struct esr_aggregate_type {
	/* 1..ESR_TYPE_NAME_MAX printable ASCII characters, no spaces. Copied. */
	const char *name;
	/* Bytes of state, 1..ESR_STATE_MAX. esr zeroes it before init(). The
	 * state is plain bytes: the runtime copies it (memcpy) to decide a
	 * turn's later commands on the copy, so it must hold no pointer into
	 * itself, and apply() must change nothing but these bytes. */
	size_t state_size;
	/* Optional: set up the state of a new (empty) stream. */
	void (*init)(void *state, const void *id, size_t id_len);
	/* Required: fold one event into the state. Pure; cannot fail. */
	void (*apply)(void *state, const esr_event *event);
	/*
	 * Required: decide. Return 0 to accept (the events emitted, possibly
	 * none, are appended); return any other value to reject the command:
	 * nothing is appended and the caller gets ESR_EREJECTED with this value
	 * as the rejection code. handle() may run more than once for one command
	 * (optimistic retries), each time on fresher state, so it must not have
	 * side effects outside the emitter.
	 */
	int (*handle)(const void *state, const void *command, esr_emitter *emit);
	/*
	 * Optional snapshots: all three or none. An aggregate with a long history
	 * then activates from its latest snapshot plus the events after it
	 * (esr_runtime_config.snapshot_every says how often one is taken).
	 * snapshot_format: the version of the encoding snapshot_encode writes
	 *   now, from 1. Raise it whenever the encoding changes.
	 * snapshot_encode: write the state into out[0..cap) and return the bytes
	 *   it needs; if that is more than cap, esr calls again with room for it.
	 *   Return 0 when the state cannot be encoded: no snapshot is taken.
	 * snapshot_decode: rebuild the state from a snapshot of format `format`
	 *   (1..snapshot_format: older formats are for decode to read or refuse).
	 *   The state arrives as init() left it. Return 0 on success; anything
	 *   else refuses the snapshot, and esr replays the whole stream instead.
	 */
	uint32_t snapshot_format;
	size_t (*snapshot_encode)(const void *state, void *out, size_t cap);
	int (*snapshot_decode)(void *state, uint32_t format, const void *data, size_t len);
} esr_aggregate_type;

/*
 * esr_emit: from inside handle(), decide one event. The payload is copied;
 * metadata ids are left zero and the timestamp is the current wall-clock time.
 * Returns ESR_EINVAL (NULL emitter, NULL payload with len > 0), ESR_ETOOBIG
 * (len > ESR_PAYLOAD_MAX, or more than ESR_APPEND_MAX events) or ESR_ENOMEM.
 * An error is sticky: the command then fails with it and appends nothing, even
 * if handle() goes on to return 0.
 */
ESR_API esr_status esr_emit(esr_emitter *emit, uint32_t type,
                            const void *payload, size_t len);

/*
 * esr_emit_event: as esr_emit, with the caller's metadata (correlation and
 * causation ids; a timestamp of 0 is replaced by the current time). The
 * event's command_id is ignored: every event a command emits carries that
 * command's id, which the runtime or repository sets.
 */
ESR_API esr_status esr_emit_event(esr_emitter *emit, const esr_event *event);

#ifdef __cplusplus
}
#endif

#endif /* ESR_AGGREGATE_H */
