/*
 * tools/stress/store.h: the run's store: make it or attach to it, open the
 * aggregates in it, read its counters, remove it.
 */
#ifndef ESR_STRESS_STORE_H
#define ESR_STRESS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <esr/esr.h>

#include "options.h"
#include "plan.h"
#include "result.h"

/* A store's counters at one moment (zeros where the store has none). */
struct stress_store_counters {
	uint64_t fsyncs, events_synced, appends, round_trips;
};

/*
 * The run's store: memory; a file store in a directory of its own under the
 * --store=file:DIR directory; or a PostgreSQL schema of its own. `name` gets
 * the directory or schema ("" for memory). fresh: make it new (the first
 * open of a run); otherwise attach to the one `name` says (another process).
 */
esr_status stress_store_open(const struct stress_options *o, esr_strategy strategy,
                             char *name, size_t size, int fresh, esr_store **out);
/* Remove what the run made: a file store's segments, snapshots, checkpoints,
 * lock and directory, or the PostgreSQL schema. */
void stress_store_remove(const struct stress_options *o, const char *name);
void stress_store_counters(esr_store *store, struct stress_store_counters *c);
/* Add to r what the counters moved from before to after. */
void stress_store_counters_since(struct stress_result *r,
                                 const struct stress_store_counters *before,
                                 const struct stress_store_counters *after);
/* Open every aggregate that has an opening event, straight in the store. */
esr_status stress_open_aggregates(const struct stress_plan *p, esr_store *store);

#endif
