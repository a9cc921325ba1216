/*
 * tools/stress/workload_inventory.c: stock items. An item opens with 50 in
 * stock; commands reserve 1..5 (70 %), release 1..5 of what is reserved
 * (20 %) or restock 1..20 (10 %), so reservations press against the stock
 * and the rule is decided at the edge. Rule: 0 <= reserved <= stock at every
 * version. Totals: stock and reserved both add up from the accepted commands.
 */
#include "workload.h"

enum { OPENED = 1, RESERVED = 2, RELEASED = 3, RESTOCKED = 4 };
enum { RESERVE = 0, RELEASE = 1, RESTOCK = 2 };
enum { OUT_OF_STOCK = 1, NOT_RESERVED = 2 };

struct item {
	int64_t stock;
	int64_t reserved;
};

static uint32_t open_item(int64_t *amount)
{
	*amount = 50;
	return OPENED;
}

static void generate(uint64_t *rng, struct stress_cmd *c)
{
	uint64_t roll = stress_random(rng) % 10;

	c->kind = roll < 7 ? RESERVE : roll < 9 ? RELEASE : RESTOCK;
	c->amount = c->kind == RESTOCK ? stress_between(rng, 1, 20) : stress_between(rng, 1, 5);
}

static int decide(const void *state, const struct stress_cmd *c, uint32_t *type,
                  int64_t *amount)
{
	const struct item *it = state;

	*amount = c->amount;
	switch (c->kind) {
	case RESERVE:
		if (it->reserved + c->amount > it->stock)
			return OUT_OF_STOCK;
		*type = RESERVED;
		return 0;
	case RELEASE:
		if (c->amount > it->reserved)
			return NOT_RESERVED;
		*type = RELEASED;
		return 0;
	default:
		*type = RESTOCKED;
		return 0;
	}
}

static void fold(void *state, uint32_t type, int64_t amount)
{
	struct item *it = state;

	if (type == OPENED)
		it->stock = amount;
	else if (type == RESERVED)
		it->reserved += amount;
	else if (type == RELEASED)
		it->reserved -= amount;
	else if (type == RESTOCKED)
		it->stock += amount;
}

static uint32_t event_of(const struct stress_cmd *c)
{
	return c->kind == RESERVE ? RESERVED : c->kind == RELEASE ? RELEASED : RESTOCKED;
}

static int valid(const void *state)
{
	const struct item *it = state;

	return it->reserved >= 0 && it->reserved <= it->stock;
}

static void effect(const struct stress_cmd *c, int64_t *totals)
{
	if (c->kind == RESTOCK)
		totals[0] += c->amount;
	else
		totals[1] += c->kind == RESERVE ? c->amount : -c->amount;
}

static void measure(const void *state, int64_t *totals)
{
	const struct item *it = state;

	totals[0] += it->stock;
	totals[1] += it->reserved;
}

STRESS_ESR_HOOKS(stress_inventory)

const struct stress_workload stress_inventory = {
	.name = "inventory",
	.id_prefix = "item",
	.type = {STRESS_ESR_TYPE("StockItem", struct item)},
	.ntotals = 2,
	.total_names = {"stock", "reserved"},
	.open = open_item,
	.generate = generate,
	.decide = decide,
	.fold = fold,
	.event_of = event_of,
	.valid = valid,
	.effect = effect,
	.measure = measure,
};
