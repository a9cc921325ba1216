/*
 * bank.h: the BankAccount aggregate the service runs: its commands, events,
 * rejections and the read of its state a query makes.
 */
#ifndef BANK_SERVICE_BANK_H
#define BANK_SERVICE_BANK_H

#include <stdint.h>

#include <esr/esr.h>

#define BANK_TYPE "BankAccount"

/* Bounds that keep every balance far from int64 overflow. */
#define BANK_AMOUNT_MAX INT64_C(1000000000000)     /* one command's amount */
#define BANK_BALANCE_MAX INT64_C(1000000000000000) /* one account's balance */

/* Event type tags, as stored. */
enum bank_event { BANK_OPENED = 1, BANK_DEPOSITED = 2, BANK_WITHDRAWN = 3 };

enum bank_kind { BANK_OPEN, BANK_DEPOSIT, BANK_WITHDRAW };

/* handle()'s rejection codes (never 0). */
enum bank_rejection {
	BANK_INSUFFICIENT_FUNDS = 1,
	BANK_NOT_OPENED = 2,
	BANK_ALREADY_OPENED = 3,
	BANK_BALANCE_LIMIT = 4
};

/*
 * A command. handle() writes balance_after each time it decides to accept;
 * under optimistic retries the last run is the one appended, so the value
 * left here when the command completes ESR_OK (not a duplicate) is the
 * balance its events produced.
 */
struct bank_command {
	enum bank_kind kind;
	int64_t amount;
	int64_t balance_after;
};

/* What a query copies out of an account's state. */
struct bank_view {
	int64_t balance;
	int open;
};

extern const esr_aggregate_type bank_account_type;

/* The query read that fills a struct bank_view (ctx). */
int bank_read(void *ctx, const void *state, uint64_t version);

/* "insufficient_funds", ... for a rejection code; "rejected" for others. */
const char *bank_rejection_reason(int code);
/* A sentence for a rejection code. */
const char *bank_rejection_text(int code);

/* "opened", "deposited", "withdrawn" for an event tag; "unknown" otherwise. */
const char *bank_event_name(uint32_t type);

/* The amount an event carries; 0 for a payload of the wrong size. */
int64_t bank_event_amount(const esr_event *event);

#endif /* BANK_SERVICE_BANK_H */
