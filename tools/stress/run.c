/*
 * tools/stress/run.c: one strategy's run in this process, from a fresh store
 * to the check. Timing covers the first submit to the last completion;
 * opening the aggregates, probing the actors and checking the store are
 * outside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checker.h"
#include "drive.h"
#include "projection.h"
#include "run.h"
#include "store.h"
#include "sys.h"

static esr_status check(const struct stress_plan *p, esr_store *store, struct writer *ws,
                        const struct stress_probes *pr, struct stress_result *r)
{
	unsigned w, n = p->opt->writers;
	struct stress_outcomes out = {n, calloc(n, sizeof(uint8_t *)),
	                              calloc(n, sizeof(uint64_t)), 0};
	esr_status st = ESR_ENOMEM;

	if (out.by_writer != NULL && out.count != NULL) {
		for (w = 0; w < n; w++) {
			out.by_writer[w] = ws[w].outcome;
			out.count[w] = ws[w].count;
			out.total += ws[w].count;
		}
		for (w = 0; w < n; w++)
			for (size_t k = 0; k < ws[w].applied.n; k++)
				stress_outcome_accept(&out, ws[w].applied.v[k]);
		st = stress_check_run(p, store, &out, pr, &r->check);
	}
	free(out.by_writer);
	free(out.count);
	return st;
}

esr_status stress_run(const struct stress_plan *p, esr_strategy strategy, FILE *progress,
                      struct stress_result *r)
{
	unsigned started = 0, w;
	struct writer *ws;
	struct stress_probes pr = {0};
	struct stress_store_counters before, after;
	struct stress_projector *proj = NULL;
	esr_store *store = NULL;
	char name[4096];
	esr_status st;

	memset(r, 0, sizeof *r);
	r->strategy = strategy;
	r->processes = 1;
	hist_init(&r->latency);
	if ((ws = calloc(p->opt->writers, sizeof *ws)) == NULL)
		return ESR_ENOMEM;
	stress_rss_reset();
	if ((st = stress_store_open(p->opt, strategy, name, sizeof name, 1, &store)) == ESR_OK &&
	    (st = stress_open_aggregates(p, store)) == ESR_OK &&
	    (!p->opt->projection || (st = stress_projection_start(p, store, &proj)) == ESR_OK) &&
	    (st = stress_start_writers(p, strategy, store, ws, 0, p->opt->writers, &started)) ==
	            ESR_OK) {
		stress_store_counters(store, &before);
		st = stress_drive(p, ws, p->opt->writers, progress, r);
		stress_store_counters(store, &after);
		stress_store_counters_since(r, &before, &after);
	}
	if (st == ESR_OK)
		st = stress_probe(p, ws, p->opt->writers, &pr);
	stress_stop_writers(ws, started, r);
	r->peak_rss = stress_rss_peak();
	if (proj != NULL)
		stress_projection_finish(proj, &r->projection);
	if (st == ESR_OK)
		st = check(p, store, ws, &pr, r);
	for (w = 0; w < started; w++)
		writer_free(&ws[w]);
	free(ws);
	free(pr.version);
	free(pr.states);
	esr_store_close(store);
	stress_store_remove(p->opt, name);
	return st;
}
