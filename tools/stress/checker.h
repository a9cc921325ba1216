/*
 * tools/stress/checker.h: the independent checker (checker.c): what the
 * clients were told, what the actors held at the end, and what the replay of
 * the store found.
 */
#ifndef ESR_STRESS_CHECKER_H
#define ESR_STRESS_CHECKER_H

#include <stddef.h>
#include <stdint.h>

#include <esr/esr.h>

#include "plan.h"
#include "workload.h"

/* The client's view of each command, by writer: command i = w + j * writers. */
enum stress_outcome { OUT_NONE = 0, OUT_ACCEPTED, OUT_REJECTED, OUT_EXHAUSTED, OUT_ERROR };

struct stress_outcomes {
	unsigned writers;
	uint8_t **by_writer; /* [w][j] */
	uint64_t *count;     /* commands writer w submitted */
	uint64_t total;      /* commands in all */
};

/* A resend of command i completed ESR_OK: its event is in the log whoever
 * sent it, so it counts as accepted. */
static inline void stress_outcome_accept(struct stress_outcomes *o, uint64_t i)
{
	unsigned w = (unsigned)(i % o->writers);
	uint64_t j = i / o->writers;

	if (j < o->count[w])
		o->by_writer[w][j] = OUT_ACCEPTED;
}

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
	uint64_t applied_twice; /* of those, commands whose event is there twice or more */
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

#endif
