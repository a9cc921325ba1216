/*
 * tools/stress/workload.h: the aggregates esr-stress drives.
 *
 * A workload is plain decision logic (decide, fold) that both the runtime and
 * the raw baseline call, so the two run exactly the same business code. The
 * esr handler and apply() of each type are thin wrappers over it. Every event
 * carries the index of the command that decided it (`seq`), so the checker can
 * find each accepted command in the log exactly once.
 */
#ifndef ESR_STRESS_WORKLOAD_H
#define ESR_STRESS_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <esr/esr.h>

#define STRESS_STATE_MAX 64 /* bytes of state any workload keeps */
#define STRESS_TOTALS_MAX 2 /* sums a workload's totals check compares */
#define STRESS_SEQ_SETUP UINT64_MAX /* seq of the events that open an aggregate */

/* One generated command: which aggregate, what to do, how much. */
struct stress_cmd {
	uint32_t aggregate;
	uint32_t kind;
	int64_t amount;
};

/* The payload of every workload's events. */
struct stress_payload {
	int64_t amount;
	uint64_t seq;
};

/*
 * What the runtime's handler receives. A probe (probe != NULL) copies the
 * state the actor holds into *probe and accepts without emitting, so the
 * result's version says which version that state claims to be.
 */
struct stress_msg {
	struct stress_cmd cmd;
	uint64_t seq;
	void *probe;
};

struct stress_workload {
	const char *name;
	const char *id_prefix;  /* ids are "<prefix>-<index>" */
	esr_aggregate_type type;
	unsigned ntotals;
	const char *total_names[STRESS_TOTALS_MAX];
	/* The event that opens aggregate i, if any (returns 0 for none). */
	uint32_t (*open)(int64_t *amount);
	/* Fill kind and amount of a random command; rng is xorshift64 state. */
	void (*generate)(uint64_t *rng, struct stress_cmd *c);
	/* 0 to accept, with the event in *type and *amount (*type 0: no event);
	 * otherwise the rejection code. */
	int (*decide)(const void *state, const struct stress_cmd *c, uint32_t *type,
	              int64_t *amount);
	void (*fold)(void *state, uint32_t type, int64_t amount);
	/* The event type an accepted command emits. */
	uint32_t (*event_of)(const struct stress_cmd *c);
	/* Does the business rule hold in this state? */
	int (*valid)(const void *state);
	/* An accepted command's contribution to the totals. */
	void (*effect)(const struct stress_cmd *c, int64_t *totals);
	/* A state's contribution to the totals. */
	void (*measure)(const void *state, int64_t *totals);
};

extern const struct stress_workload stress_bank, stress_inventory, stress_counter;

/* The workload called `name`, or NULL. */
const struct stress_workload *stress_workload_find(const char *name);

/* The shared handler and apply() the workloads' esr types wrap. */
int stress_handle(const struct stress_workload *wl, const void *state,
                  const void *command, esr_emitter *em);
void stress_apply(const struct stress_workload *wl, void *state, const esr_event *ev);

/*
 * The esr handle() and apply() of workload `wl`: esr's callbacks take no
 * context, so each workload gets its own pair, forwarding to the shared ones.
 */
#define STRESS_ESR_HOOKS(wl)                                                         \
	static int handle(const void *state, const void *command, esr_emitter *em)    \
	{                                                                              \
		return stress_handle(&(wl), state, command, em);                           \
	}                                                                              \
	static void apply(void *state, const esr_event *ev)                            \
	{                                                                              \
		stress_apply(&(wl), state, ev);                                            \
	}                                                                              \
	static size_t snap_encode(const void *state, void *out, size_t cap)            \
	{                                                                              \
		return stress_snapshot_encode(&(wl), state, out, cap);                     \
	}                                                                              \
	static int snap_decode(void *state, uint32_t format, const void *data,         \
	                       size_t len)                                             \
	{                                                                              \
		return stress_snapshot_decode(&(wl), state, format, data, len);            \
	}

/* The esr type's fields a workload's type sets with the hooks above. */
#define STRESS_ESR_TYPE(type_name, state_type)                                      \
	.name = (type_name), .state_size = sizeof(state_type), .apply = apply,         \
	.handle = handle, .snapshot_format = 1, .snapshot_encode = snap_encode,        \
	.snapshot_decode = snap_decode

/* Snapshots of a workload's state: its bytes, as they are (format 1). */
size_t stress_snapshot_encode(const struct stress_workload *wl, const void *state,
                              void *out, size_t cap);
int stress_snapshot_decode(const struct stress_workload *wl, void *state, uint32_t format,
                           const void *data, size_t len);

/* Decode a stress event; ESR_ECORRUPT if it is not one. */
esr_status stress_payload_read(const esr_event *ev, struct stress_payload *p);

/* xorshift64: the generator behind every random choice (state never 0). */
static inline uint64_t stress_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A uniform value in [lo, hi]. */
static inline int64_t stress_between(uint64_t *s, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(stress_random(s) % (uint64_t)(hi - lo + 1));
}

#endif
