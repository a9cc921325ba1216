/*
 * esr/event.h: events, their metadata, and the streams they live in.
 *
 * A stream holds the events of one aggregate instance and is named by the
 * aggregate's type name plus its id bytes. A stream's version is the number of
 * events in it: an absent or empty stream is at version 0, its first event is
 * version 1, and versions never have gaps.
 */
#ifndef ESR_EVENT_H
#define ESR_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "esr/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Expected version meaning "append without checking the stream's version".
 * The store still places the events after every event already in the stream:
 * nothing is lost or duplicated, but a decision taken on stale state is not
 * detected either.
 */
#define ESR_VERSION_ANY UINT64_MAX

/* A 128-bit identifier (a UUID's bytes, typically). All zeros means "none". */
typedef struct esr_id128 {
	uint8_t bytes[16];
} esr_id128;

/*
 * The envelope every event carries besides its payload.
 * correlation_id: the id shared by everything one request caused.
 * causation_id:   the id of the message (command or event) that caused this one.
 * timestamp_ns:   wall-clock nanoseconds since the Unix epoch when the event
 *                 was decided; esr_emit() fills it in when it is 0. One clock
 *                 read serves a whole run of decisions: a repository
 *                 attempt's events, or those of the up to 8 actor turns a
 *                 runtime worker takes from its queue at once (microseconds
 *                 apart), so events decided together share a timestamp.
 */
typedef struct esr_metadata {
	esr_id128 correlation_id;
	esr_id128 causation_id;
	uint64_t timestamp_ns;
} esr_metadata;

/*
 * A command id: 1 to ESR_COMMAND_ID_MAX opaque bytes a host gives a command
 * so that a retry of it takes effect once (docs/command-ids.md). {NULL, 0}
 * is no id; any other empty or NULL combination is malformed (ESR_EINVAL).
 */
typedef struct esr_command_id {
	const void *bytes;
	size_t len;
} esr_command_id;

/*
 * An event as the host hands it to esr and as apply() sees it. The type tag is
 * the host's own numbering; the payload's encoding is the host's choice (esr
 * moves bytes). payload may be NULL only when payload_len is 0.
 * command_id: the id of the command that decided the event, or {NULL, 0}.
 * The runtime and the repository fill it in on every event of a command
 * submitted with an id; the store records it with the event and refuses a
 * second append of the same id to the same stream (esr/store.h).
 */
typedef struct esr_event {
	uint32_t type;
	uint32_t payload_len;
	const void *payload;
	esr_metadata meta;
	esr_command_id command_id;
} esr_event;

/*
 * The name of one stream. type is a NUL-terminated aggregate type name of 1 to
 * ESR_TYPE_NAME_MAX printable ASCII characters without spaces; id is 1 to
 * ESR_ID_MAX opaque bytes. The caller owns both; esr copies what it keeps.
 */
typedef struct esr_stream_id {
	const char *type;
	const void *id;
	size_t id_len;
} esr_stream_id;

/*
 * An event as read back from a store: the event plus where it sits.
 * version:  its place in its stream, from 1.
 * position: its place in the store's global order, from 1: every event of
 *           every stream, in the order the store committed them (so a
 *           stream's events are in version order). 0 from a store that
 *           assigns no positions (a backend of the host's own, say).
 * stream:   the stream it belongs to.
 * The pointers inside (payload, stream names) are valid only during the
 * visitor call that receives it.
 */
typedef struct esr_recorded_event {
	esr_event event;
	uint64_t version;
	uint64_t position;
	esr_stream_id stream;
} esr_recorded_event;

#ifdef __cplusplus
}
#endif

#endif /* ESR_EVENT_H */
