/*
 * tools/stress/procs.c: one strategy's run as P processes sharing one store
 * (--processes, PostgreSQL), the way several esr deployments share a
 * database.
 *
 * The parent makes the store and opens the aggregates, then closes its own
 * connection and forks P children. The plan's writers are numbered across
 * all processes: with W writers each, child c runs writers cW .. cW+W-1,
 * so together they run exactly the commands one process with P*W writers
 * would, and the checker reads them the same way. Each child opens its own
 * store on the same schema and starts its runtimes, says it is ready, and
 * waits; the parent releases them all at once. Each child then sends back
 * its result, its writers' outcomes and probes; the parent merges them,
 * opens the store again and checks every stream.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checker.h"
#include "drive.h"
#include "procs.h"
#include "store.h"
#include "sys.h"

/* What a child sends: its status and result, then per writer its count and
 * outcomes, then its writers' rows of the probes. */
static int send_back(int fd, esr_status st, const struct stress_result *r,
                     const struct writer *ws, unsigned n, const struct stress_probes *pr,
                     unsigned first)
{
	size_t rows = (size_t)n * pr->aggregates, at = (size_t)first * pr->aggregates;
	unsigned w;

	if (stress_write_all(fd, &st, sizeof st) != 0 || stress_write_all(fd, r, sizeof *r) != 0)
		return -1;
	if (st != ESR_OK)
		return 0;
	for (w = 0; w < n; w++)
		if (stress_write_all(fd, &ws[w].count, sizeof ws[w].count) != 0 ||
		    stress_write_all(fd, ws[w].outcome, ws[w].count) != 0 ||
		    stress_write_all(fd, &ws[w].applied.n, sizeof ws[w].applied.n) != 0 ||
		    stress_write_all(fd, ws[w].applied.v, ws[w].applied.n * sizeof(uint64_t)) != 0)
			return -1;
	if (stress_write_all(fd, pr->version + at, rows * sizeof *pr->version) != 0 ||
	    stress_write_all(fd, pr->states + at * pr->state_size, rows * pr->state_size) != 0)
		return -1;
	return 0;
}

struct child_pipes {
	int ready; /* the child writes one byte when its runtimes are up */
	int go;    /* the parent closes it to release every child */
	int result;
};

/* Child `c`: run writers cW .. cW+W-1 of the plan, report, exit. */
static void child(const struct stress_plan *p, esr_strategy strategy, const char *name,
                  unsigned c, const struct child_pipes *pipes)
{
	unsigned n = p->opt->writers / p->opt->processes, first = c * n, started = 0, w;
	struct writer *ws = calloc(n, sizeof *ws);
	struct stress_probes pr = {0};
	struct stress_store_counters before, after;
	struct stress_result r;
	esr_store *store = NULL;
	char shared[4096], go;
	esr_status st;

	memset(&r, 0, sizeof r);
	r.strategy = strategy;
	hist_init(&r.latency);
	snprintf(shared, sizeof shared, "%s", name);
	stress_rss_reset();
	st = ws == NULL ? ESR_ENOMEM
	                : stress_store_open(p->opt, strategy, shared, sizeof shared, 0, &store);
	if (st == ESR_OK)
		st = stress_start_writers(p, strategy, store, ws, first, n, &started);
	if (stress_write_all(pipes->ready, "r", 1) != 0 || read(pipes->go, &go, 1) < 0)
		st = st == ESR_OK ? ESR_EIO : st;
	if (st == ESR_OK) {
		stress_store_counters(store, &before);
		st = stress_drive(p, ws, n, NULL, &r);
		stress_store_counters(store, &after);
		stress_store_counters_since(&r, &before, &after);
	}
	if (st == ESR_OK)
		st = stress_probe(p, ws, n, &pr);
	stress_stop_writers(ws, started, &r);
	r.peak_rss = stress_rss_peak();
	st = send_back(pipes->result, st, &r, ws, n, &pr, first) == 0 ? st : ESR_EIO;
	esr_store_close(store);
	for (w = 0; w < started; w++)
		writer_free(&ws[w]);
	_exit(st == ESR_OK ? 0 : 1);
}

/* Append a child writer's list of applied resends to *a. */
static int read_applied(int fd, struct seqs *a)
{
	uint64_t *v;
	size_t n;

	if (stress_read_all(fd, &n, sizeof n) != 0 || n > (SIZE_MAX / sizeof *v) - a->n)
		return -1;
	if ((v = realloc(a->v, (a->n + n + 1) * sizeof *v)) == NULL)
		return -1;
	a->v = v;
	if (stress_read_all(fd, a->v + a->n, n * sizeof *v) != 0)
		return -1;
	a->n += n;
	return 0;
}

/* Fold child c's report into r, outcomes and probes; the commands its
 * resends applied go to *applied, for when every child's outcomes are in. */
static esr_status take_back(int fd, const struct stress_plan *p, unsigned c,
                            struct stress_result *r, struct stress_outcomes *out,
                            struct stress_probes *pr, struct seqs *applied)
{
	unsigned n = p->opt->writers / p->opt->processes, w;
	size_t rows = (size_t)n * pr->aggregates, at = (size_t)c * n * pr->aggregates;
	struct stress_result cr;
	esr_status st;

	if (stress_read_all(fd, &st, sizeof st) != 0 || stress_read_all(fd, &cr, sizeof cr) != 0)
		return ESR_EIO;
	if (st != ESR_OK)
		return st;
	for (w = c * n; w < (c + 1) * n; w++) {
		if (stress_read_all(fd, &out->count[w], sizeof out->count[w]) != 0 ||
		    (out->by_writer[w] = malloc(out->count[w] + 1)) == NULL ||
		    stress_read_all(fd, out->by_writer[w], out->count[w]) != 0 ||
		    read_applied(fd, applied) != 0)
			return ESR_EIO;
		out->total += out->count[w];
	}
	if (stress_read_all(fd, pr->version + at, rows * sizeof *pr->version) != 0 ||
	    stress_read_all(fd, pr->states + at * pr->state_size, rows * pr->state_size) != 0)
		return ESR_EIO;
	r->commands += cr.commands;
	r->accepted += cr.accepted;
	r->rejected += cr.rejected;
	r->exhausted += cr.exhausted;
	if (cr.errors != 0 && r->errors == 0)
		r->first_error = cr.first_error;
	r->errors += cr.errors;
	r->conflicts += cr.conflicts;
	r->retries += cr.retries;
	r->activations += cr.activations;
	r->appends += cr.appends;
	r->turn_appends += cr.turn_appends;
	r->round_trips += cr.round_trips;
	r->dup_sent += cr.dup_sent;
	r->dup_detected += cr.dup_detected;
	r->peak_rss += cr.peak_rss; /* the processes' peaks, summed */
	if (cr.seconds > r->seconds)
		r->seconds = cr.seconds; /* released together: the last to finish */
	hist_merge(&r->latency, &cr.latency);
	return ESR_OK;
}

/* Fork the children; 0 when all of them are ready to go. */
static int spawn(const struct stress_plan *p, esr_strategy strategy, const char *name,
                 pid_t *pids, int *results, int go[2])
{
	unsigned P = p->opt->processes, c;
	int ready[2];
	char byte;

	if (pipe(ready) != 0)
		return -1;
	for (c = 0; c < P; c++) {
		int res[2];
		if (pipe(res) != 0)
			return -1;
		fflush(NULL);
		if ((pids[c] = fork()) < 0)
			return -1;
		if (pids[c] == 0) {
			struct child_pipes cp = {ready[1], go[0], res[1]};
			close(ready[0]);
			close(go[1]);
			close(res[0]);
			child(p, strategy, name, c, &cp);
		}
		close(res[1]);
		results[c] = res[0];
	}
	close(ready[1]);
	for (c = 0; c < P; c++)
		if (stress_read_all(ready[0], &byte, 1) != 0)
			break;
	close(ready[0]);
	return c == P ? 0 : -1;
}

esr_status stress_run_processes(const struct stress_plan *p0, esr_strategy strategy,
                                struct stress_result *r)
{
	unsigned P = p0->opt->processes, c;
	struct stress_options all = *p0->opt;
	struct stress_plan p = *p0;
	struct stress_outcomes out = {0};
	struct stress_probes pr = {0};
	struct seqs applied = {NULL, 0, 0};
	pid_t pids[STRESS_PROCESSES_MAX];
	int results[STRESS_PROCESSES_MAX], go[2], status;
	esr_store *store = NULL;
	char name[4096];
	esr_status st, cst;
	size_t cells;

	all.writers = p0->opt->writers * P; /* numbered across the processes */
	p.opt = &all;
	memset(r, 0, sizeof *r);
	r->strategy = strategy;
	r->processes = P;
	hist_init(&r->latency);
	cells = (size_t)all.writers * all.aggregates;
	out.writers = all.writers;
	out.by_writer = calloc(all.writers, sizeof *out.by_writer);
	out.count = calloc(all.writers, sizeof *out.count);
	pr.writers = all.writers;
	pr.aggregates = all.aggregates;
	pr.state_size = p.wl->type.state_size;
	pr.version = malloc(cells * sizeof *pr.version);
	pr.states = calloc(cells, pr.state_size);
	if (out.by_writer == NULL || out.count == NULL || pr.version == NULL || pr.states == NULL)
		st = ESR_ENOMEM;
	else if ((st = stress_store_open(&all, strategy, name, sizeof name, 1, &store)) == ESR_OK)
		st = stress_open_aggregates(&p, store);
	esr_store_close(store); /* no connection may cross the fork */
	store = NULL;
	if (st == ESR_OK && (pipe(go) != 0 || spawn(&p, strategy, name, pids, results, go) != 0))
		st = ESR_EIO;
	if (st == ESR_OK) {
		close(go[0]);
		close(go[1]); /* every child's read returns: go */
		for (c = 0; c < P; c++) {
			if ((cst = take_back(results[c], &p, c, r, &out, &pr, &applied)) != ESR_OK &&
			    st == ESR_OK)
				st = cst;
			close(results[c]);
		}
		for (size_t k = 0; st == ESR_OK && k < applied.n; k++)
			stress_outcome_accept(&out, applied.v[k]);
		for (c = 0; c < P; c++)
			while (waitpid(pids[c], &status, 0) < 0 && errno == EINTR)
				;
	}
	if (st == ESR_OK && (st = stress_store_open(&all, strategy, name, sizeof name, 0, &store)) ==
	                            ESR_OK)
		st = stress_check_run(&p, store, &out, &pr, &r->check);
	esr_store_close(store);
	stress_store_remove(&all, name);
	for (c = 0; out.by_writer != NULL && c < all.writers; c++)
		free(out.by_writer[c]);
	free(out.by_writer);
	free(out.count);
	free(applied.v);
	free(pr.version);
	free(pr.states);
	return st;
}
