/*
 * esr/runtime.h: the actor runtime. Every aggregate instance is an actor with
 * its own mailbox; a pool of worker threads runs the actors that have work.
 *
 * A command is submitted to (type, id): the runtime finds the live actor for
 * it, or activates one (replaying its stream from the store), and enqueues the
 * command. One worker at a time runs an actor: it takes up to `batch` commands
 * from the mailbox, runs the handler on the actor's in-memory state, appends
 * the events with the configured strategy, applies them, and completes each
 * command's ticket. Commands one thread submits to one aggregate run in the
 * order it submitted them; no command is lost or run twice.
 *
 * The command pointer is handed to handle() as is (NULL included, on every
 * way in, as in the repository): it must stay valid until the command's
 * ticket completes.
 */
#ifndef ESR_RUNTIME_H
#define ESR_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "esr/aggregate.h"
#include "esr/export.h"
#include "esr/repository.h"
#include "esr/status.h"
#include "esr/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a submit does when the actor's mailbox is full. */
typedef enum esr_overflow {
	ESR_OVERFLOW_BLOCK = 0, /* wait for room (default) */
	ESR_OVERFLOW_FAIL = 1   /* return ESR_EBUSY at once */
} esr_overflow;

typedef struct esr_runtime_config {
	unsigned workers;          /* worker threads; default: online CPUs */
	esr_strategy strategy;     /* default ESR_OPTIMISTIC */
	unsigned max_retries;      /* optimistic retries after the first attempt; default 5,
	                              at most ESR_RETRIES_MAX */
	unsigned mailbox_capacity; /* commands per actor accepted and not yet completed,
	                              the one running included; default 1024. A
	                              command's slot is free before its completion
	                              is seen (ticket or callback), so a host that
	                              waits for each command before it submits the
	                              next never finds the mailbox full. */
	esr_overflow overflow;     /* default ESR_OVERFLOW_BLOCK */
	unsigned batch;            /* commands an actor runs before it yields its worker to
	                              other actors waiting (if none wait, it runs on); default 64 */
	unsigned passivate_ms;     /* evict actors idle this long; 0 = never; default 60000 */
	unsigned snapshot_every;   /* snapshot an aggregate (of a type that can) each time
	                              its version crosses a multiple of this; 0 = never
	                              (default). Taken off the command path. */
	/* Optional: told one line for each thing worth a look that costs no
	 * command its outcome (a snapshot ignored, a snapshot not saved). Called
	 * on a worker or the snapshot thread: keep it short. */
	void (*warn)(void *ctx, const char *message);
	void *warn_ctx;
} esr_runtime_config;

/* esr_runtime_config_default: fill *config with the defaults above. */
ESR_API esr_status esr_runtime_config_default(esr_runtime_config *config);

/*
 * esr_runtime_config_from_env: the defaults, overridden by ESR_WORKERS,
 * ESR_STRATEGY (optimistic|unchecked), ESR_MAX_RETRIES, ESR_MAILBOX_CAPACITY,
 * ESR_OVERFLOW (block|fail), ESR_BATCH, ESR_PASSIVATE_MS and ESR_SNAPSHOT_EVERY. An unset or empty
 * variable keeps the default; a malformed one is ESR_EINVAL, *config is left
 * untouched, and *field (if not NULL) names the variable.
 */
ESR_API esr_status esr_runtime_config_from_env(esr_runtime_config *config,
                                               const char **field);

/*
 * esr_runtime_config_check: ESR_OK for a usable config; otherwise ESR_EINVAL
 * and *field (if not NULL) names the first bad field, checked in this order:
 * "config" (NULL), "workers" (1..1024), "strategy" (ESR_OPTIMISTIC or
 * ESR_UNCHECKED), "mailbox_capacity" (1..2^30), "overflow" (ESR_OVERFLOW_BLOCK
 * or ESR_OVERFLOW_FAIL), "batch" (at least 1), "max_retries" (at most
 * ESR_RETRIES_MAX). passivate_ms, snapshot_every and warn take any value.
 */
ESR_API esr_status esr_runtime_config_check(const esr_runtime_config *config,
                                            const char **field);

typedef struct esr_runtime esr_runtime;

/*
 * esr_runtime_start: start the workers over `store` (which must outlive the
 * runtime). config may be NULL for the defaults; a bad one is refused as by
 * esr_runtime_config_check.
 */
ESR_API esr_status esr_runtime_start(const esr_runtime_config *config,
                                     esr_store *store, esr_runtime **out);

/* esr_runtime_register: as esr_repository_register, for the runtime. */
ESR_API esr_status esr_runtime_register(esr_runtime *rt, const esr_aggregate_type *type);

/*
 * esr_runtime_stop: stop accepting (submits from now on, including submitters
 * blocked on a full mailbox, return ESR_ESHUTDOWN), run every accepted
 * command to completion, join the workers and free every actor and worker.
 * What remains is the handle, so that a late submit is refused rather than a
 * crash; free it with esr_runtime_destroy once no thread uses it. Tickets the
 * caller holds stay valid until released. Calling stop again does nothing.
 */
ESR_API esr_status esr_runtime_stop(esr_runtime *rt);

/* esr_runtime_destroy: stop (if not yet stopped) and free the handle. NULL is ignored. */
ESR_API esr_status esr_runtime_destroy(esr_runtime *rt);

/* A command's completion. Owned by the runtime; released by the caller. */
typedef struct esr_ticket esr_ticket;

/*
 * Called once, on a worker thread, when a command submitted with a callback
 * completes. It holds up that worker: keep it short, and never block in it
 * (no esr_ticket_wait, no submit that could wait for mailbox room, no
 * esr_runtime_stop), or the runtime can deadlock on itself.
 */
typedef void (*esr_ticket_cb)(void *ctx, esr_status status, const esr_result *result);

/*
 * esr_submit: route `command` to the actor (type, id). On ESR_OK *ticket is
 * a ticket to wait on or poll, to be released with esr_ticket_release. Errors
 * (nothing enqueued, no actor touched): ESR_EINVAL (NULL rt or ticket, NULL
 * or empty id; a NULL command is accepted), ESR_ETOOBIG (id longer than
 * ESR_ID_MAX), ESR_ENOTYPE (unregistered type), ESR_EBUSY (mailbox full
 * under ESR_OVERFLOW_FAIL), ESR_ESHUTDOWN (stopping), ESR_ENOMEM.
 */
ESR_API esr_status esr_submit(esr_runtime *rt, const char *type, const void *id,
                              size_t id_len, const void *command, esr_ticket **ticket);

/* esr_submit_cb: as esr_submit, but `done(ctx, ...)` is called on completion
 * instead of a ticket being returned. */
ESR_API esr_status esr_submit_cb(esr_runtime *rt, const char *type, const void *id,
                                 size_t id_len, const void *command,
                                 esr_ticket_cb done, void *ctx);

/*
 * esr_submit_id, esr_submit_cb_id, esr_execute_id: as esr_submit,
 * esr_submit_cb and esr_execute, with a command id (cid NULL or {NULL, 0}:
 * none; the bytes are copied). If the aggregate's stream has recorded the id
 * (the command, or a resubmission of it, was stored before, by this runtime
 * or any other writer on the store), the command is not decided again and
 * appends nothing: it completes ESR_OK with result->duplicate = 1 and its
 * first run's versions. A command that is rejected or emits no events
 * records nothing, so its id may be used again. Refused as submit is, and
 * also: ESR_EINVAL for a malformed id ({bytes, 0} or {NULL, len}),
 * ESR_ETOOBIG for one over ESR_COMMAND_ID_MAX. docs/command-ids.md.
 */
ESR_API esr_status esr_submit_id(esr_runtime *rt, const char *type, const void *id,
                                 size_t id_len, const void *command,
                                 const esr_command_id *cid, esr_ticket **ticket);
ESR_API esr_status esr_submit_cb_id(esr_runtime *rt, const char *type, const void *id,
                                    size_t id_len, const void *command,
                                    const esr_command_id *cid, esr_ticket_cb done,
                                    void *ctx);
ESR_API esr_status esr_execute_id(esr_runtime *rt, const char *type, const void *id,
                                  size_t id_len, const void *command,
                                  const esr_command_id *cid, esr_result *result);

/*
 * One command of a batch submission. command_id ({NULL, 0}: none) makes a
 * resubmission of the command take effect once (docs/command-ids.md).
 */
typedef struct esr_submission {
	const char *type;
	const void *id;
	size_t id_len;
	const void *command;
	void *ctx; /* esr_submit_many_cb: handed to done() for this command */
	esr_command_id command_id;
} esr_submission;

/*
 * esr_submit_many: submit n commands in order; tickets[i] receives the i-th
 * ticket. Stops at the first command refused and returns its status;
 * *accepted (may be NULL) says how many were submitted before it. Cheaper
 * than n calls to esr_submit: the batch crosses the stop handshake once and
 * looks a type up again only when its name pointer changes.
 */
ESR_API esr_status esr_submit_many(esr_runtime *rt, const esr_submission *subs,
                                   size_t n, esr_ticket **tickets, size_t *accepted);

/*
 * esr_submit_many_cb: as esr_submit_many, but each command completes by
 * calling done(subs[i].ctx, ...) (see esr_ticket_cb) instead of through a
 * ticket.
 */
ESR_API esr_status esr_submit_many_cb(esr_runtime *rt, const esr_submission *subs,
                                      size_t n, esr_ticket_cb done, size_t *accepted);

/*
 * esr_ticket_wait: wait up to timeout_ms (negative: forever) for completion.
 * ESR_OK once complete (read the outcome with esr_ticket_result),
 * ESR_ETIMEDOUT if not complete in time, ESR_EINVAL for a NULL ticket.
 */
ESR_API esr_status esr_ticket_wait(esr_ticket *ticket, long timeout_ms);

/* esr_ticket_poll: *done = 1 if complete, else 0. */
ESR_API esr_status esr_ticket_poll(esr_ticket *ticket, int *done);

/*
 * esr_ticket_result: the command's outcome: *status is what the command
 * returned and *result (may be NULL) its details. ESR_EBUSY if the ticket is
 * not complete yet. The command's status is one of:
 *  - ESR_OK: its result->appended events (maybe none) are stored, the last
 *    at result->version. With result->duplicate set, they were stored by an
 *    earlier command with the same command id, and this one appended none.
 *  - ESR_EREJECTED: handle() refused it (result->rejection); nothing appended.
 *  - ESR_ECONFLICT (optimistic only): each of its result->attempts (at most
 *    max_retries + 1) found the stream moved on; nothing appended;
 *    result->conflict names the versions. The aggregate catches up with the
 *    stream before its next command, which is decided on fresh state.
 *  - ESR_EIO: the store failed the append and reports its events not
 *    stored; the aggregate's state is as before the command.
 *  - ESR_EUNKNOWN: the store could not learn whether the events were stored
 *    (all of them or none: an append is atomic), e.g. a write or sync that
 *    failed, or a commit whose answer was lost. The aggregate is reloaded from
 *    the store before its next command, so that command sees them if they were
 *    stored and is never decided on a guess; read the stream to learn which.
 *    If a command of the append carried an id, the runtime first asks the
 *    store for it and reports ESR_OK when it finds it; when it does not,
 *    resubmitting with the same id is safe: it takes effect at most once.
 *  - any other error (ESR_ENOMEM, ESR_ECORRUPT, a failed load's status, ...):
 *    nothing appended by this command; a failed load is tried again by the
 *    next command.
 */
ESR_API esr_status esr_ticket_result(esr_ticket *ticket, esr_status *status,
                                     esr_result *result);

/* esr_ticket_release: give the ticket back. NULL is ignored. */
ESR_API esr_status esr_ticket_release(esr_ticket *ticket);

/* esr_execute: submit, wait, return the command's status and fill *result. */
ESR_API esr_status esr_execute(esr_runtime *rt, const char *type, const void *id,
                               size_t id_len, const void *command, esr_result *result);

/*
 * Queries: read an actor's state in its own turn. A query is queued in the
 * aggregate's mailbox like a command and runs when its turn comes, after
 * every command submitted before it (by any thread, to the same aggregate)
 * has completed: a host that saw a command complete and then queries sees
 * its effect (read-your-writes). It runs the caller's read(ctx, state,
 * version) on the actor's state and version, appends nothing, and never
 * runs concurrently with the actor's commands. `state` is the aggregate
 * type's state (state_size bytes, as apply() left it); copy out what is
 * needed before returning: the pointer is valid only during the call.
 *
 * read() runs on a worker: keep it short and never block in it (as an
 * esr_ticket_cb). Return 0 for ESR_OK, or a code of the caller's own: the
 * query then completes ESR_EREJECTED with result->rejection set to it (an
 * account not opened, say). result->version is the version read; appended,
 * attempts and duplicate are 0.
 *
 * The state is the actor's: current with every append this runtime made.
 * Appends by another writer on the same store (another runtime, process or
 * host) are seen once the actor catches up with them, which its next
 * command does under the optimistic strategy; a query does not read the
 * store. A query of an aggregate with no events reads the state init() made,
 * at version 0. Queries take mailbox slots as commands do (capacity,
 * overflow, stop) and are counted apart from commands (stats.queries).
 */
typedef int (*esr_query_fn)(void *ctx, const void *state, uint64_t version);

/*
 * esr_query: queue read(ctx, ...) for the actor (type, id); *ticket as for
 * esr_submit. ctx must stay valid until the ticket completes. Refused as
 * esr_submit is (ESR_EINVAL also for a NULL read), with nothing queued.
 */
ESR_API esr_status esr_query(esr_runtime *rt, const char *type, const void *id,
                             size_t id_len, esr_query_fn read, void *ctx,
                             esr_ticket **ticket);

/* esr_query_cb: as esr_query, but done(done_ctx, ...) is called when the query
 * completes (after read() returned), instead of a ticket being returned. */
ESR_API esr_status esr_query_cb(esr_runtime *rt, const char *type, const void *id,
                                size_t id_len, esr_query_fn read, void *ctx,
                                esr_ticket_cb done, void *done_ctx);

/* esr_query_execute: esr_query, wait, return the query's status and fill
 * *result (may be NULL). */
ESR_API esr_status esr_query_execute(esr_runtime *rt, const char *type, const void *id,
                                     size_t id_len, esr_query_fn read, void *ctx,
                                     esr_result *result);

typedef struct esr_runtime_stats {
	uint64_t submitted;    /* commands accepted by submit */
	uint64_t completed;    /* tickets completed, whatever the outcome */
	uint64_t rejected;     /* completed with ESR_EREJECTED */
	uint64_t conflicts;    /* appends that failed their version check */
	uint64_t retries;      /* handler re-runs after a conflict */
	uint64_t exhausted;    /* completed with ESR_ECONFLICT */
	uint64_t activations;  /* actors activated (stream replayed) */
	uint64_t passivations; /* idle actors evicted */
	uint64_t mailbox_full; /* submits that found a full mailbox */
	uint64_t live_actors;  /* actors in the registry now */
	uint64_t snapshots_loaded;  /* activations or catch-ups that started from a snapshot */
	uint64_t snapshots_ignored; /* snapshots refused (undecodable, unknown format,
	                               beyond the stream): each replayed in full instead */
	uint64_t snapshots_taken;   /* snapshots the store saved */
	uint64_t snapshots_dropped; /* snapshots not saved: queue full, encode or store error */
	uint64_t events_replayed;   /* events applied while activating or catching up */
	uint64_t appends;           /* appends the workers made, retries included: an
	                               actor's turn appends the events of all its
	                               commands as one (completed - rejected over
	                               this is about the commands per append) */
	uint64_t duplicates;        /* completed ESR_OK as duplicates: their command id
	                               was recorded already, so they appended nothing */
	uint64_t queries_submitted; /* queries accepted (esr_query); not in submitted */
	uint64_t queries;           /* queries completed; not in completed */
} esr_runtime_stats;

/* esr_runtime_stats: a snapshot of the counters (each read once; not atomic as a set). */
ESR_API esr_status esr_runtime_stats_get(esr_runtime *rt, esr_runtime_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* ESR_RUNTIME_H */
