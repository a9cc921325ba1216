/*
 * tools/stress/result.h: what one strategy's run measured and what the
 * checker found: plain data, filled by run.c or procs.c (merged over the
 * processes) and printed by report.c. A header alone: nothing to compute.
 */
#ifndef ESR_STRESS_RESULT_H
#define ESR_STRESS_RESULT_H

#include <stdint.h>

#include <esr/esr.h>

#include "checker.h"
#include "histogram.h"
#include "projection.h"

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
	uint64_t turn_appends;          /* the runtimes' appends, every store, retries
	                                   included: a turn's commands share one */
	uint64_t dup_sent, dup_detected; /* --duplicates: resends, and completions the
	                                    runtime answered as duplicates */
	unsigned processes;             /* that ran the strategy (merged results) */
	struct stress_check check;
	struct stress_projection projection;
};

#endif
