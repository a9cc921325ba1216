/*
 * runtime/repository.c: the direct API and its configuration. Each call
 * builds an esr__exec on the caller's stack, loads the aggregate, and lets
 * exec.c run the strategy. See docs/architecture.md for the map.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "runtime/exec.h"
#include "runtime/types.h"

struct esr_repository {
	esr_store *store;
	esr_strategy strategy;
	struct esr__types types;
};

esr_status esr_repository_config_default(esr_repository_config *config)
{
	if (config == NULL)
		return ESR_EINVAL;
	config->strategy = ESR_OPTIMISTIC;
	return ESR_OK;
}

esr_status esr_repository_config_from_env(esr_repository_config *config)
{
	esr_repository_config c;
	const char *v;
	esr_status st;

	if ((st = esr_repository_config_default(&c)) != ESR_OK)
		return st;
	v = getenv("ESR_STRATEGY");
	if (v != NULL && v[0] != '\0' && (st = esr_strategy_parse(v, &c.strategy)) != ESR_OK)
		return st;
	*config = c;
	return ESR_OK;
}

esr_status esr_repository_open(esr_store *store, const esr_repository_config *config,
                               esr_repository **out)
{
	esr_repository_config defaults;
	esr_repository *repo;

	if (store == NULL || out == NULL)
		return ESR_EINVAL;
	if (config == NULL) {
		esr_repository_config_default(&defaults);
		config = &defaults;
	}
	if (config->strategy != ESR_OPTIMISTIC && config->strategy != ESR_UNCHECKED)
		return ESR_EINVAL;
	if ((repo = malloc(sizeof *repo)) == NULL)
		return ESR_ENOMEM;
	repo->store = store;
	repo->strategy = config->strategy;
	esr__types_init(&repo->types);
	*out = repo;
	return ESR_OK;
}

esr_status esr_repository_close(esr_repository *repo)
{
	if (repo == NULL)
		return ESR_OK;
	esr__types_destroy(&repo->types);
	free(repo);
	return ESR_OK;
}

esr_status esr_repository_strategy(const esr_repository *repo, esr_strategy *out)
{
	if (repo == NULL || out == NULL)
		return ESR_EINVAL;
	*out = repo->strategy;
	return ESR_OK;
}

esr_status esr_repository_register(esr_repository *repo, const esr_aggregate_type *type)
{
	if (repo == NULL)
		return ESR_EINVAL;
	return esr__types_add(&repo->types, type);
}

/* One call's working set: the aggregate, its state, and an emitter. */
struct call {
	struct esr__exec x;
	esr_emitter em;
};

/* Resolve the type, check the id, allocate the state: every call's start. */
static esr_status begin(esr_repository *repo, const char *type, const void *id,
                        size_t id_len, struct call *c)
{
	const esr_aggregate_type *def;
	void *state;
	esr_status st;

	if (repo == NULL || id == NULL || id_len == 0)
		return ESR_EINVAL;
	if (id_len > ESR_ID_MAX)
		return ESR_ETOOBIG;
	if ((st = esr__types_find(&repo->types, type, &def)) != ESR_OK)
		return st;
	if ((state = malloc(def->state_size)) == NULL)
		return ESR_ENOMEM;
	esr__exec_bind(&c->x, def, repo->store, id, id_len, state);
	esr__emitter_init(&c->em);
	return ESR_OK;
}

static void end(struct call *c)
{
	free(c->x.state);
	esr__emitter_free(&c->em);
}

esr_status esr_repository_load(esr_repository *repo, const char *type,
                               const void *id, size_t id_len, void *state,
                               size_t state_size, uint64_t *version)
{
	struct call c;
	esr_status st;

	if (state == NULL)
		return ESR_EINVAL;
	if ((st = begin(repo, type, id, id_len, &c)) != ESR_OK)
		return st;
	if (state_size != c.x.type->state_size)
		st = ESR_EINVAL;
	else if ((st = esr__exec_load(&c.x, NULL)) == ESR_OK) {
		memcpy(state, c.x.state, state_size);
		if (version)
			*version = c.x.version;
	}
	end(&c);
	return st;
}

esr_status esr_repository_execute_with_retry(esr_repository *repo, const char *type,
                                             const void *id, size_t id_len,
                                             const void *command,
                                             unsigned max_retries, esr_result *result)
{
	esr_result scratch;
	struct call c;
	esr_status st;

	if (result == NULL)
		result = &scratch;
	memset(result, 0, sizeof *result);
	if ((st = begin(repo, type, id, id_len, &c)) != ESR_OK)
		return st;
	if ((st = esr__exec_load(&c.x, NULL)) == ESR_OK)
		st = esr__exec_run(&c.x, &c.em, command, repo->strategy, max_retries, result);
	end(&c);
	return st;
}

esr_status esr_repository_execute_many_id(esr_repository *repo, const char *type,
                                          const void *id, size_t id_len,
                                          const void *const *commands,
                                          const esr_command_id *cids, size_t n,
                                          unsigned max_retries, esr_status *statuses,
                                          esr_result *results)
{
	esr_result r[ESR__TURN_MAX];
	struct esr__turn *t;
	struct call c;
	esr_status st;
	void *scratch;
	size_t i = 0, j, k;

	if ((commands == NULL && n > 0) || statuses == NULL)
		return ESR_EINVAL;
	for (j = 0; cids != NULL && j < n; j++)
		if ((st = esr__check_command_id(&cids[j])) != ESR_OK)
			return st;
	if ((st = begin(repo, type, id, id_len, &c)) != ESR_OK)
		return st;
	t = &c.em.turn;
	if ((scratch = malloc(c.x.type->state_size)) == NULL)
		st = ESR_ENOMEM;
	else
		st = esr__exec_load(&c.x, NULL);
	while (st == ESR_OK && i < n) {
		for (t->n = 0; t->n < ESR__TURN_MAX && i + t->n < n; t->n++)
			t->c[t->n] = (struct esr__turn_cmd){
				.command = commands[i + t->n],
				.cid = cids ? cids[i + t->n] : (esr_command_id){NULL, 0}};
		k = esr__turn_run(&c.x, &c.em, t, scratch, repo->strategy, max_retries,
		                  statuses + i, r);
		for (j = 0; results != NULL && j < k; j++)
			results[i + j] = r[j];
		i += k;
	}
	free(scratch);
	end(&c);
	return st;
}

esr_status esr_repository_execute_many(esr_repository *repo, const char *type,
                                       const void *id, size_t id_len,
                                       const void *const *commands, size_t n,
                                       unsigned max_retries, esr_status *statuses,
                                       esr_result *results)
{
	return esr_repository_execute_many_id(repo, type, id, id_len, commands, NULL, n,
	                                      max_retries, statuses, results);
}

esr_status esr_repository_execute_id(esr_repository *repo, const char *type, const void *id,
                                     size_t id_len, const void *command,
                                     const esr_command_id *cid, unsigned max_retries,
                                     esr_result *result)
{
	esr_result scratch;
	esr_status st, outcome;

	if (result == NULL)
		result = &scratch;
	memset(result, 0, sizeof *result);
	st = esr_repository_execute_many_id(repo, type, id, id_len, &command, cid, 1,
	                                    max_retries, &outcome, result);
	return st != ESR_OK ? st : outcome;
}

esr_status esr_repository_execute(esr_repository *repo, const char *type,
                                  const void *id, size_t id_len,
                                  const void *command, esr_result *result)
{
	return esr_repository_execute_with_retry(repo, type, id, id_len, command, 0,
	                                         result);
}
