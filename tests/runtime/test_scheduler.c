/*
 * tests/runtime/test_scheduler.c: the workers' own run queues under load.
 *  - many submitters: eight threads on a mix of aggregates, a few of them
 *    hot, on 1, 2 and 4 workers. Each command carries (submitter, seq); the
 *    handler refuses one that arrives out of its submitter's order; every
 *    callback runs exactly once, and every stream holds exactly the commands
 *    sent to it, each submitter's in its order;
 *  - stealing: with one of two workers held inside a handler, one command to
 *    each of 200 other aggregates (about half of them at home on the held
 *    worker) must all complete before the handler is let go, and so must a
 *    lone command at home on the held worker sent once the other sleeps;
 *  - stop racing submits: whatever stop accepts completes once, with ESR_OK,
 *    before stop returns; whatever it refuses is ESR_ESHUTDOWN;
 *  - passivation racing submits: actors evicted between bursts lose nothing,
 *    and the state a final command reads equals what was sent.
 * Every wait is bounded: a lost actor fails the test instead of hanging it.
 * ESR_STRESS_COMMANDS overrides the commands per submitter (default 2000).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "async_store.h"
#include "esr/esr.h"
#include "runtime/runtime_internal.h" /* which worker is a queue's owner */
#include "runtime/scheduler.h"

enum { SUBMITTERS = 8 };

static unsigned commands = 2000;

/* --- the aggregate: a per-submitter sequence checker ---------------------------- */

enum seq_kind {
	SEQ_STEP, /* one event (submitter, seq); refused if seq is not past the last */
	SEQ_HOLD, /* waits at the gate (below), emits nothing */
	SEQ_READ  /* emits nothing: result->version is the number of steps */
};
enum { SEQ_STEPPED = 1, SEQ_OUT_OF_ORDER = 1 };

struct seq_command {
	uint32_t kind, submitter, seq;
};

struct seq_event {
	uint32_t submitter, seq;
};

struct seq_state {
	uint32_t last[SUBMITTERS]; /* each submitter's last seq applied; seqs start at 1 */
	uint64_t steps;
};

/* A SEQ_HOLD handler waits here until released, or HOLD_MAX_S at most. */
enum { HOLD_MAX_S = 30 };
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int held, released;
	pthread_t holder;
} gate = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void hold(void)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += HOLD_MAX_S;
	pthread_mutex_lock(&gate.lock);
	gate.holder = pthread_self();
	gate.held = 1;
	pthread_cond_broadcast(&gate.cond);
	while (!gate.released &&
	       pthread_cond_timedwait(&gate.cond, &gate.lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&gate.lock);
}

static void seq_apply(void *state, const esr_event *ev)
{
	struct seq_state *s = state;
	struct seq_event e;

	memcpy(&e, ev->payload, sizeof e);
	if (e.submitter < SUBMITTERS)
		s->last[e.submitter] = e.seq;
	s->steps++;
}

static int seq_handle(const void *state, const void *command, esr_emitter *em)
{
	const struct seq_state *s = state;
	const struct seq_command *c = command;
	struct seq_event e = {c->submitter, c->seq};

	if (c->kind == SEQ_HOLD)
		hold();
	if (c->kind != SEQ_STEP)
		return 0;
	if (c->submitter >= SUBMITTERS || c->seq <= s->last[c->submitter])
		return SEQ_OUT_OF_ORDER;
	return esr_emit(em, SEQ_STEPPED, &e, sizeof e) == ESR_OK ? 0 : -1;
}

static const esr_aggregate_type seq_type = {
	.name = "Seq",
	.state_size = sizeof(struct seq_state),
	.apply = seq_apply,
	.handle = seq_handle,
};

/* --- shared pieces ------------------------------------------------------------------ */

/* One command's completions, counted by its callback. */
struct slot {
	uint32_t completions;
	esr_status status;
};

static uint32_t completed_total; /* every callback, for drained-at-stop checks */

static void slot_done(void *ctx, esr_status st, const esr_result *r)
{
	struct slot *s = ctx;

	(void)r;
	s->status = st;
	__atomic_add_fetch(&s->completions, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&completed_total, 1, __ATOMIC_RELEASE);
}

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};

	nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait up to ms for *counter to reach target; returns its last value. */
static uint32_t wait_count(const uint32_t *counter, uint32_t target, unsigned ms)
{
	uint64_t until = now_ms() + ms;
	uint32_t v;

	while ((v = __atomic_load_n(counter, __ATOMIC_ACQUIRE)) < target && now_ms() < until)
		sleep_us(1000);
	return v;
}

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static size_t agg_id(const char *prefix, unsigned n, char *buf, size_t size)
{
	return (size_t)snprintf(buf, size, "%s-%u", prefix, n);
}

static esr_runtime *start(esr_store *store, unsigned workers, unsigned passivate_ms)
{
	esr_runtime_config c;
	esr_runtime *rt;

	assert_int_equal(esr_runtime_config_default(&c), ESR_OK);
	c.workers = workers;
	c.batch = 8;             /* actors yield often: re-pushes to the runner's queue */
	c.mailbox_capacity = 64; /* hot aggregates fill up: submitters wait for room */
	c.passivate_ms = passivate_ms;
	assert_int_equal(esr_runtime_start(&c, store, &rt), ESR_OK);
	assert_int_equal(esr_runtime_register(rt, &seq_type), ESR_OK);
	return rt;
}

/* A stream replayed: its steps, and whether each submitter's were in order. */
struct replay {
	uint32_t last[SUBMITTERS];
	uint64_t steps;
	unsigned out_of_order, foreign, gaps;
};

static esr_status replay_one(void *ctx, const esr_recorded_event *ev)
{
	struct replay *r = ctx;
	struct seq_event e;

	if (ev->event.type != SEQ_STEPPED || ev->event.payload_len != sizeof e) {
		r->foreign++;
		return ESR_OK;
	}
	memcpy(&e, ev->event.payload, sizeof e);
	if (ev->version != r->steps + 1)
		r->gaps++;
	r->steps++;
	if (e.submitter >= SUBMITTERS) {
		r->foreign++;
		return ESR_OK;
	}
	if (e.seq <= r->last[e.submitter])
		r->out_of_order++;
	r->last[e.submitter] = e.seq;
	return ESR_OK;
}

/* Replay aggregate `prefix-n` and check it holds `expected` steps, in order. */
static void audit(esr_store *store, const char *prefix, unsigned n, uint64_t expected)
{
	struct replay r;
	char id[32];
	esr_stream_id stream = {"Seq", id, agg_id(prefix, n, id, sizeof id)};

	memset(&r, 0, sizeof r);
	assert_int_equal(esr_store_read(store, &stream, 1, replay_one, &r), ESR_OK);
	assert_int_equal(r.foreign, 0);
	assert_int_equal(r.gaps, 0);
	assert_int_equal(r.out_of_order, 0);
	assert_int_equal(r.steps, expected);
}

/* --- 1. many submitters ------------------------------------------------------------ */

enum { AGGREGATES = 64, HOT = 4, MANY_BATCH = 16 };

struct submitter {
	esr_runtime *rt;
	uint32_t id;
	unsigned n;
	struct seq_command *cmds;
	struct slot *slots;
	uint16_t *target;
	unsigned refused;
	uint32_t gap_us; /* pause between bursts (test 4); 0: none */
	unsigned aggregates, hot;
	const char *prefix;
};

/* Half of the commands go to the first `hot` aggregates, half to any. */
static unsigned pick(uint64_t *rng, unsigned aggregates, unsigned hot)
{
	uint64_t r = next_rand(rng);

	return (unsigned)((r & 1) && hot ? (r >> 1) % hot : (r >> 1) % aggregates);
}

/* Even submitters submit one command per call, odd ones up to MANY_BATCH. */
static void *submit_all(void *arg)
{
	struct submitter *s = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ULL * (s->id + 1);
	char ids[MANY_BATCH][32];
	esr_submission subs[MANY_BATCH];
	unsigned i = 0, k, m;
	size_t accepted;

	while (i < s->n) {
		m = s->id % 2 ? MANY_BATCH : 1;
		if (m > s->n - i)
			m = s->n - i;
		for (k = 0; k < m; k++) {
			unsigned x = i + k;
			s->target[x] = (uint16_t)pick(&rng, s->aggregates, s->hot);
			s->cmds[x] = (struct seq_command){SEQ_STEP, s->id, x + 1};
			subs[k] = (esr_submission){"Seq", ids[k],
			                           agg_id(s->prefix, s->target[x], ids[k], 32),
			                           &s->cmds[x], &s->slots[x], {NULL, 0}};
		}
		if (m == 1) {
			if (esr_submit_cb(s->rt, "Seq", subs[0].id, subs[0].id_len, subs[0].command,
			                  slot_done, subs[0].ctx) != ESR_OK)
				s->refused++;
		} else if (esr_submit_many_cb(s->rt, subs, m, slot_done, &accepted) != ESR_OK ||
		           accepted != m) {
			s->refused += m - (unsigned)accepted;
		}
		i += m;
		if (s->gap_us != 0 && i % MANY_BATCH == 0) /* a burst done: let actors idle */
			sleep_us(s->gap_us);
	}
	return NULL;
}

/* Run `nsub` submitters of n commands each on rt; check everything once stopped. */
static void run_submitters(esr_store *store, esr_runtime *rt, unsigned nsub, unsigned n,
                           unsigned aggregates, unsigned hot, uint32_t gap_us,
                           const char *prefix, int read_back)
{
	struct submitter s[SUBMITTERS];
	pthread_t th[SUBMITTERS];
	uint64_t *sent = calloc(aggregates, sizeof *sent);
	esr_runtime_stats st;
	unsigned i, k;

	assert_non_null(sent);
	for (i = 0; i < nsub; i++) {
		s[i] = (struct submitter){.rt = rt, .id = i, .n = n, .gap_us = gap_us,
		                          .aggregates = aggregates, .hot = hot, .prefix = prefix};
		s[i].cmds = calloc(n, sizeof *s[i].cmds);
		s[i].slots = calloc(n, sizeof *s[i].slots);
		s[i].target = calloc(n, sizeof *s[i].target);
		assert_true(s[i].cmds && s[i].slots && s[i].target);
	}
	for (i = 0; i < nsub; i++)
		assert_int_equal(pthread_create(&th[i], NULL, submit_all, &s[i]), 0);
	for (i = 0; i < nsub; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < nsub; i++)
		for (k = 0; k < n; k++)
			sent[s[i].target[k]]++;
	/* Read through the actors (activated again after passivation). */
	if (read_back) {
		for (k = 0; k < aggregates; k++) {
			static const struct seq_command rd = {SEQ_READ, 0, 0};
			esr_result r;
			char id[32];
			size_t len = agg_id(prefix, k, id, sizeof id);
			assert_int_equal(esr_execute(rt, "Seq", id, len, &rd, &r), ESR_OK);
			assert_int_equal(r.version, sent[k]);
		}
	}
	assert_int_equal(esr_runtime_stop(rt), ESR_OK);
	assert_int_equal(esr_runtime_stats_get(rt, &st), ESR_OK);
	assert_int_equal(st.submitted, (uint64_t)nsub * n + (read_back ? aggregates : 0));
	assert_int_equal(st.completed, st.submitted);
	assert_int_equal(st.rejected, 0);
	for (i = 0; i < nsub; i++) {
		assert_int_equal(s[i].refused, 0);
		for (k = 0; k < n; k++) {
			if (s[i].slots[k].completions != 1 || s[i].slots[k].status != ESR_OK)
				fail_msg("submitter %u command %u: %u completions, last %s", i, k,
				         s[i].slots[k].completions,
				         esr_status_name(s[i].slots[k].status));
		}
		free(s[i].cmds);
		free(s[i].slots);
		free(s[i].target);
	}
	for (k = 0; k < aggregates; k++)
		audit(store, prefix, k, sent[k]);
	print_message("    %u submitters x %u commands on %u aggregates (%u hot): "
	              "%llu activations, %llu passivations, %llu mailbox full\n",
	              nsub, n, aggregates, hot, (unsigned long long)st.activations,
	              (unsigned long long)st.passivations, (unsigned long long)st.mailbox_full);
	if (gap_us != 0) /* the bursts left actors idle long enough to be evicted */
		assert_true(st.passivations > 0);
	free(sent);
}

static void many_submitters(unsigned workers)
{
	esr_store *store;
	esr_runtime *rt;

	assert_int_equal(esr_memory_store_open(&store), ESR_OK);
	rt = start(store, workers, 0);
	run_submitters(store, rt, SUBMITTERS, commands, AGGREGATES, HOT, 0, "many", 0);
	esr_runtime_destroy(rt);
	esr_store_close(store);
}

static void many_submitters_one_worker(void **state)
{
	(void)state;
	many_submitters(1);
}

static void many_submitters_two_workers(void **state)
{
	(void)state;
	many_submitters(2);
}

static void many_submitters_four_workers(void **state)
{
	(void)state;
	many_submitters(4);
}

/* --- 2. stealing keeps the others moving ------------------------------------------ */

enum { FREE_AGGREGATES = 200, STEAL_WAIT_MS = 10000 };

static struct {
	uint32_t done, on_holder;
	struct slot slots[FREE_AGGREGATES];
} freed;

static void free_done(void *ctx, esr_status st, const esr_result *r)
{
	int mine;

	pthread_mutex_lock(&gate.lock);
	mine = gate.held && pthread_equal(pthread_self(), gate.holder);
	pthread_mutex_unlock(&gate.lock);
	if (mine)
		__atomic_add_fetch(&freed.on_holder, 1, __ATOMIC_RELAXED);
	slot_done(ctx, st, r);
	__atomic_add_fetch(&freed.done, 1, __ATOMIC_RELEASE);
}

/*
 * Hold one of two workers in a handler, then send one command to each of
 * FREE_AGGREGATES others: those at home on the held worker sit on its queue,
 * and only the other worker stealing them can run them. `pace_us` between
 * submits lets the free worker run dry and go to sleep before each one.
 */
static void others_complete_while_one_worker_is_held(unsigned pace_us)
{
	static const struct seq_command hold_cmd = {SEQ_HOLD, 0, 0};
	static const struct seq_command step = {SEQ_STEP, 0, 1};
	struct slot held_slot = {0, ESR_OK};
	esr_store *store;
	esr_runtime *rt;
	int held, held_worker = -1;
	unsigned i, homed = 0;
	uint32_t done_before, on_holder;
	uint64_t deadline, t0, took_ms;
	unsigned home[FREE_AGGREGATES];
	uint8_t late[FREE_AGGREGATES]; /* not completed when the wait ended */

	memset(&freed, 0, sizeof freed);
	pthread_mutex_lock(&gate.lock);
	gate.held = gate.released = 0;
	pthread_mutex_unlock(&gate.lock);
	assert_int_equal(esr_memory_store_open(&store), ESR_OK);
	rt = start(store, 2, 0);
	assert_int_equal(esr_submit_cb(rt, "Seq", "held", 4, &hold_cmd, slot_done, &held_slot),
	                 ESR_OK);
	for (deadline = now_ms() + STEAL_WAIT_MS;; sleep_us(1000)) {
		pthread_mutex_lock(&gate.lock);
		held = gate.held;
		for (i = 0; held && i < 2; i++)
			if (pthread_equal(rt->workers[i].thread, gate.holder))
				held_worker = (int)i;
		pthread_mutex_unlock(&gate.lock);
		if (held || now_ms() >= deadline)
			break;
	}
	t0 = now_ms();
	for (i = 0; held && i < FREE_AGGREGATES; i++) {
		struct esr__key k;
		char id[32];
		size_t len = agg_id("free", i, id, sizeof id);

		esr__keyset_key(rt->actors, "Seq", id, len, &k);
		home[i] = esr__home_of(&rt->cfg, k.hash);
		homed += (int)home[i] == held_worker;
		assert_int_equal(esr_submit_cb(rt, "Seq", id, len, &step, free_done, &freed.slots[i]),
		                 ESR_OK);
		if (pace_us != 0)
			sleep_us(pace_us);
	}
	done_before = held ? wait_count(&freed.done, FREE_AGGREGATES, STEAL_WAIT_MS) : 0;
	took_ms = now_ms() - t0;
	on_holder = __atomic_load_n(&freed.on_holder, __ATOMIC_RELAXED);
	for (i = 0; i < FREE_AGGREGATES; i++)
		late[i] = __atomic_load_n(&freed.slots[i].completions, __ATOMIC_ACQUIRE) == 0;
	/* Let go before any assertion, so that a failure leaves no worker held. */
	pthread_mutex_lock(&gate.lock);
	gate.released = 1;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
	assert_int_equal(esr_runtime_stop(rt), ESR_OK);
	print_message("    held worker %d; %u of %u aggregates at home on it; %u of %u completed "
	              "while it was held (%llu ms)\n",
	              held_worker, homed, FREE_AGGREGATES, done_before, FREE_AGGREGATES,
	              (unsigned long long)took_ms);
	assert_true(held);
	assert_true(held_worker >= 0);
	assert_true(homed > 0);
	assert_int_equal(on_holder, 0);
	for (i = 0; held && i < FREE_AGGREGATES; i++)
		if (late[i])
			print_error("    not completed while held: free-%u (home: worker %u)\n", i,
			            home[i]);
	assert_int_equal(done_before, FREE_AGGREGATES);
	assert_int_equal(held_slot.completions, 1);
	assert_int_equal(held_slot.status, ESR_OK);
	for (i = 0; i < FREE_AGGREGATES; i++) {
		assert_int_equal(freed.slots[i].completions, 1);
		assert_int_equal(freed.slots[i].status, ESR_OK);
	}
	esr_runtime_destroy(rt);
	esr_store_close(store);
}

static void stealing_runs_a_held_workers_queue(void **state)
{
	(void)state;
	others_complete_while_one_worker_is_held(0);
}

static void stealing_runs_a_held_workers_queue_paced(void **state)
{
	(void)state;
	others_complete_while_one_worker_is_held(1000);
}

/*
 * The smallest case of the above: once the free worker has run dry and gone
 * to sleep, one command to an aggregate at home on the held worker. Nothing
 * else is pushed after it, so only a push that wakes a thief runs it.
 */
static void stealing_runs_a_lone_actor_of_a_held_worker(void **state)
{
	static const struct seq_command hold_cmd = {SEQ_HOLD, 0, 0};
	static const struct seq_command step = {SEQ_STEP, 0, 1};
	struct slot held_slot = {0, ESR_OK};
	esr_store *store;
	esr_runtime *rt;
	int held = 0, held_worker = -1;
	unsigned i, n;
	uint32_t done;
	uint64_t deadline;
	char id[32];
	size_t len = 0;

	(void)state;
	memset(&freed, 0, sizeof freed);
	pthread_mutex_lock(&gate.lock);
	gate.held = gate.released = 0;
	pthread_mutex_unlock(&gate.lock);
	assert_int_equal(esr_memory_store_open(&store), ESR_OK);
	rt = start(store, 2, 0);
	assert_int_equal(esr_submit_cb(rt, "Seq", "held", 4, &hold_cmd, slot_done, &held_slot),
	                 ESR_OK);
	for (deadline = now_ms() + STEAL_WAIT_MS;; sleep_us(1000)) {
		pthread_mutex_lock(&gate.lock);
		held = gate.held;
		for (i = 0; held && i < 2; i++)
			if (pthread_equal(rt->workers[i].thread, gate.holder))
				held_worker = (int)i;
		pthread_mutex_unlock(&gate.lock);
		if (held || now_ms() >= deadline)
			break;
	}
	for (n = 0; held && n < 1000; n++) { /* an id at home on the held worker */
		struct esr__key k;
		len = agg_id("lone", n, id, sizeof id);
		esr__keyset_key(rt->actors, "Seq", id, len, &k);
		if ((int)esr__home_of(&rt->cfg, k.hash) == held_worker)
			break;
	}
	sleep_us(50000); /* the free worker spins at most about a millisecond */
	if (held)
		assert_int_equal(esr_submit_cb(rt, "Seq", id, len, &step, free_done, &freed.slots[0]),
		                 ESR_OK);
	done = held ? wait_count(&freed.done, 1, STEAL_WAIT_MS) : 0;
	pthread_mutex_lock(&gate.lock);
	gate.released = 1;
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
	assert_int_equal(esr_runtime_stop(rt), ESR_OK);
	print_message("    held worker %d; %s at home on it %s while it was held\n", held_worker,
	              id, done ? "completed" : "did not complete");
	assert_true(held);
	assert_true(held_worker >= 0);
	assert_int_equal(done, 1);
	assert_int_equal(held_slot.completions, 1);
	assert_int_equal(freed.slots[0].completions, 1);
	esr_runtime_destroy(rt);
	esr_store_close(store);
}

/* --- 3. stop racing submits --------------------------------------------------------- */

enum { RACERS = 4, RACE_SLOTS = 1 << 15, RACE_AGGREGATES = 8 };

struct racer {
	esr_runtime *rt;
	uint32_t id;
	struct seq_command *cmds;
	struct slot *slots;
	unsigned accepted;
	esr_status refusal; /* the status that ended its loop */
};

static void *submit_until_refused(void *arg)
{
	struct racer *r = arg;
	unsigned i;

	r->refusal = ESR_OK;
	for (i = 0; i < RACE_SLOTS; i++) {
		char id[32];
		size_t len = agg_id("race", i % RACE_AGGREGATES, id, sizeof id);
		esr_status st;

		r->cmds[i] = (struct seq_command){SEQ_STEP, r->id, i + 1};
		st = esr_submit_cb(r->rt, "Seq", id, len, &r->cmds[i], slot_done, &r->slots[i]);
		if (st != ESR_OK) {
			r->refusal = st;
			break;
		}
		r->accepted++;
	}
	return NULL;
}

static void stop_racing_submits(void **state)
{
	enum { ROUNDS = 24 };
	static const unsigned workers[] = {1, 2, 4};
	struct racer r[RACERS];
	pthread_t th[RACERS];
	unsigned round, i, k, ran_out = 0;
	uint64_t total = 0;

	(void)state;
	for (i = 0; i < RACERS; i++) {
		r[i].cmds = calloc(RACE_SLOTS, sizeof *r[i].cmds);
		r[i].slots = calloc(RACE_SLOTS, sizeof *r[i].slots);
		assert_true(r[i].cmds && r[i].slots);
	}
	for (round = 0; round < ROUNDS; round++) {
		/* A fresh store each round: the racers' seqs start again at 1. */
		esr_store *memory, *async = NULL;
		esr_runtime *rt;
		esr_runtime_stats st;
		uint32_t at_stop;
		uint64_t accepted = 0;

		assert_int_equal(esr_memory_store_open(&memory), ESR_OK);
		if (round % 4 >= 2) /* appends complete later, on the store's thread */
			assert_int_equal(async_store_open(memory, 0, &async), ESR_OK);
		rt = start(async ? async : memory, workers[round % 3], round % 2);
		__atomic_store_n(&completed_total, 0, __ATOMIC_RELAXED);
		for (i = 0; i < RACERS; i++) {
			r[i].rt = rt;
			r[i].id = i;
			r[i].accepted = 0;
			memset(r[i].slots, 0, RACE_SLOTS * sizeof *r[i].slots);
			assert_int_equal(pthread_create(&th[i], NULL, submit_until_refused, &r[i]), 0);
		}
		sleep_us((long)(round % 5) * 500);
		assert_int_equal(esr_runtime_stop(rt), ESR_OK);
		/* stop drained: every accepted command's callback has run */
		at_stop = __atomic_load_n(&completed_total, __ATOMIC_ACQUIRE);
		for (i = 0; i < RACERS; i++)
			pthread_join(th[i], NULL);
		assert_int_equal(esr_runtime_stats_get(rt, &st), ESR_OK);
		for (i = 0; i < RACERS; i++) {
			if (r[i].accepted == RACE_SLOTS)
				ran_out++; /* it never met the stop: nothing refused to check */
			else
				assert_int_equal(r[i].refusal, ESR_ESHUTDOWN);
			for (k = 0; k < RACE_SLOTS; k++) {
				const struct slot *s = &r[i].slots[k];
				unsigned want = k < r[i].accepted;
				if (s->completions != want || (want && s->status != ESR_OK))
					fail_msg("round %u racer %u command %u (%u accepted): %u "
					         "completions, last %s",
					         round, i, k, r[i].accepted, s->completions,
					         esr_status_name(s->status));
			}
			accepted += r[i].accepted;
		}
		assert_int_equal(at_stop, accepted);
		assert_int_equal(st.submitted, accepted);
		assert_int_equal(st.completed, accepted);
		assert_int_equal(st.rejected, 0);
		total += accepted;
		esr_runtime_destroy(rt);
		if (async)
			esr_store_close(async);
		esr_store_close(memory);
	}
	print_message("    %u rounds, %llu commands accepted and completed, %u racers never "
	              "met the stop\n",
	              ROUNDS, (unsigned long long)total, ran_out);
	for (i = 0; i < RACERS; i++) {
		free(r[i].cmds);
		free(r[i].slots);
	}
}

/* --- 4. passivation racing submits ------------------------------------------------ */

/*
 * Four submitters on four aggregates, in bursts of 16 commands with a pause
 * past passivate_ms between them: actors go idle, the janitor evicts them,
 * and the next burst activates them again while other submitters' commands
 * arrive. The final SEQ_READ goes through the actor, whose state is a replay.
 */
static void passivation_racing_submits(void **state)
{
	esr_store *store;
	esr_runtime *rt;

	(void)state;
	assert_int_equal(esr_memory_store_open(&store), ESR_OK);
	rt = start(store, 2, 1);
	run_submitters(store, rt, 4, commands / 4 > 64 ? commands / 4 : 64, 4, 1, 3000, "idle", 1);
	esr_runtime_destroy(rt);
	esr_store_close(store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(many_submitters_one_worker),
		cmocka_unit_test(many_submitters_two_workers),
		cmocka_unit_test(many_submitters_four_workers),
		cmocka_unit_test(stealing_runs_a_held_workers_queue),
		cmocka_unit_test(stealing_runs_a_held_workers_queue_paced),
		cmocka_unit_test(stealing_runs_a_lone_actor_of_a_held_worker),
		cmocka_unit_test(stop_racing_submits),
		cmocka_unit_test(passivation_racing_submits),
	};
	const char *n = getenv("ESR_STRESS_COMMANDS");

	if (n != NULL && atoi(n) > 0)
		commands = (unsigned)atoi(n);
	return cmocka_run_group_tests_name("scheduler", tests, NULL, NULL);
}
