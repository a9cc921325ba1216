/*
 * runtime/ref.c: references to aggregates (esr/ref.h): opening, closing,
 * and the calls that submit through one. submit.c does the routing.
 *
 * A reference holds two counts: one of its runtime's handles, so that the
 * handle outlives it even past esr_runtime_destroy, and one hold on the
 * actor it last reached (runtime/actor.h), so that the actor's memory
 * outlives its eviction until the reference looks again. Neither keeps
 * anything running: the actor is passivated as if no one held it, and after
 * stop the workers are gone as always.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "runtime/actor.h"
#include "runtime/ref.h"
#include "runtime/runtime_internal.h"
#include "runtime/ticket.h"

/* Runs of commands a reference copies into submissions at a time. */
#define RUN 64

esr_status esr_ref_open(esr_runtime *rt, const char *type, const void *id, size_t id_len,
                        esr_ref **out)
{
	const esr_aggregate_type *def;
	struct esr__key k;
	esr_ref *ref;
	esr_status st;

	if (rt == NULL || out == NULL)
		return ESR_EINVAL;
	if ((st = esr__check_id(id, id_len)) != ESR_OK)
		return st;
	if (!esr__window_open(rt)) { /* the types and registry are kept for us */
		esr__window_close(rt);
		return ESR_ESHUTDOWN;
	}
	if ((st = esr__types_find(&rt->types, type, &def)) != ESR_OK)
		goto out;
	esr__keyset_key(rt->actors, def->name, id, id_len, &k);
	st = ESR_ENOMEM;
	if ((ref = malloc(sizeof *ref + esr__key_storage(&k))) == NULL)
		goto out;
	ref->rt = rt;
	ref->type = def;
	ref->actor = NULL;
	esr__key_copy(&ref->key, &k, ref + 1);
	if ((st = esr__ref_attach(ref)) != ESR_OK) {
		free(ref);
		goto out;
	}
	/* Inside the window: destroy stops first, and stop waits for us. */
	ck_pr_inc_32(&rt->handles);
	*out = ref;
out:
	esr__window_close(rt);
	return st;
}

esr_status esr_ref_close(esr_ref *ref)
{
	if (ref == NULL)
		return ESR_OK;
	if (ref->actor != NULL)
		esr__actor_release(ref->actor);
	esr__runtime_put(ref->rt);
	free(ref);
	return ESR_OK;
}

esr_status esr_ref_submit_id(esr_ref *ref, const void *command, const esr_command_id *cid,
                             esr_ticket **ticket)
{
	esr_submission s = {.command = command, .command_id = cid ? *cid : (esr_command_id){NULL, 0}};

	if (ref == NULL || ticket == NULL)
		return ESR_EINVAL;
	return esr__ref_submit(ref, &s, 1, ticket, NULL, NULL);
}

esr_status esr_ref_submit(esr_ref *ref, const void *command, esr_ticket **ticket)
{
	return esr_ref_submit_id(ref, command, NULL, ticket);
}

esr_status esr_ref_submit_cb_id(esr_ref *ref, const void *command, const esr_command_id *cid,
                                esr_ticket_cb done, void *ctx)
{
	esr_submission s = {.command = command, .ctx = ctx,
	                    .command_id = cid ? *cid : (esr_command_id){NULL, 0}};

	if (ref == NULL || done == NULL)
		return ESR_EINVAL;
	return esr__ref_submit(ref, &s, 1, NULL, done, NULL);
}

esr_status esr_ref_submit_cb(esr_ref *ref, const void *command, esr_ticket_cb done, void *ctx)
{
	return esr_ref_submit_cb_id(ref, command, NULL, done, ctx);
}

esr_status esr_ref_submit_many_id(esr_ref *ref, const void *const *commands,
                                  const esr_command_id *cids, size_t n, esr_ticket **tickets,
                                  size_t *accepted)
{
	esr_submission s[RUN];
	esr_status st = ESR_OK;
	size_t i = 0, j, k, done;

	if (ref == NULL || tickets == NULL || (commands == NULL && n > 0))
		st = ESR_EINVAL;
	for (; st == ESR_OK && i < n; i += done) {
		k = n - i < RUN ? n - i : RUN;
		for (j = 0; j < k; j++)
			s[j] = (esr_submission){.command = commands[i + j],
			                        .command_id = cids ? cids[i + j]
			                                           : (esr_command_id){NULL, 0}};
		st = esr__ref_submit(ref, s, k, tickets + i, NULL, &done);
	}
	if (accepted)
		*accepted = i;
	return st;
}

esr_status esr_ref_submit_many(esr_ref *ref, const void *const *commands, size_t n,
                               esr_ticket **tickets, size_t *accepted)
{
	return esr_ref_submit_many_id(ref, commands, NULL, n, tickets, accepted);
}

esr_status esr_ref_execute_id(esr_ref *ref, const void *command, const esr_command_id *cid,
                              esr_result *result)
{
	esr_ticket *t;
	esr_status st, outcome;

	if (result)
		memset(result, 0, sizeof *result);
	if ((st = esr_ref_submit_id(ref, command, cid, &t)) != ESR_OK)
		return st;
	esr_ticket_wait(t, -1);
	esr_ticket_result(t, &outcome, result);
	esr_ticket_release(t);
	return outcome;
}

esr_status esr_ref_execute(esr_ref *ref, const void *command, esr_result *result)
{
	return esr_ref_execute_id(ref, command, NULL, result);
}
