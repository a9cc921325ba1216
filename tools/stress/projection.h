/*
 * tools/stress/projection.h: --projection (projection.c): a read model kept
 * by a subscription while the commands run, and what it found.
 */
#ifndef ESR_STRESS_PROJECTION_H
#define ESR_STRESS_PROJECTION_H

#include <stdint.h>

#include <esr/esr.h>

#include "plan.h"

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

struct stress_projector;

/* Subscribe from position 1 and fold every event into a per-aggregate read
 * model. */
esr_status stress_projection_start(const struct stress_plan *p, esr_store *store,
                                   struct stress_projector **out);
/* Wait for it to reach the head, stop it, compare with a fresh replay. Frees pr. */
void stress_projection_finish(struct stress_projector *pr, struct stress_projection *out);

#endif
