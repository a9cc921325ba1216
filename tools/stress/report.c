/*
 * tools/stress/report.c: print what the runs measured, one column per
 * strategy, and the same figures as JSON (through jansson).
 */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "report.h"

static double raw_cps(const struct stress_baseline *b)
{
	return b->seconds > 0 ? (double)b->commands / b->seconds : 0;
}

static double cps(const struct stress_result *r)
{
	return r->seconds > 0 ? (double)r->commands / r->seconds : 0;
}

static double vs_raw(const struct stress_report *rep, const struct stress_result *r)
{
	double raw = raw_cps(rep->baseline);

	return raw > 0 ? cps(r) / raw : 0;
}

int stress_check_failed(const struct stress_options *o, const struct stress_result *r)
{
	int bound = r->strategy == ESR_OPTIMISTIC || o->writers * o->processes == 1;

	const struct stress_projection *pj = &r->projection;

	/* A read model that differs from the replay is a failure under any strategy. */
	if (pj->ran && (pj->status != ESR_OK || !pj->equal))
		return 1;
	/* So is a resent command that took effect twice: ids hold for every
	 * strategy and writer count. */
	if (r->check.applied_twice != 0)
		return 1;
	return bound && (stress_violations(&r->check) != 0 || r->check.divergent != 0);
}

/* --- the table ----------------------------------------------------------------- */

static void duration_text(uint64_t ns, char *buf, size_t len)
{
	if (ns < 1000)
		snprintf(buf, len, "%llu ns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1f us", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.2f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.1f s", (double)ns / 1e9);
}

static void row_u64(const struct stress_report *rep, FILE *out, const char *name,
                    size_t offset)
{
	unsigned i;

	fprintf(out, "%-26s", name);
	for (i = 0; i < rep->nruns; i++)
		fprintf(out, " %14llu",
		        (unsigned long long)*(const uint64_t *)((const char *)&rep->runs[i] + offset));
	fputc('\n', out);
}

static void row_text(const struct stress_report *rep, FILE *out, const char *name,
                     void (*cell)(const struct stress_report *, const struct stress_result *,
                                  char *, size_t))
{
	char buf[64];
	unsigned i;

	fprintf(out, "%-26s", name);
	for (i = 0; i < rep->nruns; i++) {
		cell(rep, &rep->runs[i], buf, sizeof buf);
		fprintf(out, " %14s", buf);
	}
	fputc('\n', out);
}

#define CELL(fn, ...)                                                                  \
	static void fn(const struct stress_report *rep, const struct stress_result *r,    \
	               char *b, size_t n)                                                  \
	{                                                                                  \
		(void)rep;                                                                     \
		__VA_ARGS__;                                                                   \
	}

CELL(c_violations, snprintf(b, n, "%llu", (unsigned long long)stress_violations(&r->check)))
CELL(c_rule, snprintf(b, n, "%llu", (unsigned long long)r->check.rule_broken))
CELL(c_missing, snprintf(b, n, "%llu", (unsigned long long)r->check.missing))
CELL(c_twice, snprintf(b, n, "%llu", (unsigned long long)r->check.applied_twice))
CELL(c_unexplained, snprintf(b, n, "%llu", (unsigned long long)r->check.unexplained))
CELL(c_gaps, snprintf(b, n, "%llu", (unsigned long long)r->check.gaps))
CELL(c_totals, snprintf(b, n, "%llu", (unsigned long long)r->check.totals_off))
CELL(c_divergent, snprintf(b, n, "%llu", (unsigned long long)r->check.divergent))
CELL(c_cps, snprintf(b, n, "%.0f", cps(r)))
CELL(c_vs_raw, snprintf(b, n, "%.4f", vs_raw(rep, r)))
CELL(c_p50, duration_text(hist_quantile(&r->latency, 0.50), b, n))
CELL(c_p99, duration_text(hist_quantile(&r->latency, 0.99), b, n))
CELL(c_p999, duration_text(hist_quantile(&r->latency, 0.999), b, n))
CELL(c_max, duration_text(r->latency.max, b, n))
CELL(c_rss, if (r->peak_rss) snprintf(b, n, "%.1f MiB", (double)r->peak_rss / 1048576.0);
            else snprintf(b, n, "unknown"))
CELL(c_aps, if (r->appends && r->seconds > 0) snprintf(b, n, "%.0f", (double)r->appends /
                                                                  r->seconds);
            else snprintf(b, n, "-"))
CELL(c_per_append, if (r->turn_appends) snprintf(b, n, "%.1f", (double)r->accepted /
                                                            (double)r->turn_appends);
                   else snprintf(b, n, "-"))
CELL(c_per_trip, if (r->round_trips) snprintf(b, n, "%.1f", (double)r->appends /
                                                         (double)r->round_trips);
                 else snprintf(b, n, "-"))
CELL(c_per_fsync, if (r->fsyncs) snprintf(b, n, "%.1f", (double)r->events_synced /
                                                       (double)r->fsyncs);
                  else snprintf(b, n, "-"))

/* --projection: what each strategy's read model found. */
static void projections(const struct stress_report *rep, FILE *out)
{
	unsigned i;

	for (i = 0; i < rep->nruns; i++) {
		const struct stress_projection *pj = &rep->runs[i].projection;
		if (!pj->ran)
			continue;
		fprintf(out, "projection (%s): %llu events applied, %llu redelivered; lag "
		        "mean %.2f ms, max %.1f ms, max %llu events behind; caught up %.1f ms "
		        "after the last command; ",
		        esr_strategy_name(rep->runs[i].strategy), (unsigned long long)pj->events,
		        (unsigned long long)pj->redelivered, pj->lag_ms_mean, pj->lag_ms_max,
		        (unsigned long long)pj->lag_events_max, pj->catch_up_ms);
		if (pj->status != ESR_OK)
			fprintf(out, "FAILED: %s\n", esr_strerror(pj->status));
		else
			fprintf(out, "read model %s a fresh replay; %llu aggregate%s break%s the "
			        "rule in it.\n", pj->equal ? "equals" : "DIFFERS FROM",
			        (unsigned long long)pj->invalid, pj->invalid == 1 ? "" : "s",
			        pj->invalid == 1 ? "s" : "");
	}
}

static void header(const struct stress_report *rep, FILE *out)
{
	const struct stress_options *o = rep->opt;
	const struct stress_baseline *b = rep->baseline;
	unsigned i;

	fprintf(out, "esr-stress: workload %s, store %s, %u aggregates, skew %g, ",
	        o->workload->name, o->store, o->aggregates, o->skew);
	if (o->commands)
		fprintf(out, "%llu commands, seed %llu\n", (unsigned long long)o->commands,
		        (unsigned long long)o->seed);
	else
		fprintf(out, "%g s per strategy, seed %llu\n", o->duration,
		        (unsigned long long)o->seed);
	if (o->processes > 1)
		fprintf(out, "            %u processes sharing the store, each:\n", o->processes);
	fprintf(out, "            %u writer%s x %u workers, batch %u, window %u, "
	        "max retries %u, mailbox %u\n",
	        o->writers, o->writers == 1 ? "" : "s", o->runtime.workers, o->batch,
	        o->window, o->runtime.max_retries, o->runtime.mailbox_capacity);
	if (o->rate)
		fprintf(out, "            open loop: %llu commands/s offered; latency counts "
		        "from each command's due time\n", (unsigned long long)o->rate);
	fprintf(out, "baseline:   one thread on the aggregate logic, no runtime: %.0f commands/s "
	        "(%llu commands in %.3f s)\n\n", raw_cps(b), (unsigned long long)b->commands,
	        b->seconds);
	fprintf(out, "%-26s", "");
	for (i = 0; i < rep->nruns; i++)
		fprintf(out, " %14s", esr_strategy_name(rep->runs[i].strategy));
	fputc('\n', out);
}

/* One sentence per strategy on what the checker found. */
static void verdicts(const struct stress_report *rep, FILE *out)
{
	unsigned i;

	fputc('\n', out);
	for (i = 0; i < rep->nruns; i++) {
		const struct stress_result *r = &rep->runs[i];
		uint64_t v = stress_violations(&r->check);

		fprintf(out, "%s: ", esr_strategy_name(r->strategy));
		if (v == 0 && r->check.divergent == 0)
			fprintf(out, "every rule held; every actor's state matched its stream "
			        "(%llu events replayed).\n", (unsigned long long)r->check.events);
		else
			fprintf(out, "%llu invariant violation%s, %llu divergent aggregate%s: %s%s.\n",
			        (unsigned long long)v, v == 1 ? "" : "s",
			        (unsigned long long)r->check.divergent,
			        r->check.divergent == 1 ? "" : "s",
			        v != 0 ? "lost updates"
			               : "actors held stale state (the log kept every rule)",
			        r->strategy == ESR_UNCHECKED && rep->opt->writers * rep->opt->processes > 1
			            ? ", as expected of unchecked with several writers"
			            : ", where none may happen: a bug");
		if (r->errors)
			fprintf(out, "%s: %llu commands failed (first: %s).\n",
			        esr_strategy_name(r->strategy), (unsigned long long)r->errors,
			        esr_strerror(r->first_error));
	}
}

void report_table(const struct stress_report *rep, FILE *out)
{
	header(rep, out);
#define U(name, field) row_u64(rep, out, name, offsetof(struct stress_result, field))
	U("commands", commands);
	U("accepted", accepted);
	U("rejected", rejected);
	U("conflicts", conflicts);
	U("retries", retries);
	U("exhausted", exhausted);
	U("errors", errors);
#undef U
	row_text(rep, out, "invariant violations", c_violations);
	row_text(rep, out, "  rule broken (aggregates)", c_rule);
	row_text(rep, out, "  not exactly once", c_missing);
	if (rep->opt->duplicates > 0)
		row_text(rep, out, "    applied twice", c_twice);
	row_text(rep, out, "  unexplained events", c_unexplained);
	row_text(rep, out, "  version gaps", c_gaps);
	row_text(rep, out, "  totals off", c_totals);
	row_text(rep, out, "divergent aggregates", c_divergent);
	row_text(rep, out, "throughput (commands/s)", c_cps);
	row_text(rep, out, "vs raw", c_vs_raw);
	row_text(rep, out, "latency p50", c_p50);
	row_text(rep, out, "latency p99", c_p99);
	row_text(rep, out, "latency p99.9", c_p999);
	row_text(rep, out, "latency max", c_max);
	row_text(rep, out, "peak memory", c_rss);
	row_u64(rep, out, "appends", offsetof(struct stress_result, turn_appends));
	if (rep->opt->duplicates > 0) {
		row_u64(rep, out, "duplicates sent", offsetof(struct stress_result, dup_sent));
		row_u64(rep, out, "duplicates detected", offsetof(struct stress_result, dup_detected));
	}
	row_text(rep, out, "commands per append", c_per_append);
	if (strcmp(rep->opt->store, "file") == 0) {
		row_u64(rep, out, "fsyncs", offsetof(struct stress_result, fsyncs));
		row_text(rep, out, "events per fsync", c_per_fsync);
	}
	if (strcmp(rep->opt->store, "postgres") == 0) {
		row_text(rep, out, "appends/s", c_aps);
		row_u64(rep, out, "round trips", offsetof(struct stress_result, round_trips));
		row_text(rep, out, "appends per round trip", c_per_trip);
	}
	verdicts(rep, out);
	projections(rep, out);
}

/* --- JSON ---------------------------------------------------------------------- */

static json_t *run_json_core(const struct stress_report *rep, const struct stress_result *r)
{
	const struct stress_options *o = rep->opt;
	const struct stress_check *c = &r->check;

	return json_pack(
	    "{s:s, s:I, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
	    " s:f, s:f, s:f, s:{s:I, s:I, s:I, s:I, s:I}, s:I, s:{s:I, s:I, s:I, s:I, s:I},"
	    " s:I, s:f, s:I, s:I, s:I, s:f, s:I, s:f, s:b, s:I, s:I, s:I}",
	    "strategy", esr_strategy_name(r->strategy),
	    "workers", (json_int_t)o->runtime.workers,
	    "writers", (json_int_t)o->writers,
	    "aggregates", (json_int_t)o->aggregates,
	    "skew", o->skew,
	    "commands", (json_int_t)r->commands,
	    "accepted", (json_int_t)r->accepted,
	    "rejected", (json_int_t)r->rejected,
	    "conflicts", (json_int_t)r->conflicts,
	    "retries", (json_int_t)r->retries,
	    "exhausted", (json_int_t)r->exhausted,
	    "errors", (json_int_t)r->errors,
	    "invariant_violations", (json_int_t)stress_violations(c),
	    "divergent_aggregates", (json_int_t)c->divergent,
	    "throughput_cps", cps(r),
	    "vs_raw", vs_raw(rep, r),
	    "seconds", r->seconds,
	    "latency_ns",
	    "timed", (json_int_t)r->latency.count, /* HIST_TIME_EVERY */
	    "p50", (json_int_t)hist_quantile(&r->latency, 0.50),
	    "p99", (json_int_t)hist_quantile(&r->latency, 0.99),
	    "p999", (json_int_t)hist_quantile(&r->latency, 0.999),
	    "max", (json_int_t)r->latency.max,
	    "peak_rss_bytes", (json_int_t)r->peak_rss,
	    "violations",
	    "rule_broken", (json_int_t)c->rule_broken,
	    "not_exactly_once", (json_int_t)c->missing,
	    "unexplained_events", (json_int_t)c->unexplained,
	    "version_gaps", (json_int_t)c->gaps,
	    "totals_off", (json_int_t)c->totals_off,
	    "fsyncs", (json_int_t)r->fsyncs,
	    "events_per_fsync", r->fsyncs ? (double)r->events_synced / (double)r->fsyncs : 0.0,
	    "processes", (json_int_t)r->processes,
	    "store_appends", (json_int_t)r->appends,
	    "round_trips", (json_int_t)r->round_trips,
	    "appends_per_s", r->seconds > 0 ? (double)r->appends / r->seconds : 0.0,
	    "appends", (json_int_t)r->turn_appends,
	    "commands_per_append",
	    r->turn_appends ? (double)r->accepted / (double)r->turn_appends : 0.0,
	    "command_ids", o->command_ids,
	    "duplicates_sent", (json_int_t)r->dup_sent,
	    "duplicates_detected", (json_int_t)r->dup_detected,
	    "duplicates_applied", (json_int_t)c->applied_twice);
}

static json_t *projection_json(const struct stress_projection *pj)
{
	return json_pack("{s:I, s:I, s:b, s:I, s:I, s:f, s:f, s:f, s:s}",
	                 "events", (json_int_t)pj->events,
	                 "redelivered", (json_int_t)pj->redelivered,
	                 "equals_replay", pj->status == ESR_OK && pj->equal,
	                 "invalid_aggregates", (json_int_t)pj->invalid,
	                 "lag_events_max", (json_int_t)pj->lag_events_max,
	                 "lag_ms_mean", pj->lag_ms_mean,
	                 "lag_ms_max", pj->lag_ms_max,
	                 "catch_up_ms", pj->catch_up_ms,
	                 "status", esr_status_name(pj->status));
}

static json_t *run_json(const struct stress_report *rep, const struct stress_result *r)
{
	json_t *j = run_json_core(rep, r);

	if (j != NULL && r->projection.ran)
		json_object_set_new(j, "projection", projection_json(&r->projection));
	return j;
}

static json_t *document(const struct stress_report *rep)
{
	const struct stress_options *o = rep->opt;
	const struct stress_baseline *b = rep->baseline;
	json_t *doc, *runs = json_array();
	unsigned i;

	for (i = 0; runs != NULL && i < rep->nruns; i++)
		if (json_array_append_new(runs, run_json(rep, &rep->runs[i])) != 0) {
			json_decref(runs);
			return NULL;
		}
	doc = json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I,"
	                " s:{s:f, s:I, s:I, s:f}, s:o}",
	                "tool", "esr-stress",
	                "workload", o->workload->name,
	                "store", o->store,
	                "seed", (json_int_t)o->seed,
	                "planned_commands", (json_int_t)o->commands,
	                "duration_s", o->duration,
	                "batch", (json_int_t)o->batch,
	                "window", (json_int_t)o->window,
	                "rate", (json_int_t)o->rate,
	                "max_retries", (json_int_t)o->runtime.max_retries,
	                "mailbox_capacity", (json_int_t)o->runtime.mailbox_capacity,
	                "baseline",
	                "raw_cps", raw_cps(b),
	                "commands", (json_int_t)b->commands,
	                "accepted", (json_int_t)b->accepted,
	                "seconds", b->seconds,
	                "runs", runs);
	return doc;
}

int report_json(const struct stress_report *rep, const char *path)
{
	json_t *doc = document(rep);
	int rc;

	if (doc == NULL) {
		fprintf(stderr, "esr-stress: --json: out of memory building the document\n");
		return -1;
	}
	if (strcmp(path, "-") == 0) {
		rc = json_dumpf(doc, stdout, JSON_INDENT(2));
		if (rc == 0 && (fputc('\n', stdout) == EOF || fflush(stdout) != 0))
			rc = -1;
	} else {
		rc = json_dump_file(doc, path, JSON_INDENT(2));
	}
	if (rc != 0)
		fprintf(stderr, "esr-stress: --json: cannot write %s: %s\n", path, strerror(errno));
	json_decref(doc);
	return rc;
}
