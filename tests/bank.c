/* tests/bank.c: the bank account aggregate for the runtime tests. */
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
