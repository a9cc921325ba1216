/*
 * esr/repository.h: run commands against aggregates on the caller's thread.
 *
 * A repository binds a store, a set of aggregate types and a concurrency
 * strategy. Each call loads the aggregate from the store, runs its handler and
 * appends the events decided. It keeps no state between calls, so any number
 * of threads may share one repository, and several repositories may share one
 * store (each is then one more writer of the same streams).
 *
 * Strategies:
 *  - ESR_OPTIMISTIC (the default): every append carries the version the
 *    handler decided on. If another writer got there first the append fails
 *    with a conflict; execute_with_retry then reads only the events after the
 *    version it knew, applies them, and runs the handler again on that fresh
 *    state. No decision is ever taken on stale state.
 *  - ESR_UNCHECKED: appends carry ESR_VERSION_ANY. It is correct only while
 *    each aggregate has a single writer; with several writers a decision
 *    taken on stale state is appended anyway (last writer wins, business rules
 *    can break). An unchecked repository never returns ESR_ECONFLICT.
 */
#ifndef ESR_REPOSITORY_H
#define ESR_REPOSITORY_H

#include <stddef.h>
#include <stdint.h>

#include "esr/aggregate.h"
#include "esr/export.h"
#include "esr/status.h"
#include "esr/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum esr_strategy {
	ESR_OPTIMISTIC = 0,
	ESR_UNCHECKED = 1
} esr_strategy;

/* Retries after the first attempt that execute_with_retry callers usually want. */
#define ESR_DEFAULT_MAX_RETRIES 5

/*
 * esr_strategy_parse: "optimistic" or "unchecked" (exactly, lower case) into
 * *out. Anything else is ESR_EINVAL and leaves *out untouched: an unknown
 * strategy is an error, never a silent default.
 */
ESR_API esr_status esr_strategy_parse(const char *text, esr_strategy *out);

/* esr_strategy_name: "optimistic", "unchecked", or "?" for other values. */
ESR_API const char *esr_strategy_name(esr_strategy strategy);

typedef struct esr_repository_config {
	esr_strategy strategy; /* default ESR_OPTIMISTIC */
} esr_repository_config;

/* esr_repository_config_default: fill *config with the defaults. */
ESR_API esr_status esr_repository_config_default(esr_repository_config *config);

/*
 * esr_repository_config_from_env: the defaults, overridden by the environment:
 * ESR_STRATEGY=optimistic|unchecked. An unset or empty variable keeps the
 * default; any other value is ESR_EINVAL and *config is left untouched.
 */
ESR_API esr_status esr_repository_config_from_env(esr_repository_config *config);

typedef struct esr_repository esr_repository;

/*
 * esr_repository_open: a repository over `store` (which must outlive it).
 * config may be NULL for the defaults. An out-of-range strategy is ESR_EINVAL.
 */
ESR_API esr_status esr_repository_open(esr_store *store,
                                       const esr_repository_config *config,
                                       esr_repository **out);

/* esr_repository_close: free the repository (not the store). NULL is ignored. */
ESR_API esr_status esr_repository_close(esr_repository *repo);

/* esr_repository_strategy: the strategy the repository was opened with. */
ESR_API esr_status esr_repository_strategy(const esr_repository *repo,
                                           esr_strategy *out);

/*
 * esr_repository_register: make an aggregate type known, by its name. The
 * definition is copied (the name too); its functions must stay valid.
 * ESR_EEXIST if the name is taken, ESR_ETOOBIG past ESR_TYPES_MAX types,
 * ESR_EINVAL for a malformed definition. Register before sharing the
 * repository between threads or concurrently with calls: both are safe.
 */
ESR_API esr_status esr_repository_register(esr_repository *repo,
                                           const esr_aggregate_type *type);

/*
 * esr_repository_load: replay the stream of (type, id) into state, a buffer of
 * exactly the type's state_size bytes, and its version into *version (may be
 * NULL). An absent stream loads as init() state at version 0.
 * ESR_ENOTYPE for an unregistered type; ESR_EINVAL if state_size differs.
 */
ESR_API esr_status esr_repository_load(esr_repository *repo, const char *type,
                                       const void *id, size_t id_len,
                                       void *state, size_t state_size,
                                       uint64_t *version);

/*
 * What one command did. Every field is set by every execute call.
 * duplicate: 1 when the command carried an id the stream had already
 * recorded: it appended nothing now, its status is ESR_OK, and version and
 * appended describe its first run's events (versions version - appended + 1
 * to version). 0 otherwise.
 */
typedef struct esr_result {
	uint64_t version;   /* stream version after the command (as loaded if nothing was appended) */
	uint32_t appended;  /* events this command appended */
	uint32_t attempts;  /* handler runs: 1 + retries; 0 if it never ran */
	int rejection;      /* handle()'s code when the status is ESR_EREJECTED, else 0 */
	int duplicate;      /* see above */
	esr_conflict conflict; /* filled when the status is ESR_ECONFLICT, else zeroed */
} esr_result;

/*
 * esr_repository_execute: load (type, id), run handle(state, command) once and
 * append its events. Returns ESR_OK, ESR_EREJECTED (result->rejection holds the
 * handler's code; nothing appended), ESR_ECONFLICT (optimistic only, after one
 * attempt; result->conflict says which versions), or an error. result may be
 * NULL. command is passed to handle() untouched and may be NULL (so it may
 * in the runtime's submit and execute calls).
 */
ESR_API esr_status esr_repository_execute(esr_repository *repo,
                                          const char *type, const void *id,
                                          size_t id_len, const void *command,
                                          esr_result *result);

/*
 * esr_repository_execute_with_retry: as execute, but on a conflict catch up
 * (read only the events after the version known, apply them) and run the
 * handler again, up to max_retries more times: at most max_retries + 1
 * attempts. result->attempts says how many it took. Exhaustion returns
 * ESR_ECONFLICT with result->conflict filled in (attempts = max_retries + 1).
 */
ESR_API esr_status esr_repository_execute_with_retry(esr_repository *repo,
                                                     const char *type,
                                                     const void *id,
                                                     size_t id_len,
                                                     const void *command,
                                                     unsigned max_retries,
                                                     esr_result *result);

/*
 * esr_repository_execute_many: load (type, id) once and run commands[0..n) on
 * it in order, each decided on the state the ones before it left, their
 * events appended together: in one append with one expected version when
 * they fit one (ESR_APPEND_MAX events and the store's byte limit for one
 * append, 1 MiB of payload), else in as few appends as they fit, in order.
 * statuses[i] (required) and results[i] (results may be NULL) get command i's
 * own outcome: ESR_OK with its own version range, ESR_EREJECTED, an emit's
 * error, or the append's failure for every command that depended on it (see
 * docs/architecture.md, "A turn is one append"). Under optimistic a conflict
 * catches up and decides that append's commands again, up to max_retries
 * more times. Returns ESR_OK once every command has its outcome; otherwise
 * (ESR_EINVAL for NULL repo, commands with n > 0 or statuses, the errors of
 * esr_repository_load) nothing was run.
 */
ESR_API esr_status esr_repository_execute_many(esr_repository *repo, const char *type,
                                               const void *id, size_t id_len,
                                               const void *const *commands, size_t n,
                                               unsigned max_retries, esr_status *statuses,
                                               esr_result *results);

/*
 * esr_repository_execute_id, esr_repository_execute_many_id: as
 * esr_repository_execute_with_retry and esr_repository_execute_many, with
 * command ids (cid NULL or {NULL, 0}: none; cids NULL: none for any, else
 * one per command). A command whose id the stream has recorded is not
 * decided again and appends nothing: ESR_OK, result->duplicate = 1, its
 * first run's versions (esr_execute_id tells the whole story). A malformed
 * id refuses the call before anything runs: ESR_EINVAL, or ESR_ETOOBIG for
 * one over ESR_COMMAND_ID_MAX.
 */
ESR_API esr_status esr_repository_execute_id(esr_repository *repo, const char *type,
                                             const void *id, size_t id_len,
                                             const void *command, const esr_command_id *cid,
                                             unsigned max_retries, esr_result *result);
ESR_API esr_status esr_repository_execute_many_id(esr_repository *repo, const char *type,
                                                  const void *id, size_t id_len,
                                                  const void *const *commands,
                                                  const esr_command_id *cids, size_t n,
                                                  unsigned max_retries, esr_status *statuses,
                                                  esr_result *results);

#ifdef __cplusplus
}
#endif

#endif /* ESR_REPOSITORY_H */
