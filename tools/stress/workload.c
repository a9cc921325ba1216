/* tools/stress/workload.c: what the three workloads share. */
#include <string.h>

#include "workload.h"

static const struct stress_workload *const all[] = {&stress_bank, &stress_inventory,
                                                     &stress_counter};

const struct stress_workload *stress_workload_find(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < sizeof all / sizeof all[0]; i++)
		if (strcmp(all[i]->name, name) == 0)
			return all[i];
	return NULL;
}

int stress_handle(const struct stress_workload *wl, const void *state,
                  const void *command, esr_emitter *em)
{
	const struct stress_msg *m = command;
	struct stress_payload p;
	uint32_t type = 0;
	int rc;

	if (m->probe != NULL) {
		memcpy(m->probe, state, wl->type.state_size);
		return 0;
	}
	if ((rc = wl->decide(state, &m->cmd, &type, &p.amount)) != 0 || type == 0)
		return rc;
	p.seq = m->seq;
	esr_emit(em, type, &p, sizeof p); /* an error is sticky: the command fails with it */
	return 0;
}

esr_status stress_payload_read(const esr_event *ev, struct stress_payload *p)
{
	if (ev->payload_len != sizeof *p || ev->payload == NULL)
		return ESR_ECORRUPT;
	memcpy(p, ev->payload, sizeof *p);
	return ESR_OK;
}

void stress_apply(const struct stress_workload *wl, void *state, const esr_event *ev)
{
	struct stress_payload p;

	/* apply() cannot fail: a foreign event is left out of the state, and
	 * the checker, which reads the same log, counts it. */
	if (stress_payload_read(ev, &p) == ESR_OK)
		wl->fold(state, ev->type, p.amount);
}

size_t stress_snapshot_encode(const struct stress_workload *wl, const void *state,
                              void *out, size_t cap)
{
	if (cap >= wl->type.state_size)
		memcpy(out, state, wl->type.state_size);
	return wl->type.state_size;
}

int stress_snapshot_decode(const struct stress_workload *wl, void *state, uint32_t format,
                           const void *data, size_t len)
{
	if (format != 1 || len != wl->type.state_size)
		return -1;
	memcpy(state, data, len);
	return 0;
}
