/* tests/bank.c: the bank account aggregate for the runtime tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bank.h"

static void bank_init(void *state, const void *id, size_t id_len)
{
	struct bank_state *s = state;

	(void)id;
	s->init_id_len = (uint32_t)id_len;
}

void bank_apply(void *state, const esr_event *ev)
{
	struct bank_state *s = state;
	struct bank_payload p;

	memcpy(&p, ev->payload, sizeof p);
	s->events++;
	if (ev->type == BANK_OPENED) {
		s->open = 1;
		s->balance = p.amount;
		s->lowest = p.amount;
		return;
	}
	s->balance += ev->type == BANK_DEPOSITED ? p.amount : -p.amount;
	if (s->balance < s->lowest)
		s->lowest = s->balance;
}

static esr_status emit(esr_emitter *em, uint32_t type, const struct bank_command *c)
{
	struct bank_payload p = {c->amount, c->writer, c->seq};

	return esr_emit(em, type, &p, sizeof p);
}

static int bank_handle(const void *state, const void *command, esr_emitter *em)
{
	const struct bank_state *s = state;
	const struct bank_command *c = command;
	uint32_t i;

	switch (c->kind) {
	case BANK_OPEN:
		if (s->open)
			return BANK_ALREADY_OPEN;
		return emit(em, BANK_OPENED, c);
	case BANK_DEPOSIT:
		return emit(em, BANK_DEPOSITED, c);
	case BANK_WITHDRAW:
		if (!s->open)
			return BANK_NOT_OPEN;
		if (s->balance < c->amount)
			return BANK_INSUFFICIENT_FUNDS;
		return emit(em, BANK_WITHDRAWN, c);
	case BANK_NOOP:
		return 0;
	case BANK_MULTI:
		for (i = 0; i < c->count; i++)
			if (emit(em, BANK_DEPOSITED, c) != ESR_OK)
				break;
		return 0; /* the emitter's sticky error is what must fail it */
	case BANK_OVERSIZED: {
		static char big[ESR_PAYLOAD_MAX + 1];
		esr_emit(em, BANK_DEPOSITED, big, sizeof big);
		return 0;
	}
	case BANK_TAGGED: {
		struct bank_payload p = {c->amount, c->writer, c->seq};
		esr_event ev = {.type = BANK_DEPOSITED, .payload = &p, .payload_len = sizeof p};
		memset(ev.meta.correlation_id.bytes, 0x11, 16);
		memset(ev.meta.causation_id.bytes, 0x22, 16);
		return esr_emit_event(em, &ev);
	}
	}
	return -1;
}

const esr_aggregate_type bank_type = {
	.name = "BankAccount",
	.state_size = sizeof(struct bank_state),
	.init = bank_init,
	.apply = bank_apply,
	.handle = bank_handle,
};

/* --- the stress tests' workload and audit ------------------------------------ */

void bank_account_id(int account, char *buf, size_t size)
{
	snprintf(buf, size, "acct-%d", account);
}

static uint64_t next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int bank_random_command(uint64_t *rng, int accounts, uint32_t writer, uint32_t seq,
                        struct bank_command *c, int64_t *delta)
{
	int account = (int)(next_random(rng) % (uint64_t)accounts);

	*c = (struct bank_command){.writer = writer, .seq = seq, .count = 1};
	if (next_random(rng) % 2) {
		c->kind = BANK_DEPOSIT;
		c->amount = (int64_t)(next_random(rng) % 100) + 1;
		*delta = c->amount;
	} else {
		c->kind = BANK_WITHDRAW;
		c->amount = (int64_t)(next_random(rng) % 300) + 1;
		*delta = -c->amount;
	}
	return account;
}

esr_status bank_audit_init(struct bank_audit *a, uint32_t writers, uint32_t commands)
{
	uint32_t i;

	memset(a, 0, sizeof *a);
	a->writers = writers;
	a->commands = commands;
	a->seen = calloc(writers, sizeof *a->seen);
	a->last_seq = calloc(writers, sizeof *a->last_seq);
	if (a->seen == NULL || a->last_seq == NULL)
		return ESR_ENOMEM;
	for (i = 0; i < writers; i++)
		if ((a->seen[i] = calloc(commands, sizeof **a->seen)) == NULL)
			return ESR_ENOMEM;
	return ESR_OK;
}

void bank_audit_free(struct bank_audit *a)
{
	uint32_t i;

	for (i = 0; a->seen && i < a->writers; i++)
		free(a->seen[i]);
	free(a->seen);
	free(a->last_seq);
}

static esr_status audit_event(void *ctx, const esr_recorded_event *rec)
{
	struct bank_audit *a = ctx;
	struct bank_payload p;

	if (rec->version != a->expect++)
		a->gaps++;
	bank_apply(&a->state, &rec->event);
	if (rec->event.type == BANK_OPENED)
		return ESR_OK;
	memcpy(&p, rec->event.payload, sizeof p);
	if (p.writer >= a->writers || p.seq >= a->commands) {
		a->foreign++;
		return ESR_OK;
	}
	a->seen[p.writer][p.seq]++;
	if (a->last_seq[p.writer] != UINT32_MAX && p.seq <= a->last_seq[p.writer])
		a->out_of_order++;
	a->last_seq[p.writer] = p.seq;
	return ESR_OK;
}

esr_status bank_audit_account(struct bank_audit *a, esr_store *store, int account)
{
	esr_stream_id sid;
	char id[32];
	uint32_t i;

	bank_account_id(account, id, sizeof id);
	sid = (esr_stream_id){"BankAccount", id, strlen(id)};
	memset(&a->state, 0, sizeof a->state);
	for (i = 0; i < a->writers; i++)
		a->last_seq[i] = UINT32_MAX;
	a->expect = 1;
	return esr_store_read(store, &sid, 1, audit_event, a);
}
