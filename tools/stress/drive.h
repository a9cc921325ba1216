/*
 * tools/stress/drive.h: one process's writers through the plan: start their
 * runtimes, run their threads, probe their actors, stop them.
 */
#ifndef ESR_STRESS_DRIVE_H
#define ESR_STRESS_DRIVE_H

#include <stdio.h>

#include <esr/esr.h>

#include "plan.h"
#include "result.h"
#include "writer.h"

/*
 * Start `count` runtimes on store, each with a writer in ws[0..count). The
 * writers are the plan's writers first .. first+count-1 (several processes
 * number theirs across all of them). *started says how many are up, also
 * on an error, for stress_stop_writers and writer_free.
 */
esr_status stress_start_writers(const struct stress_plan *p, esr_strategy strategy,
                                esr_store *store, struct writer *ws, unsigned first,
                                unsigned count, unsigned *started);
/* Run the writers' threads; r gets the time and what the clients saw.
 * progress (may be NULL) gets a live line. */
esr_status stress_drive(const struct stress_plan *p, struct writer *ws, unsigned n,
                        FILE *progress, struct stress_result *r);
/* Probe ws[0..n); pr is sized for all of the plan's writers (the caller
 * frees pr->version and pr->states). */
esr_status stress_probe(const struct stress_plan *p, struct writer *ws, unsigned n,
                        struct stress_probes *pr);
/* Stop every runtime; its counters are part of the result. */
void stress_stop_writers(struct writer *ws, unsigned n, struct stress_result *r);

#endif
