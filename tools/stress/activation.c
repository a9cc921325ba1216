/*
 * tools/stress/activation.c: what snapshots buy at activation (--snapshot-every).
 *
 * For aggregates of 10, 1 000 and 100 000 events, in a fresh store of the
 * run's kind: append the events in batches straight to the store and, as
 * the runtime would, save a snapshot each time a stream's version crosses a
 * multiple of N (the workload's own encode on the folded state). Then time
 * the first command (a probe, which emits nothing) to each aggregate on a
 * fresh runtime, twice: with the type's snapshots ignored, and with them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "store.h"
#include "sys.h"

#define PER_SIZE 5   /* aggregates of each size */
#define APPEND 1024  /* events per append while building */

static const uint64_t sizes[STRESS_ACTIVATION_SIZES] = {10, 1000, 100000};

/* Append `events` events to sid, snapshotting at every multiple of `every`. */
static esr_status build(const struct stress_options *o, esr_store *store,
                        const esr_stream_id *sid, uint64_t events, uint64_t *rng)
{
	const struct stress_workload *wl = o->workload;
	unsigned char state[STRESS_STATE_MAX], snap[STRESS_STATE_MAX];
	struct stress_payload pl[APPEND];
	esr_event ev[APPEND];
	uint64_t v = 0, every = o->runtime.snapshot_every;
	esr_status st;
	size_t i, n;

	memset(state, 0, sizeof state);
	while (v < events) {
		n = events - v < APPEND ? (size_t)(events - v) : APPEND;
		for (i = 0; i < n; i++) {
			struct stress_cmd c;
			wl->generate(rng, &c);
			pl[i] = (struct stress_payload){c.amount, v + i};
			ev[i] = (esr_event){.type = wl->event_of(&c), .payload = &pl[i],
			                    .payload_len = sizeof pl[i]};
		}
		if ((st = esr_store_append(store, sid, v, ev, n, NULL)) != ESR_OK)
			return st;
		for (i = 0; i < n; i++) {
			wl->type.apply(state, &ev[i]);
			if (++v % every == 0) {
				size_t len = wl->type.snapshot_encode(state, snap, sizeof snap);
				esr_snapshot s = {v, wl->type.snapshot_format, (uint32_t)len, snap};
				if ((st = esr_store_snapshot_save(store, sid, &s)) != ESR_OK)
					return st;
			}
		}
	}
	return ESR_OK;
}

/* Mean microseconds of the first command to each aggregate of one size. */
static esr_status time_activations(const struct stress_options *o, esr_store *store,
                                   uint64_t size, int snapshots, double *us,
                                   esr_runtime_stats *stats)
{
	esr_aggregate_type type = o->workload->type;
	esr_runtime_config cfg = o->runtime;
	unsigned char probe[STRESS_STATE_MAX];
	struct stress_msg m = {.probe = probe};
	esr_status st, cmd_st = ESR_OK;
	esr_result res;
	esr_runtime *rt;
	uint64_t t0, total = 0;
	char id[48];
	unsigned r;

	if (!snapshots) {
		type.snapshot_format = 0;
		type.snapshot_encode = NULL;
		type.snapshot_decode = NULL;
	}
	cfg.snapshot_every = 0; /* measure loading only: take none here */
	cfg.workers = 1;
	if ((st = esr_runtime_start(&cfg, store, &rt)) != ESR_OK)
		return st;
	if ((st = esr_runtime_register(rt, &type)) == ESR_OK) {
		/* Warm the runtime (threads, first allocations) on another aggregate. */
		cmd_st = esr_execute(rt, type.name, "act-warm-up", 11, &m, &res);
		for (r = 0; r < PER_SIZE && cmd_st == ESR_OK; r++) {
			int n = snprintf(id, sizeof id, "act-%llu-%u", (unsigned long long)size, r);
			t0 = stress_now_ns();
			cmd_st = esr_execute(rt, type.name, id, (size_t)n, &m, &res);
			total += stress_now_ns() - t0;
		}
	}
	esr_runtime_stop(rt);
	esr_runtime_stats_get(rt, stats);
	esr_runtime_destroy(rt);
	*us = (double)total / 1e3 / PER_SIZE;
	return st != ESR_OK ? st : cmd_st;
}

static esr_status measure(const struct stress_options *o, esr_store *store,
                          struct stress_activation *out)
{
	uint64_t rng = o->seed * 2654435761u + 1;
	esr_runtime_stats with, without;
	esr_status st;
	unsigned i, r;
	char id[48];

	for (i = 0; i < STRESS_ACTIVATION_SIZES; i++) {
		struct stress_activation_row *row = &out->rows[i];
		row->events = sizes[i];
		row->aggregates = PER_SIZE;
		for (r = 0; r < PER_SIZE; r++) {
			int n = snprintf(id, sizeof id, "act-%llu-%u", (unsigned long long)sizes[i], r);
			esr_stream_id sid = {o->workload->type.name, id, (size_t)n};
			if ((st = build(o, store, &sid, sizes[i], &rng)) != ESR_OK)
				return st;
		}
		if ((st = time_activations(o, store, sizes[i], 0, &row->without_us, &without)) !=
		            ESR_OK ||
		    (st = time_activations(o, store, sizes[i], 1, &row->with_us, &with)) != ESR_OK)
			return st;
		row->replayed_without = without.events_replayed / PER_SIZE;
		row->replayed_with = with.events_replayed / PER_SIZE;
		row->loaded = with.snapshots_loaded;
	}
	out->nrows = STRESS_ACTIVATION_SIZES;
	return ESR_OK;
}

esr_status stress_activation_run(const struct stress_options *o, struct stress_activation *out)
{
	esr_store *store = NULL;
	char name[4096];
	esr_status st;

	memset(out, 0, sizeof *out);
	out->every = o->runtime.snapshot_every;
	if ((st = stress_store_open(o, ESR_OPTIMISTIC, name, sizeof name, 1, &store)) != ESR_OK)
		return st;
	st = measure(o, store, out);
	esr_store_close(store);
	stress_store_remove(o, name);
	return st;
}

void stress_activation_print(const struct stress_activation *a, FILE *out)
{
	unsigned i;

	fprintf(out, "\nactivation (first command to a cold aggregate; mean of %u each; "
	        "snapshot every %llu events):\n", PER_SIZE, (unsigned long long)a->every);
	fprintf(out, "%-20s %16s %16s %9s %18s\n", "events per aggregate", "no snapshots",
	        "with snapshots", "speedup", "events replayed");
	for (i = 0; i < a->nrows; i++) {
		const struct stress_activation_row *r = &a->rows[i];
		char replayed[48];
		snprintf(replayed, sizeof replayed, "%llu -> %llu",
		         (unsigned long long)r->replayed_without,
		         (unsigned long long)r->replayed_with);
		fprintf(out, "%-20llu %13.1f us %13.1f us %8.1fx %18s\n",
		        (unsigned long long)r->events, r->without_us, r->with_us,
		        r->with_us > 0 ? r->without_us / r->with_us : 0, replayed);
	}
}
