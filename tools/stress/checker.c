/*
 * tools/stress/checker.c: the independent checker. It reads every stream back
 * from the store and recomputes the business rules from the events alone,
 * with the workload's own fold, then holds the log against what the clients
 * were told (each command's outcome) and what each writer's actors held at
 * the end (the probes). It never reads the runtime's counters.
 *
 *  - rule_broken: the workload's rule fails in the state after some event.
 *  - gaps: versions are not exactly 1, 2, ..., n.
 *  - missing: an accepted command whose event is not in the log exactly once
 *    (a command that emits nothing, none here, would need no event).
 *  - applied_twice: a command whose event is in the log more than once: a
 *    resent command (--duplicates) that took effect again. Counted among
 *    `missing` too; reported on its own because its cause is its own.
 *  - unexplained: an event that is not the event of an accepted command of
 *    that aggregate: not acknowledged, refused, foreign or malformed.
 *  - totals_off: a sum over all aggregates (balances; stock and reserved;
 *    counter values) differs from the opening values plus the effects of the
 *    accepted commands.
 *  - divergent: some writer's actor held, for the version it claimed, a state
 *    that differs from the replay of the stream's first that-many events (or
 *    claimed a version the stream does not have).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "checker.h"

struct replay {
	const struct stress_plan *p;
	const struct stress_outcomes *out;
	const struct stress_probes *pr;
	uint8_t *seen; /* per command, saturating */
	uint32_t k;
	uint64_t expect;
	uint64_t span; /* stress_outcomes_span: command numbers are below it */
	int broken, gapped, diverged;
	_Alignas(max_align_t) unsigned char state[STRESS_STATE_MAX];
	struct stress_check *c;
};

/* Does every writer whose probe claims version v hold r->state? */
static void compare_probes(struct replay *r, uint64_t v)
{
	const struct stress_probes *pr = r->pr;
	unsigned w;

	for (w = 0; w < pr->writers; w++) {
		size_t at = (size_t)w * pr->aggregates + r->k;
		if (pr->version[at] == v &&
		    memcmp(pr->states + at * pr->state_size, r->state, pr->state_size) != 0)
			r->diverged = 1;
	}
}

/* Is this event the one of an accepted command of this aggregate? */
static int explained(struct replay *r, const esr_event *ev, const struct stress_payload *pl)
{
	const struct stress_plan *p = r->p;
	const struct stress_cmd *c;
	int64_t amount;

	if (pl->seq == STRESS_SEQ_SETUP) /* only as the first event, and as opened */
		return r->expect == 1 && ev->type == p->wl->open(&amount) && amount == pl->amount;
	if (pl->seq >= r->span || stress_outcome_of(r->out, pl->seq) != OUT_ACCEPTED)
		return 0;
	c = &p->cmds[pl->seq % p->ncmds];
	if (c->aggregate != r->k || c->amount != pl->amount || ev->type != p->wl->event_of(c))
		return 0;
	if (r->seen[pl->seq] < UINT8_MAX)
		r->seen[pl->seq]++;
	return 1;
}

static esr_status visit(void *ctx, const esr_recorded_event *rec)
{
	struct replay *r = ctx;
	struct stress_payload pl;

	if (rec->version != r->expect)
		r->gapped = 1;
	r->c->events++;
	if (stress_payload_read(&rec->event, &pl) != ESR_OK || !explained(r, &rec->event, &pl))
		r->c->unexplained++;
	else
		r->p->wl->fold(r->state, rec->event.type, pl.amount);
	if (!r->p->wl->valid(r->state))
		r->broken = 1;
	compare_probes(r, rec->version);
	r->expect = rec->version + 1;
	return ESR_OK;
}

/* Replay aggregate k; add its final state to the replayed totals. */
static esr_status replay_one(struct replay *r, esr_store *store, uint32_t k)
{
	const struct stress_plan *p = r->p;
	esr_stream_id sid = {p->wl->type.name, stress_plan_id(p, k), p->id_lens[k]};
	esr_status st;
	unsigned w;

	r->k = k;
	r->expect = 1;
	r->broken = r->gapped = r->diverged = 0;
	memset(r->state, 0, sizeof r->state);
	compare_probes(r, 0);
	if ((st = esr_store_read(store, &sid, 1, visit, r)) != ESR_OK)
		return st;
	for (w = 0; w < r->pr->writers; w++) { /* a version past the end */
		uint64_t v = r->pr->version[(size_t)w * r->pr->aggregates + k];
		if (v != STRESS_PROBE_NONE && v >= r->expect)
			r->diverged = 1;
	}
	p->wl->measure(r->state, r->c->replayed);
	r->c->rule_broken += r->broken;
	r->c->gaps += r->gapped;
	r->c->divergent += r->diverged;
	return ESR_OK;
}

/* What the totals must be: the opening values plus every accepted command. */
static void expected_totals(const struct stress_plan *p, const struct stress_outcomes *out,
                            int64_t *totals)
{
	_Alignas(max_align_t) unsigned char state[STRESS_STATE_MAX] = {0};
	int64_t amount;
	uint32_t type = p->wl->open(&amount);
	uint64_t i, span = stress_outcomes_span(out);

	if (type != 0)
		p->wl->fold(state, type, amount);
	for (i = 0; i < p->opt->aggregates; i++)
		p->wl->measure(state, totals);
	for (i = 0; i < span; i++)
		if (stress_outcome_of(out, i) == OUT_ACCEPTED)
			p->wl->effect(&p->cmds[i % p->ncmds], totals);
}

esr_status stress_check_run(const struct stress_plan *p, esr_store *store,
                            const struct stress_outcomes *out,
                            const struct stress_probes *probes, struct stress_check *c)
{
	uint64_t span = stress_outcomes_span(out);
	struct replay r = {p, out, probes, calloc(span ? span : 1, 1), 0, 0, span, 0, 0,
	                   0, {0}, c};
	esr_status st = ESR_OK;
	uint64_t i;
	uint32_t k;
	unsigned t;

	memset(c, 0, sizeof *c);
	if (r.seen == NULL)
		return ESR_ENOMEM;
	for (k = 0; k < p->opt->aggregates && st == ESR_OK; k++)
		st = replay_one(&r, store, k);
	for (i = 0; i < span; i++) {
		if ((stress_outcome_of(out, i) == OUT_ACCEPTED) != (r.seen[i] == 1))
			c->missing++;
		c->applied_twice += r.seen[i] > 1;
	}
	expected_totals(p, out, c->expected);
	for (t = 0; t < p->wl->ntotals; t++)
		c->totals_off += c->expected[t] != c->replayed[t];
	free(r.seen);
	return st;
}
