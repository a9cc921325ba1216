/*
 * bank.c: the BankAccount aggregate: an account is opened once with an
 * initial amount, then takes deposits and withdrawals; it never goes below
 * zero or above BANK_BALANCE_MAX.
 */
#include <string.h>

#include "bank.h"

struct account {
	int64_t balance;
	int open;
};

/* Every event carries one int64 amount, in host byte order. */
int64_t bank_event_amount(const esr_event *event)
{
	int64_t amount = 0;

	if (event->payload_len == sizeof amount && event->payload != NULL)
		memcpy(&amount, event->payload, sizeof amount);
	return amount;
}

/* Fold one event: the events were checked when decided, so no checks here. */
static void apply(void *state, const esr_event *event)
{
	struct account *a = state;
	int64_t amount = bank_event_amount(event);

	switch (event->type) {
	case BANK_OPENED:
		a->open = 1;
		a->balance = amount;
		break;
	case BANK_DEPOSITED:
		a->balance += amount;
		break;
	case BANK_WITHDRAWN:
		a->balance -= amount;
		break;
	default:
		break;
	}
}

/* The balance the command would leave, or a rejection code (> 0). */
static int decide(const struct account *a, const struct bank_command *c, int64_t *after)
{
	if (c->kind == BANK_OPEN) {
		if (a->open)
			return BANK_ALREADY_OPENED;
		*after = c->amount;
		return 0;
	}
	if (!a->open)
		return BANK_NOT_OPENED;
	if (c->kind == BANK_DEPOSIT) {
		if (c->amount > BANK_BALANCE_MAX - a->balance)
			return BANK_BALANCE_LIMIT;
		*after = a->balance + c->amount;
		return 0;
	}
	if (c->amount > a->balance)
		return BANK_INSUFFICIENT_FUNDS;
	*after = a->balance - c->amount;
	return 0;
}

/* Decide, and record the resulting balance in the command so that the HTTP
 * answer reports exactly what the appended events produce. */
static int handle(const void *state, const void *command, esr_emitter *emit)
{
	static const uint32_t tags[] = {BANK_OPENED, BANK_DEPOSITED, BANK_WITHDRAWN};
	struct bank_command *c = (struct bank_command *)command;
	int64_t after = 0;
	int code = decide(state, c, &after);

	if (code != 0)
		return code;
	c->balance_after = after;
	return esr_emit(emit, tags[c->kind], &c->amount, sizeof c->amount);
}

const esr_aggregate_type bank_account_type = {
	.name = BANK_TYPE,
	.state_size = sizeof(struct account),
	.apply = apply,
	.handle = handle,
};

/* Runs on a worker in the account's turn: copy out, never block. */
int bank_read(void *ctx, const void *state, uint64_t version)
{
	const struct account *a = state;
	struct bank_view *view = ctx;

	(void)version;
	view->balance = a->balance;
	view->open = a->open;
	return 0;
}

const char *bank_rejection_reason(int code)
{
	switch (code) {
	case BANK_INSUFFICIENT_FUNDS: return "insufficient_funds";
	case BANK_NOT_OPENED: return "not_opened";
	case BANK_ALREADY_OPENED: return "already_opened";
	case BANK_BALANCE_LIMIT: return "balance_limit";
	default: return "rejected";
	}
}

const char *bank_rejection_text(int code)
{
	switch (code) {
	case BANK_INSUFFICIENT_FUNDS: return "insufficient funds";
	case BANK_NOT_OPENED: return "account not opened";
	case BANK_ALREADY_OPENED: return "account already opened";
	case BANK_BALANCE_LIMIT: return "balance would exceed its limit";
	default: return "command rejected";
	}
}

const char *bank_event_name(uint32_t type)
{
	switch (type) {
	case BANK_OPENED: return "opened";
	case BANK_DEPOSITED: return "deposited";
	case BANK_WITHDRAWN: return "withdrawn";
	default: return "unknown";
	}
}
