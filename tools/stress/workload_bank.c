/*
 * tools/stress/workload_bank.c: bank accounts. An account opens with 1000;
 * commands deposit 1..100 or withdraw 1..300, half each; a withdrawal that
 * would overdraw is rejected. Rule: no balance below zero is ever applied.
 * Totals: the sum of balances is the opening balances plus accepted deposits
 * minus accepted withdrawals.
 */
#include "workload.h"

enum { OPENED = 1, DEPOSITED = 2, WITHDRAWN = 3 };
enum { DEPOSIT = 0, WITHDRAW = 1 };
enum { INSUFFICIENT_FUNDS = 1 };

struct account {
	int64_t balance;
};

static uint32_t open_account(int64_t *amount)
{
	*amount = 1000;
	return OPENED;
}

static void generate(uint64_t *rng, struct stress_cmd *c)
{
	c->kind = stress_random(rng) % 2 ? DEPOSIT : WITHDRAW;
	c->amount = c->kind == DEPOSIT ? stress_between(rng, 1, 100) : stress_between(rng, 1, 300);
}

static int decide(const void *state, const struct stress_cmd *c, uint32_t *type,
                  int64_t *amount)
{
	const struct account *a = state;

	*amount = c->amount;
	if (c->kind == DEPOSIT) {
		*type = DEPOSITED;
		return 0;
	}
	if (a->balance < c->amount)
		return INSUFFICIENT_FUNDS;
	*type = WITHDRAWN;
	return 0;
}

static void fold(void *state, uint32_t type, int64_t amount)
{
	struct account *a = state;

	if (type == OPENED)
		a->balance = amount;
	else if (type == DEPOSITED)
		a->balance += amount;
	else if (type == WITHDRAWN)
		a->balance -= amount;
}

static uint32_t event_of(const struct stress_cmd *c)
{
	return c->kind == DEPOSIT ? DEPOSITED : WITHDRAWN;
}

static int valid(const void *state)
{
	return ((const struct account *)state)->balance >= 0;
}

static void effect(const struct stress_cmd *c, int64_t *totals)
{
	totals[0] += c->kind == DEPOSIT ? c->amount : -c->amount;
}

static void measure(const void *state, int64_t *totals)
{
	totals[0] += ((const struct account *)state)->balance;
}

STRESS_ESR_HOOKS(stress_bank)

const struct stress_workload stress_bank = {
	.name = "bank",
	.id_prefix = "acct",
	.type = {STRESS_ESR_TYPE("BankAccount", struct account)},
	.ntotals = 1,
	.total_names = {"balance"},
	.open = open_account,
	.generate = generate,
	.decide = decide,
	.fold = fold,
	.event_of = event_of,
	.valid = valid,
	.effect = effect,
	.measure = measure,
};
