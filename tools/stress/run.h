/*
 * tools/stress/run.h: one esr-stress run: the plan every strategy shares,
 * what a run under one strategy measured, and what the checker found.
 */
#ifndef ESR_STRESS_RUN_H
#define ESR_STRESS_RUN_H

#include <stdint.h>
#include <stdio.h>

#include <esr/esr.h>

#include "histogram.h"
#include "options.h"
#include "workload.h"

#define STRESS_ID_STRIDE 24        /* bytes per id in the id table */
#define STRESS_TIMED_SEQUENCE (1u << 20) /* commands generated for a timed run */

/* What the baseline and every strategy run: the same commands, the same ids. */
struct stress_plan {
	const struct stress_options *opt;
	const struct stress_workload *wl;
	struct stress_cmd *cmds; /* the sequence; command i is cmds[i % ncmds] */
	uint64_t ncmds;
	char *ids;               /* K ids, STRESS_ID_STRIDE apart */
	uint8_t *id_lens;
};

esr_status stress_plan_init(struct stress_plan *p, const struct stress_options *opt);
void stress_plan_free(struct stress_plan *p);

/*
 * Write the sequence to `path` in the plan file format of bench/README.md,
 * so that programs outside esr run exactly the same commands. ESR_EIO (with
 * errno kept) when the file cannot be written in full.
 */
esr_status stress_plan_write(const struct stress_plan *p, const char *path);

/* A plan file read back (by the bench programs that run the same commands). */
struct stress_plan_file {
	char workload[17];     /* NUL-terminated */
	uint32_t aggregates;
	uint64_t seed;
	uint64_t n;            /* commands in the file */
	struct stress_cmd *cmds;
};

/*
 * Read `path` into *p. 0 on success; otherwise -1 with a one-line reason in
 * err (a missing file, a bad magic, a truncated or oversized file, an
 * aggregate index out of range).
 */
int stress_plan_read(const char *path, struct stress_plan_file *p, char *err, size_t errlen);
void stress_plan_file_free(struct stress_plan_file *p);

static inline const char *stress_plan_id(const struct stress_plan *p, uint32_t k)
{
	return p->ids + (size_t)k * STRESS_ID_STRIDE;
}

/* The client's view of each command, by writer: command i = w + j * writers. */
enum stress_outcome { OUT_NONE = 0, OUT_ACCEPTED, OUT_REJECTED, OUT_EXHAUSTED, OUT_ERROR };

struct stress_outcomes {
	unsigned writers;
	uint8_t **by_writer; /* [w][j] */
	uint64_t *count;     /* commands writer w submitted */
	uint64_t total;      /* commands in all */
};

static inline uint8_t stress_outcome_of(const struct stress_outcomes *o, uint64_t i)
{
	unsigned w = (unsigned)(i % o->writers);
	uint64_t j = i / o->writers;

	return j < o->count[w] ? o->by_writer[w][j] : OUT_NONE;
}

/* One past the highest command number any writer submitted. Not `total`:
 * writers stopped by time submit different counts, so numbers run past it. */
static inline uint64_t stress_outcomes_span(const struct stress_outcomes *o)
{
	uint64_t span = 0, end;
	unsigned w;

	for (w = 0; w < o->writers; w++) {
		end = o->count[w] ? w + (o->count[w] - 1) * o->writers + 1 : 0;
		if (end > span)
			span = end;
	}
	return span;
}

/* The state each writer's actor held at the end, and the version it claimed. */
struct stress_probes {
	unsigned writers;
	uint32_t aggregates;
	size_t state_size;
	uint64_t *version;     /* [w * K + k]; STRESS_PROBE_NONE if the probe failed */
	unsigned char *states; /* [(w * K + k) * state_size] */
};
#define STRESS_PROBE_NONE UINT64_MAX

/* What the checker found by replaying every stream from the store. */
struct stress_check {
	uint64_t events;      /* events replayed */
	uint64_t rule_broken; /* aggregates whose rule broke at some version */
	uint64_t gaps;        /* aggregates whose versions are not 1, 2, ..., n */
	uint64_t missing;     /* accepted commands not in the log exactly once */
	uint64_t unexplained; /* events no accepted command of that aggregate explains */
	uint64_t totals_off;  /* totals that do not add up */
	uint64_t divergent;   /* aggregates some writer's actor held a wrong state for */
	int64_t expected[STRESS_TOTALS_MAX], replayed[STRESS_TOTALS_MAX];
};

static inline uint64_t stress_violations(const struct stress_check *c)
{
	return c->rule_broken + c->gaps + c->missing + c->unexplained + c->totals_off;
}

esr_status stress_check_run(const struct stress_plan *p, esr_store *store,
                            const struct stress_outcomes *out,
                            const struct stress_probes *probes, struct stress_check *c);

/* What --projection found: the read model kept while the commands ran. */
struct stress_projection {
	int ran;
	uint64_t events;       /* events the projection applied */
	uint64_t redelivered;  /* events it skipped as already applied */
	int equal;             /* the read model equals a fresh replay */
	uint64_t invalid;      /* aggregates the read model finds breaking the rule */
	uint64_t lag_events_max; /* store head - projection position, sampled */
	double lag_ms_mean, lag_ms_max; /* decision (event timestamp) to projection */
	double catch_up_ms;    /* after the last command, until it reached the head */
	esr_status status;     /* the subscription's, or what the finish hit */
};

struct stress_result {
	esr_strategy strategy;
	uint64_t commands, accepted, rejected, exhausted, errors;
	esr_status first_error; /* of the errors, the first seen */
	uint64_t conflicts, retries, activations;
	double seconds; /* first submit to last completion */
	struct histogram latency; /* ns, submit to completion */
	uint64_t peak_rss;        /* bytes; 0 when unknown */
	uint64_t fsyncs, events_synced; /* file store, during the timed run */
	uint64_t appends, round_trips;  /* durable stores: acknowledged appends, and
	                                   (postgres) pipelines sent, during the timed run */
	unsigned processes;             /* that ran the strategy (merged results) */
	struct stress_check check;
	struct stress_projection projection;
};

struct stress_projector;

/* --projection (tools/stress/projection.c): subscribe from position 1 and
 * fold every event into a per-aggregate read model. */
esr_status stress_projection_start(const struct stress_plan *p, esr_store *store,
                                   struct stress_projector **out);
/* Wait for it to reach the head, stop it, compare with a fresh replay. Frees pr. */
void stress_projection_finish(struct stress_projector *pr, struct stress_projection *out);

/*
 * Run the plan under one strategy in this process: a fresh store, opened
 * aggregates, opt->writers runtimes, one submitting thread each; then probe
 * every actor, stop, and check the store. progress (may be NULL) gets a live
 * line. opt->processes is not looked at: several processes are
 * stress_run_processes (procs.h). Returns an error only when the run could
 * not be carried out.
 */
esr_status stress_run(const struct stress_plan *p, esr_strategy strategy,
                      FILE *progress, struct stress_result *r);

struct stress_baseline {
	uint64_t commands, accepted, events;
	double seconds;
};

/* The plan's commands in this thread on plain memory: no runtime, no atomics. */
esr_status stress_baseline_run(const struct stress_plan *p, struct stress_baseline *b);

/* Peak resident memory: reset the mark, read it (bytes; 0 when unknown). */
void stress_rss_reset(void);
uint64_t stress_rss_peak(void);

/* All of len bytes through a pipe, which moves them in pieces: 0, or -1 at
 * an error or the end of the input. */
int stress_read_all(int fd, void *buf, size_t len);
int stress_write_all(int fd, const void *buf, size_t len);

/* Monotonic nanoseconds. */
uint64_t stress_now_ns(void);

#endif
