/*
 * tools/stress/baseline.c: the plan's commands run in one thread straight on
 * the aggregate logic, each accepted event pushed onto its aggregate's vector:
 * no runtime, no mailbox, no atomics. Its commands/s is the limit the
 * runtime's throughput is divided by (vs_raw). A timed run's baseline runs for
 * at most one second: it is a rate, and longer would only fill memory.
 */
#include <stdlib.h>
#include <string.h>

#include "baseline.h"
#include "sys.h"

struct recorded {
	uint32_t type;
	int64_t amount;
	uint64_t seq;
};

struct vec {
	struct recorded *ev;
	uint32_t n, cap;
};

static int push(struct vec *v, uint32_t type, int64_t amount, uint64_t seq)
{
	if (v->n == v->cap) {
		uint32_t cap = v->cap ? v->cap * 2 : 8;
		struct recorded *ev = realloc(v->ev, cap * sizeof *ev);
		if (ev == NULL)
			return -1;
		v->ev = ev;
		v->cap = cap;
	}
	v->ev[v->n++] = (struct recorded){type, amount, seq};
	return 0;
}

static void release(struct vec *vecs, unsigned char *states, uint32_t k)
{
	uint32_t i;

	for (i = 0; vecs && i < k; i++)
		free(vecs[i].ev);
	free(vecs);
	free(states);
}

/* The timed loop. Returns the commands run; *failed on allocation failure. */
static uint64_t loop(const struct stress_plan *p, struct vec *vecs, unsigned char *states,
                     uint64_t limit, uint64_t deadline, struct stress_baseline *b, int *failed)
{
	const struct stress_workload *wl = p->wl;
	size_t size = wl->type.state_size;
	uint64_t i;

	for (i = 0; i < limit; i++) {
		const struct stress_cmd *c = &p->cmds[i % p->ncmds];
		unsigned char *s = states + (size_t)c->aggregate * size;
		uint32_t type = 0;
		int64_t amount;

		if ((i & 4095) == 0 && deadline != 0 && stress_now_ns() >= deadline)
			break;
		if (wl->decide(s, c, &type, &amount) != 0)
			continue;
		b->accepted++;
		if (type == 0)
			continue;
		if (push(&vecs[c->aggregate], type, amount, i) != 0) {
			*failed = 1;
			break;
		}
		wl->fold(s, type, amount);
		b->events++;
	}
	return i;
}

esr_status stress_baseline_run(const struct stress_plan *p, struct stress_baseline *b)
{
	const struct stress_workload *wl = p->wl;
	uint32_t k, K = p->opt->aggregates;
	size_t size = wl->type.state_size;
	struct vec *vecs = calloc(K, sizeof *vecs);
	unsigned char *states = calloc(K, size);
	uint64_t start, limit = p->opt->commands, deadline = 0;
	int failed = 0;

	memset(b, 0, sizeof *b);
	if (vecs == NULL || states == NULL) {
		release(vecs, states, K);
		return ESR_ENOMEM;
	}
	for (k = 0; k < K; k++) { /* open the aggregates, as the runs do */
		int64_t amount;
		uint32_t type = wl->open(&amount);
		if (type == 0)
			continue;
		if (push(&vecs[k], type, amount, STRESS_SEQ_SETUP) != 0) {
			release(vecs, states, K);
			return ESR_ENOMEM;
		}
		wl->fold(states + (size_t)k * size, type, amount);
	}
	start = stress_now_ns();
	if (limit == 0) {
		double secs = p->opt->duration < 1.0 ? p->opt->duration : 1.0;
		limit = UINT64_MAX;
		deadline = start + (uint64_t)(secs * 1e9);
	}
	b->commands = loop(p, vecs, states, limit, deadline, b, &failed);
	b->seconds = (double)(stress_now_ns() - start) / 1e9;
	release(vecs, states, K);
	return failed ? ESR_ENOMEM : ESR_OK;
}
