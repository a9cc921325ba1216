/*
 * tools/stress/procs.h: one strategy's run as several processes sharing one
 * store (--processes), the run main.c picks instead of stress_run.
 */
#ifndef ESR_STRESS_PROCS_H
#define ESR_STRESS_PROCS_H

#include <esr/esr.h>

#include "plan.h"
#include "result.h"

/*
 * Run the plan as p->opt->processes child processes of p->opt->writers
 * writers each, on one shared store (PostgreSQL): released together, their
 * results merged into r, the store checked once all are done. Returns an
 * error only when the run could not be carried out.
 */
esr_status stress_run_processes(const struct stress_plan *p, esr_strategy strategy,
                                struct stress_result *r);

#endif
