/*
 * runtime/scheduler.h: the workers, the run queue they pop actors from, and
 * the spare emitters (runtime/scheduler.c). See docs/architecture.md for the
 * path of a command.
 */
#ifndef ESR_RUNTIME_SCHEDULER_H
#define ESR_RUNTIME_SCHEDULER_H

#include <pthread.h>
#include <stdint.h>

#include "core/sync.h"
#include "esr/esr.h"

struct esr_runtime;
struct esr__actor;

/*
 * Counters one worker keeps alone, with plain increments (no atomic on the
 * command path). esr_runtime_stats_get reads them with ck_pr_load_64 from
 * another thread: each value is whole (64-bit aligned loads) but may be a few
 * commands old, which is all a stats snapshot promises.
 */
struct esr__worker_counters {
	uint64_t completed, rejected, conflicts, retries, exhausted, activations;
	uint64_t snapshots_loaded, snapshots_ignored, events_replayed;
};

struct esr__worker {
	struct esr_runtime *rt;
	pthread_t thread;
	esr_emitter *em; /* NULL while its emitter rides with a suspended actor */
	uint64_t unsettled; /* completed this turn, still counted in outstanding */
	/* The command whose outcome complete() decided, for finish() to
	 * complete once its mailbox slot is free (actor.c). */
	esr_ticket *decided;
	esr_status outcome_status;
	esr_result outcome;
	unsigned spin_limit; /* idle spins before sleeping (scheduler.c) */
	struct esr__worker_counters c;
} CK_CC_CACHELINE;

void esr__runq_push(struct esr_runtime *rt, struct esr__actor *a);
/* Queue the n actors linked head..tail through run_next, in one trip. */
void esr__runq_push_list(struct esr_runtime *rt, struct esr__actor *head,
                         struct esr__actor *tail, unsigned n);
esr_status esr__workers_start(struct esr_runtime *rt);
void esr__workers_stop(struct esr_runtime *rt);
esr_emitter *esr__spare_get(struct esr_runtime *rt);
void esr__spare_put(struct esr_runtime *rt, esr_emitter *em);
void esr__spares_free(struct esr_runtime *rt);

#endif /* ESR_RUNTIME_SCHEDULER_H */
