/*
 * tools/stress/drive.c: one process's writers through the plan: start their
 * runtimes, run their threads (with the live progress line), probe their
 * actors, stop them. Timing covers the first submit to the last completion.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "drive.h"
#include "sys.h"

/* The live progress line, redrawn four times a second from its own thread. */
struct progress {
	FILE *out;
	struct writer *writers;
	unsigned n;
	esr_strategy strategy;
	uint64_t start;
	_Atomic int done;
	pthread_t thread;
};

static void *progress_main(void *arg)
{
	struct progress *pg = arg;
	struct timespec tick = {0, 250 * 1000 * 1000};

	while (!atomic_load(&pg->done)) {
		uint64_t completed = 0, conflicts = 0;
		double secs = (double)(stress_now_ns() - pg->start) / 1e9;
		esr_runtime_stats st;
		unsigned w;

		for (w = 0; w < pg->n; w++) {
			completed += atomic_load_explicit(&pg->writers[w].completed,
			                                  memory_order_relaxed);
			if (esr_runtime_stats_get(pg->writers[w].rt, &st) == ESR_OK)
				conflicts += st.conflicts;
		}
		fprintf(pg->out, "\r\033[K%s: %llu commands, %.0f commands/s, %llu conflicts, %.1f s",
		        esr_strategy_name(pg->strategy), (unsigned long long)completed,
		        secs > 0 ? (double)completed / secs : 0.0, (unsigned long long)conflicts,
		        secs);
		fflush(pg->out);
		nanosleep(&tick, NULL);
	}
	fputs("\r\033[K", pg->out);
	fflush(pg->out);
	return NULL;
}

esr_status stress_start_writers(const struct stress_plan *p, esr_strategy strategy,
                                esr_store *store, struct writer *ws, unsigned first,
                                unsigned count, unsigned *started)
{
	esr_runtime_config cfg = p->opt->runtime;
	esr_runtime *rt;
	esr_status st;

	cfg.strategy = strategy;
	for (*started = 0; *started < count; (*started)++) {
		if ((st = esr_runtime_start(&cfg, store, &rt)) != ESR_OK)
			return st;
		if ((st = esr_runtime_register(rt, &p->wl->type)) != ESR_OK ||
		    (st = writer_init(&ws[*started], p, first + *started, rt)) != ESR_OK) {
			esr_runtime_destroy(rt);
			return st;
		}
	}
	return ESR_OK;
}

esr_status stress_drive(const struct stress_plan *p, struct writer *ws, unsigned n,
                        FILE *progress, struct stress_result *r)
{
	unsigned w, spawned;
	struct progress pg = {progress, ws, n, r->strategy, 0, 0, 0};
	uint64_t start = stress_now_ns();
	esr_status st = ESR_OK;

	pg.start = start;
	for (w = 0; w < n; w++)
		ws[w].deadline = p->opt->duration > 0 ? start + (uint64_t)(p->opt->duration * 1e9) : 0;
	for (spawned = 0; spawned < n; spawned++)
		if (pthread_create(&ws[spawned].thread, NULL, writer_main, &ws[spawned]) != 0)
			break;
	if (progress != NULL && pthread_create(&pg.thread, NULL, progress_main, &pg) != 0)
		progress = NULL;
	for (w = 0; w < spawned; w++)
		pthread_join(ws[w].thread, NULL);
	r->seconds = (double)(stress_now_ns() - start) / 1e9;
	if (progress != NULL) {
		atomic_store(&pg.done, 1);
		pthread_join(pg.thread, NULL);
	}
	if (spawned < n)
		return ESR_ENOMEM;
	for (w = 0; w < n; w++) {
		struct writer *x = &ws[w];
		r->commands += x->count;
		r->accepted += x->accepted;
		r->rejected += x->rejected;
		r->exhausted += x->exhausted;
		r->dup_sent += x->dup_sent;
		r->dup_detected += x->dup_detected;
		if (x->errors != 0 && r->errors == 0)
			r->first_error = x->first_error;
		r->errors += x->errors;
		hist_merge(&r->latency, &x->latency);
		if (x->fatal != ESR_OK)
			st = x->fatal;
	}
	return st;
}

esr_status stress_probe(const struct stress_plan *p, struct writer *ws, unsigned nws,
                        struct stress_probes *pr)
{
	size_t n = (size_t)p->opt->writers * p->opt->aggregates, i;
	esr_status st = ESR_OK;
	unsigned w;

	pr->writers = p->opt->writers;
	pr->aggregates = p->opt->aggregates;
	pr->state_size = p->wl->type.state_size;
	pr->version = malloc(n * sizeof *pr->version);
	pr->states = calloc(n, pr->state_size);
	if (pr->version == NULL || pr->states == NULL)
		return ESR_ENOMEM;
	for (i = 0; i < n; i++)
		pr->version[i] = STRESS_PROBE_NONE;
	for (w = 0; w < nws && st == ESR_OK; w++)
		st = writer_probe(&ws[w], pr);
	return st;
}

void stress_stop_writers(struct writer *ws, unsigned n, struct stress_result *r)
{
	esr_runtime_stats s;
	unsigned w;

	for (w = 0; w < n; w++) {
		esr_runtime_stop(ws[w].rt);
		if (esr_runtime_stats_get(ws[w].rt, &s) == ESR_OK) {
			r->conflicts += s.conflicts;
			r->retries += s.retries;
			r->activations += s.activations;
			r->turn_appends += s.appends;
		}
		esr_runtime_destroy(ws[w].rt);
		ws[w].rt = NULL;
	}
}
