/*
 * esr/limits.h: the documented size limits every esr entry point enforces.
 * An argument beyond one of these is refused with ESR_ETOOBIG before anything
 * is stored; nothing is truncated silently.
 */
#ifndef ESR_LIMITS_H
#define ESR_LIMITS_H

/* Longest aggregate type name, in bytes, NUL excluded. */
#define ESR_TYPE_NAME_MAX 64

/* Longest aggregate id, in bytes. Ids are opaque bytes; 0 bytes is invalid. */
#define ESR_ID_MAX 256

/* Longest command id, in bytes (a UUID's 16 bytes or its 36-character text
 * fit). Opaque bytes; 0 bytes is invalid (no id at all is {NULL, 0}). */
#define ESR_COMMAND_ID_MAX 64

/* Largest event payload, in bytes (1 MiB). Events are facts, not files. */
#define ESR_PAYLOAD_MAX (1u << 20)

/* Most events one append (or one command) may carry. */
#define ESR_APPEND_MAX 1024

/* Largest aggregate state, in bytes (1 MiB). */
#define ESR_STATE_MAX (1u << 20)

/* Most optimistic retries a runtime may be configured with (max_retries). */
#define ESR_RETRIES_MAX 10000

/* Most aggregate types one repository may register. */
#define ESR_TYPES_MAX 64

/* Largest encoded snapshot, in bytes (4 MiB). */
#define ESR_SNAPSHOT_MAX (4u << 20)

/* Longest checkpoint name: 1..64 of [A-Za-z0-9_.-]. */
#define ESR_CHECKPOINT_NAME_MAX 64

#endif /* ESR_LIMITS_H */
