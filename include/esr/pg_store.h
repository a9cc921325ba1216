/*
 * esr/pg_store.h: the PostgreSQL event store, shared by many esr processes
 * on many hosts through one database (libpq; schema: docs/postgres.md).
 *
 * The database enforces the expected version: every stream has a row whose
 * version is moved with `UPDATE ... WHERE version = expected` (expected 0:
 * an INSERT that succeeds only if the stream has no row yet) in the same
 * transaction that inserts the events, so of two processes appending at the
 * same version exactly one wins, whatever the processes believe. Unchecked
 * appends (ESR_VERSION_ANY) take the next versions under the same row lock:
 * they never collide into an error and never lose or duplicate an event.
 * ESR_VERSION_ANY alone skips the check: any other expected version is
 * exact, and one above INT64_MAX (which no stream reaches) is ESR_ECONFLICT.
 *
 * Appends are batched: each connection's thread takes up to batch_max queued
 * appends (and 64 MiB of payload, unless one append alone is larger), sorts
 * them by stream and sends them all as one append_batch
 * statement and one Sync, in one pipeline: one round trip, one transaction,
 * one commit, however many appends the batch holds. Each append's outcome is
 * a row of that statement's result, so a conflict is a result, not an error:
 * one append's conflict never fails another's in the same batch. A real
 * error rolls the whole batch back; the batch is then sent again (a deadlock
 * or serialization failure) or each of its appends alone, so that only the
 * append at fault fails, with ESR_EIO (docs/postgres.md, "Batching").
 *
 * Connection faults. An append whose batch failed before its commit was sent
 * is sent again. An append whose commit was in flight when the connection
 * broke is resolved after reconnecting, by its own commit token stored with
 * its events: found, it completes ESR_OK with its versions; absent, it
 * is sent again (a checked one may then conflict, which is its true outcome).
 * So a caller sees each append take effect exactly once, or not at all. Only
 * when the server stays unreachable past `timeout_ms` does an append fail:
 * ESR_EIO if it was never committed, ESR_EUNKNOWN if its commit may have
 * happened (the runtime reloads the aggregate from the store before its next
 * command either way). Connections reconnect by themselves, with backoff.
 *
 * esr_store_close waits for every queued append to complete, which takes at
 * most timeout_ms while the server is away.
 */
#ifndef ESR_PG_STORE_H
#define ESR_PG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "esr/export.h"
#include "esr/status.h"
#include "esr/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The schema version this build writes and reads (esr_schema table). */
#define ESR_PG_SCHEMA_VERSION 5

typedef struct esr_pg_store_options {
	const char *schema;       /* PostgreSQL schema holding the tables; default "esr".
	                             1..48 of [a-z0-9_], not starting with a digit */
	unsigned connections;     /* append connections, each with its thread; default 2, 1..64 */
	unsigned batch_max;       /* appends per round trip; default 256, 1..4096 */
	unsigned timeout_ms;      /* how long an append may wait for a server that is
	                             unreachable or never lets it through before it
	                             fails; default 10000 */
	unsigned backoff_min_ms;  /* first reconnect delay; default 10; doubled up to ... */
	unsigned backoff_max_ms;  /* ... this; default 1000 */
	int migrate;              /* create or upgrade the tables at open; default 1 */
	char *why;                /* if not NULL, open writes a one-line reason here on
	                             failure (libpq's message for a bad or unreachable server) */
	size_t why_size;
} esr_pg_store_options;

/* Fill *o with the defaults. ESR_EINVAL for NULL. */
ESR_API esr_status esr_pg_store_options_default(esr_pg_store_options *o);

/*
 * esr_pg_store_open: connect to the database named by `conninfo` (a libpq
 * connection string or URI; "" uses the PG* environment variables, as libpq
 * does) and return a store over it. With o->migrate the tables are created or
 * upgraded first (esr_pg_migrate). The first connection is made here, so a
 * bad connection string is ESR_EINVAL and an unreachable server or a refused
 * login ESR_EIO, with libpq's reason in o->why. ESR_ENOTSUP if esr was built
 * without libpq, or the database's schema is newer than this build. o may be
 * NULL (defaults).
 */
ESR_API esr_status esr_pg_store_open(const char *conninfo, const esr_pg_store_options *o,
                                     esr_store **out);

/*
 * esr_pg_migrate: create the schema's tables and functions, or upgrade them
 * to ESR_PG_SCHEMA_VERSION, idempotently and safely from many processes at
 * once (an advisory lock serialises them). schema NULL means "esr". why (may
 * be NULL) gets a one-line reason on failure. Errors as esr_pg_store_open.
 */
ESR_API esr_status esr_pg_migrate(const char *conninfo, const char *schema, char *why,
                                  size_t why_size);

/*
 * esr_pg_drop: drop the schema and everything in it: every stream and event
 * of that store, for good. For tests and benchmarks that want a clean store.
 * Dropping a schema that does not exist succeeds.
 */
ESR_API esr_status esr_pg_drop(const char *conninfo, const char *schema, char *why,
                               size_t why_size);

typedef struct esr_pg_store_stats {
	uint64_t appends;      /* acknowledged (ESR_OK) */
	uint64_t events;       /* in acknowledged appends */
	uint64_t conflicts;    /* appends that completed ESR_ECONFLICT */
	uint64_t round_trips;  /* pipelines sent (one transaction each) */
	uint64_t reconnects;   /* connections made again after a fault */
	uint64_t resolved;     /* appends whose commit was in doubt, settled by token */
	uint64_t resent;       /* appends sent again after a fault */
	uint64_t failed;       /* appends that completed ESR_EIO or ESR_EUNKNOWN */
} esr_pg_store_stats;

/* Counters of a store opened by esr_pg_store_open; ESR_EINVAL for others. */
ESR_API esr_status esr_pg_store_stats_get(esr_store *store, esr_pg_store_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* ESR_PG_STORE_H */
