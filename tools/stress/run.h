/*
 * tools/stress/run.h: one strategy's run in this process (run.c).
 */
#ifndef ESR_STRESS_RUN_H
#define ESR_STRESS_RUN_H

#include <stdio.h>

#include <esr/esr.h>

#include "plan.h"
#include "result.h"

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

#endif
