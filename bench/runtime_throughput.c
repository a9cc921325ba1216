/*
 * bench/runtime_throughput.c: commands/s through the actor runtime on the
 * memory store, for both strategies, in one run (so the ratio between them
 * holds on a noisy machine even when absolute figures drift).
 *
 *   runtime_throughput [AGGREGATES [COMMANDS [WORKERS]]]
 *
 * One host thread submits COMMANDS counter increments spread round-robin over
 * AGGREGATES aggregates (callbacks, no waiting per command); the clock stops
 * when esr_runtime_stop has drained them all. Each strategy is run by name
 * (esr_submit_cb) and through references opened before the clock starts
 * (esr_ref_submit_cb, esr/ref.h); each of the four is run 3 times, rounds
 * interleaved, and the best run is reported.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <esr/esr.h>

struct counter {
	uint64_t value;
};

static void apply(void *state, const esr_event *ev)
{
	(void)ev;
	((struct counter *)state)->value++;
}

static int handle(const void *state, const void *command, esr_emitter *em)
{
	uint64_t next = ((const struct counter *)state)->value + 1;

	(void)command;
	return esr_emit(em, 1, &next, sizeof next);
}

static const esr_aggregate_type counter = {
	.name = "Counter", .state_size = sizeof(struct counter), .apply = apply, .handle = handle};

static uint64_t completed_ok;

static void done(void *ctx, esr_status st, const esr_result *r)
{
	(void)ctx;
	(void)r;
	if (st == ESR_OK)
		__atomic_add_fetch(&completed_ok, 1, __ATOMIC_RELAXED);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double run(esr_strategy strategy, int by_ref, unsigned aggregates, unsigned commands,
                  unsigned workers)
{
	static const char cmd = 0;
	esr_runtime_config c;
	esr_runtime *rt;
	esr_store *store;
	char (*ids)[16] = malloc((size_t)aggregates * sizeof *ids);
	esr_ref **refs = calloc(aggregates, sizeof *refs);
	esr_status st;
	double t0, t1;
	unsigned i;

	esr_runtime_config_default(&c);
	c.workers = workers;
	c.strategy = strategy;
	c.passivate_ms = 0;
	for (i = 0; i < aggregates; i++)
		snprintf(ids[i], sizeof ids[i], "c-%u", i);
	if (ids == NULL || refs == NULL || esr_memory_store_open(&store) != ESR_OK ||
	    esr_runtime_start(&c, store, &rt) != ESR_OK ||
	    esr_runtime_register(rt, &counter) != ESR_OK) {
		fprintf(stderr, "runtime_throughput: could not start\n");
		exit(1);
	}
	for (i = 0; by_ref && i < aggregates; i++)
		if ((st = esr_ref_open(rt, "Counter", ids[i], strlen(ids[i]), &refs[i])) != ESR_OK) {
			fprintf(stderr, "runtime_throughput: ref_open: %s\n", esr_strerror(st));
			exit(1);
		}
	completed_ok = 0;
	t0 = now_s();
	for (i = 0; i < commands; i++) {
		const char *id = ids[i % aggregates];
		if (by_ref)
			st = esr_ref_submit_cb(refs[i % aggregates], &cmd, done, NULL);
		else
			st = esr_submit_cb(rt, "Counter", id, strlen(id), &cmd, done, NULL);
		if (st != ESR_OK) {
			fprintf(stderr, "runtime_throughput: submit: %s\n", esr_strerror(st));
			exit(1);
		}
	}
	esr_runtime_stop(rt);
	t1 = now_s();
	if (completed_ok != commands) {
		fprintf(stderr, "runtime_throughput: %" PRIu64 " of %u commands succeeded\n",
		        completed_ok, commands);
		exit(1);
	}
	for (i = 0; by_ref && i < aggregates; i++)
		esr_ref_close(refs[i]);
	esr_runtime_destroy(rt);
	esr_store_close(store);
	free(ids);
	free(refs);
	return commands / (t1 - t0);
}

int main(int argc, char **argv)
{
	unsigned aggregates = argc > 1 ? (unsigned)atoi(argv[1]) : 10000;
	unsigned commands = argc > 2 ? (unsigned)atoi(argv[2]) : 1000000;
	unsigned workers = argc > 3 ? (unsigned)atoi(argv[3]) : 2;
	static const char *name[4] = {"optimistic", "unchecked", "optimistic, refs",
	                              "unchecked, refs"};
	double best[4] = {0, 0, 0, 0};
	int s, k;

	if (aggregates == 0 || commands == 0 || workers == 0) {
		fprintf(stderr, "usage: runtime_throughput [AGGREGATES [COMMANDS [WORKERS]]] (all > 0)\n");
		return 2;
	}
	for (k = 0; k < 3; k++)
		for (s = 0; s < 4; s++) {
			double r = run(s & 1 ? ESR_UNCHECKED : ESR_OPTIMISTIC, s >> 1, aggregates,
			               commands, workers);
			if (r > best[s])
				best[s] = r;
		}
	printf("aggregates=%u commands=%u workers=%u (best of 3)\n", aggregates, commands, workers);
	for (s = 0; s < 4; s++)
		printf("  %-17s %.0f commands/s (%.0f ns/command)\n", name[s], best[s],
		       1e9 / best[s]);
	printf("  unchecked / optimistic: %.2f; through references / by name: %.2f, %.2f\n",
	       best[1] / best[0], best[2] / best[0], best[3] / best[1]);
	return 0;
}
