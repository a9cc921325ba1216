/*
 * tests/bank.h: the bank account aggregate the runtime tests share.
 * Events carry who decided them (writer, seq) so stress tests can find every
 * accepted command in the log exactly once.
 */
#ifndef ESR_TESTS_BANK_H
#define ESR_TESTS_BANK_H

#include <stddef.h>
#include <stdint.h>

#include <esr/esr.h>

enum bank_event { BANK_OPENED = 1, BANK_DEPOSITED = 2, BANK_WITHDRAWN = 3 };

enum bank_kind {
	BANK_OPEN,
	BANK_DEPOSIT,
	BANK_WITHDRAW,
	BANK_NOOP,      /* accepts and emits nothing */
	BANK_MULTI,     /* emits `count` deposits of `amount` */
	BANK_OVERSIZED, /* emits a payload over ESR_PAYLOAD_MAX, then returns 0 */
	BANK_TAGGED     /* deposits, with correlation/causation ids set */
};

enum bank_rejection { BANK_INSUFFICIENT_FUNDS = 1, BANK_ALREADY_OPEN = 2, BANK_NOT_OPEN = 3 };

struct bank_payload {
	int64_t amount;
	uint32_t writer;
	uint32_t seq;
};

struct bank_command {
	enum bank_kind kind;
	int64_t amount;
	uint32_t writer, seq;
	uint32_t count;
};

struct bank_state {
	int64_t balance;
	int64_t lowest; /* lowest balance ever applied */
	uint32_t open;
	uint32_t events;
	uint32_t init_id_len; /* set by init(), to check it ran */
};

extern const esr_aggregate_type bank_type;

/* Fold one event, as apply() does (exposed for replay checks). */
void bank_apply(void *state, const esr_event *event);

/* "acct-N", the id of account N in the stress tests. */
void bank_account_id(int account, char *buf, size_t size);

/*
 * One command of the reference workload (shared/workloads: deposit 1..100 or
 * withdraw 1..300, uniform over `accounts`), tagged (writer, seq) so the audit
 * can find its event. Returns the account; *delta is the balance change the
 * command makes if it is accepted.
 */
int bank_random_command(uint64_t *rng, int accounts, uint32_t writer, uint32_t seq,
                        struct bank_command *c, int64_t *delta);

/*
 * Replays account streams and checks them: versions contiguous from 1, each
 * tagged event counted in seen[writer][seq], each writer's events in its own
 * order within a stream, no event that no writer claims.
 */
struct bank_audit {
	uint32_t writers, commands;
	uint32_t **seen;    /* [writers][commands] */
	uint32_t *last_seq; /* per writer, within the stream being replayed */
	uint64_t expect;
	struct bank_state state; /* the last stream's replayed state */
	unsigned gaps, foreign, out_of_order;
};

esr_status bank_audit_init(struct bank_audit *a, uint32_t writers, uint32_t commands);
void bank_audit_free(struct bank_audit *a);
/* Replay one account's stream; a->state then holds its state. */
esr_status bank_audit_account(struct bank_audit *a, esr_store *store, int account);

#endif
