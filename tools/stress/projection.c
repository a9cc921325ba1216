/*
 * tools/stress/projection.c: --projection. A read model of every aggregate
 * (its state, folded with the workload's own apply) kept by a subscription
 * while the commands run, then compared with a fresh replay of the store.
 *
 * The handler is written the way a read model should be: it remembers the
 * last position it applied and skips anything at or below it, so a delivery
 * repeated after a restart (at-least-once) changes nothing. Lag is measured
 * two ways: in events (head - position, sampled) and in time (the event's
 * timestamp, taken when the command was decided, to the moment it is applied).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "projection.h"
#include "sys.h"

#define LAG_SAMPLE 1024 /* events between samples of the head */

struct stress_projector {
	const struct stress_plan *p;
	esr_store *store;
	esr_subscription *sub;
	unsigned char *states; /* K states of the workload's size */
	uint64_t applied;      /* last position folded in */
	struct stress_projection r;
	double lag_ms_sum;
	uint64_t lag_n;
};

static double wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The aggregate index in "<prefix>-<k>", or -1 for a stream not of the plan. */
static long aggregate_of(const struct stress_plan *p, const esr_stream_id *sid)
{
	const char *id = sid->id;
	size_t pre = strlen(p->wl->id_prefix), i;
	unsigned long k = 0;

	if (strcmp(sid->type, p->wl->type.name) != 0 || sid->id_len <= pre + 1 ||
	    memcmp(id, p->wl->id_prefix, pre) != 0 || id[pre] != '-')
		return -1;
	for (i = pre + 1; i < sid->id_len; i++) {
		if (id[i] < '0' || id[i] > '9')
			return -1;
		k = k * 10 + (unsigned long)(id[i] - '0');
	}
	return k < p->opt->aggregates ? (long)k : -1;
}

static esr_status fold_into(const struct stress_plan *p, unsigned char *states,
                            const esr_recorded_event *ev)
{
	long k = aggregate_of(p, &ev->stream);
	struct stress_payload pl;

	if (k < 0 || stress_payload_read(&ev->event, &pl) != ESR_OK)
		return ESR_ECORRUPT;
	p->wl->type.apply(states + (size_t)k * p->wl->type.state_size, &ev->event);
	return ESR_OK;
}

static esr_status on_event(void *ctx, const esr_recorded_event *ev)
{
	struct stress_projector *pr = ctx;
	double lag;
	esr_status st;

	if (ev->position <= pr->applied) { /* seen before: at-least-once */
		pr->r.redelivered++;
		return ESR_OK;
	}
	if ((st = fold_into(pr->p, pr->states, ev)) != ESR_OK)
		return st;
	pr->applied = ev->position;
	if (ev->event.meta.timestamp_ns != 0) { /* 0: an opening event, not decided */
		lag = wall_ms() - (double)ev->event.meta.timestamp_ns / 1e6;
		pr->lag_ms_sum += lag;
		pr->lag_n++;
		if (lag > pr->r.lag_ms_max)
			pr->r.lag_ms_max = lag;
	}
	if (++pr->r.events % LAG_SAMPLE == 0) {
		uint64_t head;
		if (esr_store_head(pr->store, &head) == ESR_OK && head - ev->position >
		                                                      pr->r.lag_events_max)
			pr->r.lag_events_max = head - ev->position;
	}
	return ESR_OK;
}

static unsigned char *fresh_states(const struct stress_plan *p)
{
	size_t size = p->wl->type.state_size;
	unsigned char *s = calloc(p->opt->aggregates, size);
	uint32_t k;

	for (k = 0; s != NULL && p->wl->type.init != NULL && k < p->opt->aggregates; k++)
		p->wl->type.init(s + k * size, stress_plan_id(p, k), p->id_lens[k]);
	return s;
}

esr_status stress_projection_start(const struct stress_plan *p, esr_store *store,
                                   struct stress_projector **out)
{
	struct stress_projector *pr = calloc(1, sizeof *pr);
	esr_status st;

	if (pr == NULL || (pr->states = fresh_states(p)) == NULL) {
		free(pr);
		return ESR_ENOMEM;
	}
	pr->p = p;
	pr->store = store;
	pr->r.ran = 1;
	if ((st = esr_subscribe(store, 1, on_event, pr, NULL, &pr->sub)) != ESR_OK) {
		free(pr->states);
		free(pr);
		return st;
	}
	*out = pr;
	return ESR_OK;
}

static esr_status replay_event(void *ctx, const esr_recorded_event *ev)
{
	struct stress_projector *pr = ctx;

	return fold_into(pr->p, pr->states, ev);
}

/* Replay the whole store into fresh states; compare them with pr's. */
static esr_status compare(struct stress_projector *pr)
{
	const struct stress_plan *p = pr->p;
	size_t size = p->wl->type.state_size;
	unsigned char *model = pr->states, *replayed = fresh_states(p);
	uint64_t from = 1, next = 1;
	esr_status st = ESR_ENOMEM;
	uint32_t k;

	if (replayed == NULL)
		return st;
	pr->states = replayed;
	do {
		from = next;
		st = esr_store_read_all(pr->store, from, 4096, replay_event, pr, &next);
	} while (st == ESR_OK && next != from);
	pr->states = model;
	if (st == ESR_OK) {
		pr->r.equal = memcmp(model, replayed, (size_t)p->opt->aggregates * size) == 0;
		for (k = 0; k < p->opt->aggregates; k++)
			pr->r.invalid += !p->wl->valid(model + (size_t)k * size);
	}
	free(replayed);
	return st;
}

void stress_projection_finish(struct stress_projector *pr, struct stress_projection *out)
{
	uint64_t head = 0, t0 = stress_now_ns();
	esr_status st;

	st = esr_store_head(pr->store, &head);
	if (st == ESR_OK)
		st = esr_subscription_wait(pr->sub, head, 600000);
	pr->r.catch_up_ms = (double)(stress_now_ns() - t0) / 1e6;
	if (esr_subscription_stop(pr->sub) != ESR_OK && st == ESR_OK)
		st = ESR_EIO;
	if (st == ESR_OK)
		st = compare(pr);
	pr->r.status = st;
	pr->r.lag_ms_mean = pr->lag_n ? pr->lag_ms_sum / (double)pr->lag_n : 0;
	*out = pr->r;
	free(pr->states);
	free(pr);
}
