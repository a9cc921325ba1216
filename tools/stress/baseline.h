/*
 * tools/stress/baseline.h: the baseline (baseline.c): the plan's commands in
 * one thread on the aggregate logic alone.
 */
#ifndef ESR_STRESS_BASELINE_H
#define ESR_STRESS_BASELINE_H

#include <stdint.h>

#include <esr/esr.h>

#include "plan.h"

struct stress_baseline {
	uint64_t commands, accepted, events;
	double seconds;
};

/* The plan's commands in this thread on plain memory: no runtime, no atomics. */
esr_status stress_baseline_run(const struct stress_plan *p, struct stress_baseline *b);

#endif
