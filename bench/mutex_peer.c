/*
 * bench/mutex_peer.c: what a C programmer writes first. Host threads call the
 * workload's decision logic directly, each aggregate guarded by its own
 * pthread_mutex, its events pushed onto an in-memory vector per aggregate.
 * No runtime, no mailbox, no store: the bar an actor runtime must clear at a
 * hot aggregate (skew 0.99), where threads queue on one mutex.
 *
 *   bench_mutex --plan FILE --commands N --workers T
 *
 * Thread t runs commands t, t + T, t + 2T, ... of the plan. Aggregates are
 * created and opened before the clock starts and found by index, not by id:
 * that favours this program (esr looks every command's actor up by id).
 * Prints one JSON line (bench/README.md) and checks itself at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"
#include "plan.h"
#include "sys.h"
#include "workload.h"

struct recorded {
	uint32_t type;
	int64_t amount;
	uint64_t seq;
};

struct aggregate {
	pthread_mutex_t lock;
	_Alignas(16) unsigned char state[STRESS_STATE_MAX];
	struct recorded *events;
	uint64_t nevents, cap;
	uint64_t accepted, rejected;
	int64_t expected[STRESS_TOTALS_MAX]; /* opening + accepted effects */
	int broke;                           /* the rule failed at some point */
};

struct shared {
	const struct stress_workload *wl;
	const struct stress_plan_file *plan;
	struct aggregate *aggs;
	uint64_t commands;
	unsigned threads;
	int failed_alloc;
};

struct thread {
	struct shared *sh;
	unsigned index;
	pthread_t id;
	struct histogram lat;
};

static int push(struct aggregate *a, uint32_t type, int64_t amount, uint64_t seq)
{
	if (a->nevents == a->cap) {
		uint64_t cap = a->cap ? a->cap * 2 : 8;
		struct recorded *ev = realloc(a->events, cap * sizeof *ev);
		if (ev == NULL)
			return -1;
		a->events = ev;
		a->cap = cap;
	}
	a->events[a->nevents++] = (struct recorded){type, amount, seq};
	return 0;
}

/* One command, as a host thread would run it: lock, decide, record, apply. */
static void run_one(struct shared *sh, struct aggregate *a, const struct stress_cmd *c,
                    uint64_t seq)
{
	const struct stress_workload *wl = sh->wl;
	uint32_t type = 0;
	int64_t amount;

	pthread_mutex_lock(&a->lock);
	if (wl->decide(a->state, c, &type, &amount) != 0) {
		a->rejected++;
	} else {
		a->accepted++;
		wl->effect(c, a->expected);
		if (type != 0) {
			if (push(a, type, amount, seq) != 0)
				sh->failed_alloc = 1;
			else
				wl->fold(a->state, type, amount);
		}
		a->broke |= !wl->valid(a->state);
	}
	pthread_mutex_unlock(&a->lock);
}

static void *thread_main(void *arg)
{
	struct thread *t = arg;
	struct shared *sh = t->sh;
	uint64_t i, start = 0;

	for (i = t->index; i < sh->commands; i += sh->threads) {
		const struct stress_cmd *c = &sh->plan->cmds[i % sh->plan->n];
		int timed = hist_timed(i / sh->threads); /* this thread's n-th */

		if (timed)
			start = stress_now_ns();
		run_one(sh, &sh->aggs[c->aggregate], c, i);
		if (timed)
			hist_record(&t->lat, stress_now_ns() - start);
	}
	return NULL;
}

/* Every aggregate's log, state and counters must agree; "" when they do. */
static const char *check(const struct shared *sh, uint64_t *accepted, uint64_t *rejected,
                         uint64_t *events)
{
	const struct stress_workload *wl = sh->wl;
	uint32_t k;

	*accepted = *rejected = *events = 0;
	for (k = 0; k < sh->plan->aggregates; k++) {
		const struct aggregate *a = &sh->aggs[k];
		int64_t measured[STRESS_TOTALS_MAX] = {0};
		int64_t dummy;
		uint64_t opening = wl->open(&dummy) != 0;

		*accepted += a->accepted;
		*rejected += a->rejected;
		*events += a->nevents;
		if (a->nevents != a->accepted + opening)
			return "an aggregate's events differ from its accepted commands";
		if (a->broke || !wl->valid(a->state))
			return "a business rule broke (negative balance)";
		wl->measure(a->state, measured);
		if (memcmp(measured, a->expected, sizeof measured) != 0)
			return "a state differs from its opening plus its accepted commands";
	}
	if (*accepted + *rejected != sh->commands)
		return "accepted + rejected differs from the commands sent";
	return "";
}

static int usage(const char *why)
{
	fprintf(stderr, "bench_mutex: %s\nusage: bench_mutex --plan FILE --commands N --workers T\n",
	        why);
	return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' || s[0] == '-' || *out == 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"plan", required_argument, NULL, 'p'},
	                                     {"commands", required_argument, NULL, 'n'},
	                                     {"workers", required_argument, NULL, 'w'},
	                                     {NULL, 0, NULL, 0}};
	struct shared sh = {0};
	struct stress_plan_file plan;
	struct thread *th;
	struct histogram lat;
	const char *path = NULL, *verdict;
	uint64_t workers = 1, accepted = 0, rejected = 0, events = 0, start;
	double secs;
	char err[256];
	uint32_t k;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'p')
			path = optarg;
		else if (c == 'n' && parse_u64(optarg, &sh.commands) == 0)
			continue;
		else if (c == 'w' && parse_u64(optarg, &workers) == 0 && workers <= 1024)
			continue;
		else
			return usage(c == 'n' ? "--commands: expected a positive count"
			             : c == 'w' ? "--workers: expected 1..1024" : "unknown option");
	}
	if (path == NULL || sh.commands == 0)
		return usage("--plan and --commands are required");
	if (stress_plan_read(path, &plan, err, sizeof err) != 0)
		return usage(err);
	if ((sh.wl = stress_workload_find(plan.workload)) == NULL)
		return usage("the plan's workload is not one this program knows");
	sh.plan = &plan;
	sh.threads = (unsigned)workers;
	sh.aggs = calloc(plan.aggregates, sizeof *sh.aggs);
	th = calloc(sh.threads, sizeof *th);
	if (sh.aggs == NULL || th == NULL)
		return usage("out of memory");
	for (k = 0; k < plan.aggregates; k++) { /* opened before the clock starts */
		int64_t amount;
		uint32_t type = sh.wl->open(&amount);
		pthread_mutex_init(&sh.aggs[k].lock, NULL);
		if (type != 0) {
			if (push(&sh.aggs[k], type, amount, STRESS_SEQ_SETUP) != 0)
				return usage("out of memory");
			sh.wl->fold(sh.aggs[k].state, type, amount);
			sh.wl->measure(sh.aggs[k].state, sh.aggs[k].expected);
		}
	}
	stress_rss_reset();
	start = stress_now_ns();
	for (k = 0; k < sh.threads; k++) {
		th[k] = (struct thread){.sh = &sh, .index = k};
		hist_init(&th[k].lat);
		if (pthread_create(&th[k].id, NULL, thread_main, &th[k]) != 0)
			return usage("cannot start threads");
	}
	hist_init(&lat);
	for (k = 0; k < sh.threads; k++) {
		pthread_join(th[k].id, NULL);
		hist_merge(&lat, &th[k].lat);
	}
	secs = (double)(stress_now_ns() - start) / 1e9;
	verdict = sh.failed_alloc ? "out of memory while recording events"
	                          : check(&sh, &accepted, &rejected, &events);
	printf("{\"system\":\"mutex\",\"mode\":\"direct\",\"workload\":\"%s\",\"aggregates\":%u,"
	       "\"workers\":%u,\"commands\":%llu,\"seconds\":%.6f,\"commands_per_s\":%.0f,"
	       "\"latency_ns\":{\"p50\":%llu,\"p99\":%llu,\"p999\":%llu},\"peak_rss_bytes\":%llu,"
	       "\"accepted\":%llu,\"rejected\":%llu,\"events\":%llu,\"check\":\"%s%s\"}\n",
	       plan.workload, plan.aggregates, sh.threads, (unsigned long long)sh.commands, secs,
	       (double)sh.commands / secs, (unsigned long long)hist_quantile(&lat, 0.50),
	       (unsigned long long)hist_quantile(&lat, 0.99),
	       (unsigned long long)hist_quantile(&lat, 0.999),
	       (unsigned long long)stress_rss_peak(), (unsigned long long)accepted,
	       (unsigned long long)rejected, (unsigned long long)events,
	       *verdict ? "failed: " : "ok", verdict);
	for (k = 0; k < plan.aggregates; k++) {
		pthread_mutex_destroy(&sh.aggs[k].lock);
		free(sh.aggs[k].events);
	}
	free(sh.aggs);
	free(th);
	stress_plan_file_free(&plan);
	return *verdict ? 1 : 0;
}
