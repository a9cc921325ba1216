/*
 * tools/stress/run.c: one strategy's run, from a fresh store to the check.
 * Timing covers the first submit to the last completion; opening the
 * aggregates, probing the actors and checking the store are outside it.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "writer.h"

/*
 * The run's store: memory; a file store in a directory of its own under the
 * --store=file:DIR directory; or a PostgreSQL schema of its own. `name` gets
 * the directory or schema ("" for memory). fresh: make it new (the first
 * open of a run); otherwise attach to the one `name` says (another process).
 */
esr_status stress_store_open(const struct stress_options *o, esr_strategy strategy,
                             char *name, size_t size, int fresh, esr_store **out)
{
	char why[512] = "";
	esr_status st;

	if (strcmp(o->store, "memory") == 0) {
		name[0] = '\0';
		return esr_memory_store_open(out);
	}
	if (strcmp(o->store, "file") == 0) {
		if (mkdir(o->store_path, 0755) != 0 && errno != EEXIST)
			return ESR_EIO;
		snprintf(name, size, "%s/esr-stress-%s-%ld", o->store_path,
		         esr_strategy_name(strategy), (long)getpid());
		return esr_file_store_open(name, NULL, out);
	}
	if (fresh) {
		snprintf(name, size, "esr_stress_%s_%ld", esr_strategy_name(strategy), (long)getpid());
		if ((st = esr_pg_drop(o->store_path, name, why, sizeof why)) != ESR_OK) {
			fprintf(stderr, "esr-stress: %s\n", why);
			return st;
		}
	}
	{
		esr_pg_store_options po;
		esr_pg_store_options_default(&po);
		po.schema = name;
		po.why = why;
		po.why_size = sizeof why;
		if ((st = esr_pg_store_open(o->store_path, &po, out)) != ESR_OK)
			fprintf(stderr, "esr-stress: %s\n", why);
	}
	return st;
}

/* Remove what the run made: a file store's segments, snapshots, checkpoints,
 * lock and directory, or the PostgreSQL schema. */
void stress_store_remove(const struct stress_options *o, const char *name)
{
	char path[4096];
	struct dirent *e;
	DIR *d;

	if (name[0] == '\0')
		return;
	if (strcmp(o->store, "postgres") == 0) {
		esr_pg_drop(o->store_path, name, NULL, 0);
		return;
	}
	if ((d = opendir(name)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (strcmp(e->d_name, "LOCK") == 0 || strcmp(e->d_name, "snapshots.log") == 0 ||
		    strncmp(e->d_name, "checkpoint.", 11) == 0 ||
		    (n > 4 && strcmp(e->d_name + n - 4, ".seg") == 0)) {
			snprintf(path, sizeof path, "%s/%s", name, e->d_name);
			unlink(path);
		}
	}
	closedir(d);
	rmdir(name);
}

void stress_store_counters(esr_store *store, struct stress_store_counters *c)
{
	esr_file_store_stats fs;
	esr_pg_store_stats ps;

	memset(c, 0, sizeof *c);
	if (esr_file_store_stats_get(store, &fs) == ESR_OK) {
		c->fsyncs = fs.fsyncs;
		c->events_synced = fs.events;
		c->appends = fs.appends;
	} else if (esr_pg_store_stats_get(store, &ps) == ESR_OK) {
		c->appends = ps.appends;
		c->round_trips = ps.round_trips;
	}
}

void stress_store_counters_since(struct stress_result *r, const struct stress_store_counters *before,
                                 const struct stress_store_counters *after)
{
	r->fsyncs += after->fsyncs - before->fsyncs;
	r->events_synced += after->events_synced - before->events_synced;
	r->appends += after->appends - before->appends;
	r->round_trips += after->round_trips - before->round_trips;
}

/* Open every aggregate that has an opening event, straight in the store. */
esr_status stress_open_aggregates(const struct stress_plan *p, esr_store *store)
{
	struct stress_payload pl = {0, STRESS_SEQ_SETUP};
	esr_event ev = {.payload = &pl, .payload_len = sizeof pl};
	esr_append_result ar;
	esr_status st;
	uint32_t k;

	if ((ev.type = p->wl->open(&pl.amount)) == 0)
		return ESR_OK;
	for (k = 0; k < p->opt->aggregates; k++) {
		esr_stream_id sid = {p->wl->type.name, stress_plan_id(p, k), p->id_lens[k]};
		if ((st = esr_store_append(store, &sid, 0, &ev, 1, &ar)) != ESR_OK)
			return st;
	}
	return ESR_OK;
}

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

/* Run the writers' threads; r gets the time and what the clients saw. */
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
		if (x->errors != 0 && r->errors == 0)
			r->first_error = x->first_error;
		r->errors += x->errors;
		hist_merge(&r->latency, &x->latency);
		if (x->fatal != ESR_OK)
			st = x->fatal;
	}
	return st;
}

/* Probe ws[0..n); pr is sized for all of the plan's writers. */
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

/* Stop every runtime; its counters are part of the result. */
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
		}
		esr_runtime_destroy(ws[w].rt);
		ws[w].rt = NULL;
	}
}

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

	if (p->opt->processes > 1)
		return stress_run_processes(p, strategy, r);
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
