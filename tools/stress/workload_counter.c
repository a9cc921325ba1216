/*
 * tools/stress/workload_counter.c: increment-only counters, the cheapest
 * command there is, so what remains is the runtime's own cost. Nothing is
 * rejected and no state can break a rule; what can break is exactly-once:
 * each accepted increment must be in the log once, and the counters must add
 * up to the number of accepted increments.
 */
#include "workload.h"

enum { INCREMENTED = 1 };

struct counter {
	int64_t value;
};

static uint32_t no_opening(int64_t *amount)
{
	*amount = 0;
	return 0;
}

static void generate(uint64_t *rng, struct stress_cmd *c)
{
	(void)rng;
	c->kind = 0;
	c->amount = 1;
}

static int decide(const void *state, const struct stress_cmd *c, uint32_t *type,
                  int64_t *amount)
{
	(void)state;
	*type = INCREMENTED;
	*amount = c->amount;
	return 0;
}

static void fold(void *state, uint32_t type, int64_t amount)
{
	if (type == INCREMENTED)
		((struct counter *)state)->value += amount;
}

static uint32_t event_of(const struct stress_cmd *c)
{
	(void)c;
	return INCREMENTED;
}

static int valid(const void *state)
{
	return ((const struct counter *)state)->value >= 0;
}

static void effect(const struct stress_cmd *c, int64_t *totals)
{
	totals[0] += c->amount;
}

static void measure(const void *state, int64_t *totals)
{
	totals[0] += ((const struct counter *)state)->value;
}

STRESS_ESR_HOOKS(stress_counter)

const struct stress_workload stress_counter = {
	.name = "counter",
	.id_prefix = "ctr",
	.type = {STRESS_ESR_TYPE("Counter", struct counter)},
	.ntotals = 1,
	.total_names = {"value"},
	.open = no_opening,
	.generate = generate,
	.decide = decide,
	.fold = fold,
	.event_of = event_of,
	.valid = valid,
	.effect = effect,
	.measure = measure,
};
