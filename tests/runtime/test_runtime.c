/*
 * tests/runtime/test_runtime.c: the actor runtime's contract piece by piece: config,
 * lifecycle, bad input, tickets (wait with timeout, poll, callback), batch
 * submission, submission order, both overflow policies, single activation,
 * passivation and reactivation, stop with submitters still running, and
 * appends that complete later on another thread.
 */
#define _GNU_SOURCE /* pthread_setattr_default_np */
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
#include "bank.h"
#include "forward_store.h"
#include "wrap_store.h"

/* --- a handler that can be held shut, to make mailboxes fill up ------------------ */

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int open;
	int entered;
};

struct gate_cmd {
	struct gate *gate; /* NULL: pass straight through */
	uint32_t seq;
};

struct gate_state {
	uint32_t count;
	uint32_t last_seq;
};

static void gate_apply(void *state, const esr_event *ev)
{
	struct gate_state *s = state;

	memcpy(&s->last_seq, ev->payload, sizeof s->last_seq);
	s->count++;
}

static int gate_handle(const void *state, const void *command, esr_emitter *em)
{
	const struct gate_cmd *c = command;

	(void)state;
	if (c->gate) {
		pthread_mutex_lock(&c->gate->lock);
		c->gate->entered++;
		pthread_cond_broadcast(&c->gate->cond);
		while (!c->gate->open)
			pthread_cond_wait(&c->gate->cond, &c->gate->lock);
		pthread_mutex_unlock(&c->gate->lock);
	}
	return esr_emit(em, 1, &c->seq, sizeof c->seq);
}

static const esr_aggregate_type gate_type = {
	.name = "Gate", .state_size = sizeof(struct gate_state),
	.apply = gate_apply, .handle = gate_handle,
};

static void gate_wait_entered(struct gate *g, int n)
{
	pthread_mutex_lock(&g->lock);
	while (g->entered < n)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = 1;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* --- fixture ------------------------------------------------------------------ */

struct fixture {
	esr_store *store;
	esr_runtime *rt;
};

static struct fixture *start_with(esr_runtime_config *cfg)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	assert_int_equal(esr_memory_store_open(&f->store), ESR_OK);
	assert_int_equal(esr_runtime_start(cfg, f->store, &f->rt), ESR_OK);
	assert_int_equal(esr_runtime_register(f->rt, &bank_type), ESR_OK);
	assert_int_equal(esr_runtime_register(f->rt, &gate_type), ESR_OK);
	return f;
}

static esr_runtime_config config(unsigned workers)
{
	esr_runtime_config c;

	assert_int_equal(esr_runtime_config_default(&c), ESR_OK);
	c.workers = workers;
	return c;
}

static void finish(struct fixture *f)
{
	assert_int_equal(esr_runtime_destroy(f->rt), ESR_OK);
	esr_store_close(f->store);
	free(f);
}

static esr_runtime_stats stats_of(esr_runtime *rt)
{
	esr_runtime_stats s;

	assert_int_equal(esr_runtime_stats_get(rt, &s), ESR_OK);
	return s;
}

/* --- config ----------------------------------------------------------------------- */

static void config_defaults_and_checks_name_the_field(void **state)
{
	esr_runtime_config c = config(1), bad;
	const char *field = "x";

	(void)state;
	assert_true(c.workers >= 1);
	assert_int_equal(c.strategy, ESR_OPTIMISTIC);
	assert_int_equal(c.max_retries, 5);
	assert_int_equal(c.overflow, ESR_OVERFLOW_BLOCK);
	assert_int_equal(esr_runtime_config_check(&c, &field), ESR_OK);
	assert_null(field);
#define BAD(member, value, name)                                              \
	bad = c;                                                              \
	bad.member = value;                                                   \
	assert_int_equal(esr_runtime_config_check(&bad, &field), ESR_EINVAL); \
	assert_string_equal(field, name)
	BAD(workers, 0, "workers");
	BAD(workers, 5000, "workers");
	BAD(mailbox_capacity, 0, "mailbox_capacity");
	BAD(batch, 0, "batch");
	BAD(max_retries, ESR_RETRIES_MAX + 1, "max_retries");
	BAD(strategy, (esr_strategy)9, "strategy");
	BAD(overflow, (esr_overflow)9, "overflow");
#undef BAD
	bad = c; /* the first bad field in the documented order is named */
	bad.batch = 0;
	bad.max_retries = ESR_RETRIES_MAX + 1;
	assert_int_equal(esr_runtime_config_check(&bad, &field), ESR_EINVAL);
	assert_string_equal(field, "batch");
	assert_int_equal(esr_runtime_config_check(NULL, &field), ESR_EINVAL);
	assert_string_equal(field, "config");
	assert_int_equal(esr_runtime_config_default(NULL), ESR_EINVAL);
}

static void config_from_environment(void **state)
{
	esr_runtime_config c;
	const char *field;

	(void)state;
	setenv("ESR_WORKERS", "3", 1);
	setenv("ESR_STRATEGY", "unchecked", 1);
	setenv("ESR_OVERFLOW", "fail", 1);
	setenv("ESR_BATCH", "7", 1);
	setenv("ESR_PASSIVATE_MS", "0", 1);
	assert_int_equal(esr_runtime_config_from_env(&c, &field), ESR_OK);
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.strategy, ESR_UNCHECKED);
	assert_int_equal(c.overflow, ESR_OVERFLOW_FAIL);
	assert_int_equal(c.batch, 7);
	assert_int_equal(c.passivate_ms, 0);
	c.workers = 99;
	setenv("ESR_WORKERS", "3x", 1);
	assert_int_equal(esr_runtime_config_from_env(&c, &field), ESR_EINVAL);
	assert_string_equal(field, "ESR_WORKERS");
	assert_int_equal(c.workers, 99); /* untouched */
	setenv("ESR_WORKERS", "-1", 1);
	assert_int_equal(esr_runtime_config_from_env(&c, &field), ESR_EINVAL);
	unsetenv("ESR_WORKERS");
	setenv("ESR_OVERFLOW", "drop", 1);
	assert_int_equal(esr_runtime_config_from_env(&c, &field), ESR_EINVAL);
	assert_string_equal(field, "ESR_OVERFLOW");
	unsetenv("ESR_OVERFLOW");
	setenv("ESR_STRATEGY", "both", 1);
	assert_int_equal(esr_runtime_config_from_env(&c, &field), ESR_EINVAL);
	assert_string_equal(field, "ESR_STRATEGY");
	unsetenv("ESR_STRATEGY");
	unsetenv("ESR_BATCH");
	unsetenv("ESR_PASSIVATE_MS");
}

static void start_refuses_bad_config(void **state)
{
	esr_runtime_config c = config(1);
	esr_runtime *rt = NULL;
	esr_store *store;

	(void)state;
	assert_int_equal(esr_memory_store_open(&store), ESR_OK);
	c.workers = 0;
	assert_int_equal(esr_runtime_start(&c, store, &rt), ESR_EINVAL);
	c = config(1);
	c.batch = 0;
	assert_int_equal(esr_runtime_start(&c, store, &rt), ESR_EINVAL);
	c = config(1);
	c.mailbox_capacity = 0;
	assert_int_equal(esr_runtime_start(&c, store, &rt), ESR_EINVAL);
	c = config(1);
	c.strategy = (esr_strategy)3;
	assert_int_equal(esr_runtime_start(&c, store, &rt), ESR_EINVAL);
	c = config(1);
	assert_int_equal(esr_runtime_start(&c, NULL, &rt), ESR_EINVAL);
	assert_int_equal(esr_runtime_start(&c, store, NULL), ESR_EINVAL);
	assert_null(rt);
	assert_int_equal(esr_runtime_start(NULL, store, &rt), ESR_OK); /* defaults */
	assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
	assert_int_equal(esr_runtime_stop(NULL), ESR_OK);
	assert_int_equal(esr_runtime_destroy(NULL), ESR_OK);
	esr_store_close(store);
}

/* --- bad input --------------------------------------------------------------------- */

static void submit_refuses_bad_input_without_touching_actors(void **state)
{
	esr_runtime_config c = config(1);
	struct fixture *f = start_with(&c);
	struct bank_command cmd = {.kind = BANK_DEPOSIT, .amount = 1};
	char long_id[ESR_ID_MAX + 1];
	esr_ticket *t = NULL;
	esr_runtime_stats s;
	esr_result r;
	int ctx;

	(void)state;
	memset(long_id, 'x', sizeof long_id);
	assert_int_equal(esr_submit(NULL, "BankAccount", "a", 1, &cmd, &t), ESR_EINVAL);
	assert_int_equal(esr_submit(f->rt, "BankAccount", "a", 1, &cmd, NULL), ESR_EINVAL);
	assert_int_equal(esr_submit(f->rt, "BankAccount", NULL, 1, &cmd, &t), ESR_EINVAL);
	assert_int_equal(esr_submit(f->rt, "BankAccount", "a", 0, &cmd, &t), ESR_EINVAL);
	assert_int_equal(esr_submit(f->rt, "BankAccount", long_id, sizeof long_id, &cmd, &t),
	                 ESR_ETOOBIG);
	assert_int_equal(esr_submit(f->rt, "Nobody", "a", 1, &cmd, &t), ESR_ENOTYPE);
	assert_int_equal(esr_submit(f->rt, NULL, "a", 1, &cmd, &t), ESR_EINVAL);
	assert_int_equal(esr_submit(f->rt, "Bank Account", "a", 1, &cmd, &t), ESR_EINVAL);
	assert_int_equal(esr_submit_cb(f->rt, "BankAccount", "a", 1, &cmd, NULL, &ctx), ESR_EINVAL);
	assert_int_equal(esr_execute(f->rt, "Nobody", "a", 1, &cmd, &r), ESR_ENOTYPE);
	assert_null(t);
	assert_int_equal(esr_runtime_register(f->rt, NULL), ESR_EINVAL);
	assert_int_equal(esr_runtime_register(NULL, &bank_type), ESR_EINVAL);
	assert_int_equal(esr_runtime_register(f->rt, &bank_type), ESR_EEXIST);
	assert_int_equal(esr_ticket_wait(NULL, 0), ESR_EINVAL);
	assert_int_equal(esr_ticket_poll(NULL, &ctx), ESR_EINVAL);
	assert_int_equal(esr_ticket_release(NULL), ESR_OK);
	assert_int_equal(esr_runtime_stats_get(NULL, &s), ESR_EINVAL);
	assert_int_equal(esr_runtime_stats_get(f->rt, NULL), ESR_EINVAL);
	s = stats_of(f->rt);
	assert_int_equal(s.submitted, 0);
	assert_int_equal(s.live_actors, 0);
	finish(f);
}

/* --- commands and tickets --------------------------------------------------------------- */

static void execute_runs_the_handler_on_actor_state(void **state)
{
	esr_runtime_config c = config(2);
	struct fixture *f = start_with(&c);
	struct bank_command open = {BANK_OPEN, 100, 0, 0, 1}, wd = {BANK_WITHDRAW, 150, 0, 0, 1};
	esr_runtime_stats s;
	esr_result r;

	(void)state;
	assert_int_equal(esr_execute(f->rt, "BankAccount", "a", 1, &open, &r), ESR_OK);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.appended, 1);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(esr_execute(f->rt, "BankAccount", "a", 1, &wd, &r), ESR_EREJECTED);
	assert_int_equal(r.rejection, BANK_INSUFFICIENT_FUNDS);
	assert_int_equal(r.version, 1);
	wd.amount = 60;
	assert_int_equal(esr_execute(f->rt, "BankAccount", "a", 1, &wd, &r), ESR_OK);
	assert_int_equal(r.version, 2);
	s = stats_of(f->rt);
	assert_int_equal(s.submitted, 3);
	assert_int_equal(s.completed, 3);
	assert_int_equal(s.rejected, 1);
	assert_int_equal(s.activations, 1);
	assert_int_equal(s.live_actors, 1);
	finish(f);
}

static esr_status last_seqs(void *ctx, const esr_recorded_event *rec)
{
	uint32_t *expect = ctx, seq;

	memcpy(&seq, rec->event.payload, sizeof seq);
	if (seq != *expect)
		return ESR_ECORRUPT;
	(*expect)++;
	return ESR_OK;
}

static void one_submitter_runs_in_submission_order(void **state)
{
	esr_runtime_config c = config(2);
	struct fixture *f;
	enum { N = 3000 };
	static struct gate_cmd cmds[N];
	static esr_ticket *tickets[N];
	esr_stream_id sid = {"Gate", "g", 1};
	uint32_t i, expect = 0;

	(void)state;
	c.batch = 3; /* many turns, so the actor is rescheduled often */
	f = start_with(&c);
	for (i = 0; i < N; i++) {
		cmds[i] = (struct gate_cmd){NULL, i};
		assert_int_equal(esr_submit(f->rt, "Gate", "g", 1, &cmds[i], &tickets[i]), ESR_OK);
	}
	for (i = 0; i < N; i++) {
		esr_status st;
		esr_result r;
		assert_int_equal(esr_ticket_wait(tickets[i], -1), ESR_OK);
		assert_int_equal(esr_ticket_result(tickets[i], &st, &r), ESR_OK);
		assert_int_equal(st, ESR_OK);
		assert_int_equal(r.version, i + 1); /* ran i-th */
		esr_ticket_release(tickets[i]);
	}
	assert_int_equal(esr_store_read(f->store, &sid, 1, last_seqs, &expect), ESR_OK);
	assert_int_equal(expect, N);
	finish(f);
}

static void ticket_wait_times_out_and_poll_reports(void **state)
{
	esr_runtime_config c = config(1);
	struct fixture *f = start_with(&c);
	struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	struct gate_cmd cmd = {&g, 7};
	esr_ticket *t;
	esr_status st;
	esr_result r;
	int done = -1;

	(void)state;
	assert_int_equal(esr_submit(f->rt, "Gate", "g", 1, &cmd, &t), ESR_OK);
	gate_wait_entered(&g, 1);
	assert_int_equal(esr_ticket_wait(t, 30), ESR_ETIMEDOUT);
	assert_int_equal(esr_ticket_wait(t, 0), ESR_ETIMEDOUT);
	assert_int_equal(esr_ticket_poll(t, &done), ESR_OK);
	assert_int_equal(done, 0);
	assert_int_equal(esr_ticket_result(t, &st, &r), ESR_EBUSY);
	gate_open(&g);
	assert_int_equal(esr_ticket_wait(t, 10000), ESR_OK);
	assert_int_equal(esr_ticket_poll(t, &done), ESR_OK);
	assert_int_equal(done, 1);
	assert_int_equal(esr_ticket_result(t, &st, &r), ESR_OK);
	assert_int_equal(st, ESR_OK);
	assert_int_equal(r.version, 1);
	esr_ticket_release(t);
	finish(f);
}

struct tally {
	pthread_mutex_t lock;
	unsigned calls, ok;
	uint64_t version_sum;
};

static void count_done(void *ctx, esr_status st, const esr_result *r)
{
	struct tally *t = ctx;

	pthread_mutex_lock(&t->lock);
	t->calls++;
	t->ok += st == ESR_OK;
	t->version_sum += r->version;
	pthread_mutex_unlock(&t->lock);
}

static void callbacks_fire_once_per_command(void **state)
{
	esr_runtime_config c = config(2);
	struct fixture *f = start_with(&c);
	struct tally t = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
	struct bank_command dep = {BANK_DEPOSIT, 1, 0, 0, 1};
	unsigned i;

	(void)state;
	for (i = 0; i < 500; i++)
		assert_int_equal(esr_submit_cb(f->rt, "BankAccount", "cb", 2, &dep, count_done, &t),
		                 ESR_OK);
	esr_runtime_stop(f->rt); /* drains: every callback has run when it returns */
	assert_int_equal(t.calls, 500);
	assert_int_equal(t.ok, 500);
	assert_int_equal(t.version_sum, 500u * 501u / 2u); /* versions 1..500, each once */
	finish(f);
}

static void submit_many_stops_at_the_first_refusal(void **state)
{
	esr_runtime_config c = config(2);
	struct fixture *f = start_with(&c);
	struct bank_command dep = {BANK_DEPOSIT, 1, 0, 0, 1};
	esr_submission subs[10];
	esr_ticket *tickets[10];
	size_t accepted = 99, i;

	(void)state;
	for (i = 0; i < 10; i++)
		subs[i] = (esr_submission){"BankAccount", i % 2 ? "odd" : "even", i % 2 ? 3 : 4, &dep, NULL, {NULL, 0}};
	assert_int_equal(esr_submit_many(f->rt, subs, 10, tickets, &accepted), ESR_OK);
	assert_int_equal(accepted, 10);
	for (i = 0; i < 10; i++) {
		assert_int_equal(esr_ticket_wait(tickets[i], -1), ESR_OK);
		esr_ticket_release(tickets[i]);
	}
	subs[4].type = "Nobody";
	assert_int_equal(esr_submit_many(f->rt, subs, 10, tickets, &accepted), ESR_ENOTYPE);
	assert_int_equal(accepted, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(esr_ticket_wait(tickets[i], -1), ESR_OK);
		esr_ticket_release(tickets[i]);
	}
	assert_int_equal(esr_submit_many(f->rt, NULL, 1, tickets, &accepted), ESR_EINVAL);
	assert_int_equal(accepted, 0);
	assert_int_equal(stats_of(f->rt).completed, 14);
	finish(f);
}

/* Each command of a callback batch completes once, with its own ctx. */
static void submit_many_cb_hands_each_command_its_ctx(void **state)
{
	esr_runtime_config c = config(2);
	struct fixture *f = start_with(&c);
	struct tally t[2] = {{PTHREAD_MUTEX_INITIALIZER, 0, 0, 0},
	                     {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0}};
	struct bank_command dep = {BANK_DEPOSIT, 1, 0, 0, 1};
	esr_submission subs[64];
	size_t accepted = 99, i;
	char type[] = "BankAccount"; /* a second pointer to the same name */

	(void)state;
	for (i = 0; i < 64; i++)
		subs[i] = (esr_submission){i % 3 ? "BankAccount" : type, i % 2 ? "odd" : "even",
		                           i % 2 ? 3 : 4, &dep, &t[i % 2], {NULL, 0}};
	assert_int_equal(esr_submit_many_cb(f->rt, subs, 64, count_done, &accepted), ESR_OK);
	assert_int_equal(accepted, 64);
	subs[5].id_len = ESR_ID_MAX + 1;
	assert_int_equal(esr_submit_many_cb(f->rt, subs, 64, count_done, &accepted), ESR_ETOOBIG);
	assert_int_equal(accepted, 5);
	assert_int_equal(esr_submit_many_cb(f->rt, subs, 1, NULL, &accepted), ESR_EINVAL);
	assert_int_equal(accepted, 0);
	assert_int_equal(esr_submit_many_cb(f->rt, subs, 0, count_done, &accepted), ESR_OK);
	assert_int_equal(accepted, 0);
	esr_runtime_stop(f->rt);
	/* "even" got commands 0,2,...,62 then 0,2,4; "odd" 1,...,63 then 1,3. */
	assert_int_equal(t[0].calls, 32 + 3);
	assert_int_equal(t[1].calls, 32 + 2);
	assert_int_equal(t[0].ok + t[1].ok, 69);
	assert_int_equal(t[0].version_sum, 35u * 36u / 2u);
	assert_int_equal(t[1].version_sum, 34u * 35u / 2u);
	assert_int_equal(esr_submit_many_cb(f->rt, subs, 1, count_done, &accepted),
	                 ESR_ESHUTDOWN);
	assert_int_equal(accepted, 0);
	finish(f);
}

/* A type whose commands carry nothing: handle() counts NULL commands. */
static void tick_apply(void *state, const esr_event *ev)
{
	(void)ev;
	(*(uint32_t *)state)++;
}

static int tick_handle(const void *state, const void *command, esr_emitter *em)
{
	(void)state;
	return command != NULL ? 1 : esr_emit(em, 1, NULL, 0);
}

static const esr_aggregate_type tick_type = {
	.name = "Tick", .state_size = sizeof(uint32_t),
	.apply = tick_apply, .handle = tick_handle,
};

/* A NULL command is handed to handle() as is, on every way in. */
static void null_commands_reach_the_handler(void **state)
{
	esr_runtime_config c = config(2);
	struct fixture *f = start_with(&c);
	struct tally tl = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
	esr_submission subs[2] = {{"Tick", "t", 1, NULL, &tl, {NULL, 0}},
	                          {"Tick", "t", 1, NULL, &tl, {NULL, 0}}};
	esr_ticket *t, *many[2];
	esr_status st;
	esr_result r;
	size_t accepted;

	(void)state;
	assert_int_equal(esr_runtime_register(f->rt, &tick_type), ESR_OK);
	assert_int_equal(esr_execute(f->rt, "Tick", "t", 1, NULL, &r), ESR_OK);
	assert_int_equal(r.version, 1);
	assert_int_equal(esr_submit(f->rt, "Tick", "t", 1, NULL, &t), ESR_OK);
	assert_int_equal(esr_ticket_wait(t, -1), ESR_OK);
	assert_int_equal(esr_ticket_result(t, &st, &r), ESR_OK);
	assert_int_equal(st, ESR_OK);
	assert_int_equal(r.version, 2);
	esr_ticket_release(t);
	assert_int_equal(esr_submit_many(f->rt, subs, 2, many, &accepted), ESR_OK);
	assert_int_equal(accepted, 2);
	assert_int_equal(esr_ticket_wait(many[1], -1), ESR_OK);
	esr_ticket_release(many[0]);
	esr_ticket_release(many[1]);
	assert_int_equal(esr_submit_cb(f->rt, "Tick", "t", 1, NULL, count_done, &tl), ESR_OK);
	assert_int_equal(esr_submit_many_cb(f->rt, subs, 2, count_done, &accepted), ESR_OK);
	esr_runtime_stop(f->rt);
	assert_int_equal(tl.calls, 3);
	assert_int_equal(tl.ok, 3);
	assert_int_equal(stats_of(f->rt).completed, 7);
	finish(f);
}


/* --- overflow ----------------------------------------------------------------------------- */

/*
 * A one-worker runtime whose worker is held inside a Gate command on "g"
 * (the held command occupies one of the mailbox's `capacity` slots).
 */
static struct gate_cmd held_cmd, next_cmd = {NULL, 1};

static struct fixture *start_held(unsigned capacity, esr_overflow overflow,
                                  struct gate *g, esr_ticket **first)
{
	esr_runtime_config c = config(1);
	struct fixture *f;

	c.mailbox_capacity = capacity;
	c.overflow = overflow;
	f = start_with(&c);
	held_cmd = (struct gate_cmd){g, 0};
	assert_int_equal(esr_submit(f->rt, "Gate", "g", 1, &held_cmd, first), ESR_OK);
	gate_wait_entered(g, 1);
	return f;
}

static void full_mailbox_fails_fast_with_ebusy(void **state)
{
	struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	esr_ticket *t[4], *extra = NULL;
	struct fixture *f = start_held(4, ESR_OVERFLOW_FAIL, &g, &t[0]);
	int i;

	(void)state;
	for (i = 1; i < 4; i++) /* the running command still counts */
		assert_int_equal(esr_submit(f->rt, "Gate", "g", 1, &next_cmd, &t[i]), ESR_OK);
	assert_int_equal(esr_submit(f->rt, "Gate", "g", 1, &next_cmd, &extra), ESR_EBUSY);
	assert_null(extra);
	assert_int_equal(esr_submit(f->rt, "Gate", "other", 5, &next_cmd, &extra), ESR_OK);
	assert_int_equal(stats_of(f->rt).mailbox_full, 1);
	gate_open(&g);
	for (i = 0; i < 4; i++) {
		assert_int_equal(esr_ticket_wait(t[i], -1), ESR_OK);
		esr_ticket_release(t[i]);
	}
	assert_int_equal(esr_ticket_wait(extra, -1), ESR_OK);
	esr_ticket_release(extra);
	assert_int_equal(stats_of(f->rt).completed, 5);
	finish(f);
}

struct blocked_submitter {
	esr_runtime *rt;
	int submitted;
	esr_status last;
};

static void *submit_ten(void *arg)
{
	struct blocked_submitter *b = arg;
	esr_ticket *t;
	int i;

	for (i = 0; i < 10; i++) {
		b->last = esr_submit(b->rt, "Gate", "g", 1, &next_cmd, &t);
		if (b->last != ESR_OK)
			break;
		esr_ticket_release(t);
		__atomic_add_fetch(&b->submitted, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void full_mailbox_blocks_the_submitter_until_room(void **state)
{
	struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	esr_ticket *first;
	struct fixture *f = start_held(2, ESR_OVERFLOW_BLOCK, &g, &first);
	struct blocked_submitter b = {f->rt, 0, ESR_OK};
	pthread_t th;
	int waited;

	(void)state;

	pthread_create(&th, NULL, submit_ten, &b);
	for (waited = 0; waited < 10000 && __atomic_load_n(&b.submitted, __ATOMIC_ACQUIRE) < 1;
	     waited++)
		sleep_ms(1);
	sleep_ms(50);
	/* one slot was free; the second submit cannot get in while the gate is
	 * shut, however long we look */
	assert_int_equal(__atomic_load_n(&b.submitted, __ATOMIC_ACQUIRE), 1);
	assert_true(stats_of(f->rt).mailbox_full >= 1);
	gate_open(&g);
	pthread_join(th, NULL);
	assert_int_equal(b.last, ESR_OK);
	assert_int_equal(b.submitted, 10);
	assert_int_equal(esr_ticket_wait(first, -1), ESR_OK);
	esr_ticket_release(first);
	esr_runtime_stop(f->rt);
	assert_int_equal(stats_of(f->rt).completed, 11);
	finish(f);
}

static void *stop_runtime(void *rt)
{
	esr_runtime_stop(rt);
	return NULL;
}

static void stop_releases_blocked_submitters(void **state)
{
	struct gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	esr_ticket *first;
	struct fixture *f = start_held(1, ESR_OVERFLOW_BLOCK, &g, &first);
	struct blocked_submitter b = {f->rt, 0, ESR_OK};
	pthread_t th, stopper;

	(void)state;
	pthread_create(&th, NULL, submit_ten, &b);
	sleep_ms(50); /* the mailbox is full: its first submit is waiting */
	pthread_create(&stopper, NULL, stop_runtime, f->rt);
	pthread_join(th, NULL); /* stop released it while the gate is still shut */
	assert_int_equal(b.submitted, 0);
	assert_int_equal(b.last, ESR_ESHUTDOWN);
	gate_open(&g); /* stop drains the held command, then returns */
	pthread_join(stopper, NULL);
	assert_int_equal(stats_of(f->rt).completed, 1);
	assert_int_equal(esr_ticket_wait(first, 0), ESR_OK);
	esr_ticket_release(first);
	finish(f);
}

/* --- lifecycle ---------------------------------------------------------------------------- */

struct hammer {
	esr_runtime *rt;
	int id;
	unsigned ok, refused;
	esr_status other;
	esr_ticket **tickets;
};

static void *submit_until_refused(void *arg)
{
	/* Static: a command must outlive its ticket, and this thread leaves
	 * while stop is still running the commands it submitted. */
	static const struct bank_command dep = {BANK_DEPOSIT, 1, 0, 0, 1};
	struct hammer *h = arg;
	char id[16];

	snprintf(id, sizeof id, "acct-%d", h->id);
	for (;;) {
		esr_ticket *t;
		esr_status st = esr_submit(h->rt, "BankAccount", id, strlen(id), &dep, &t);
		if (st == ESR_ESHUTDOWN)
			break;
		if (st != ESR_OK) {
			h->other = st;
			break;
		}
		h->tickets[h->ok++] = t;
		if (h->ok == 200000)
			break;
	}
	h->refused = 1;
	return NULL;
}

static void stop_drains_while_submitters_run(void **state)
{
	esr_runtime_config c = config(2);
	struct fixture *f = start_with(&c);
	struct hammer h[4];
	pthread_t th[4];
	uint64_t ok = 0;
	unsigned i, k;

	(void)state;
	for (i = 0; i < 4; i++) {
		h[i] = (struct hammer){f->rt, (int)i, 0, 0, ESR_OK, malloc(200000 * sizeof(esr_ticket *))};
		pthread_create(&th[i], NULL, submit_until_refused, &h[i]);
	}
	sleep_ms(30);
	assert_int_equal(esr_runtime_stop(f->rt), ESR_OK);
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(h[i].other, ESR_OK);
		for (k = 0; k < h[i].ok; k++) {
			esr_status st;
			/* every accepted command ran before stop returned */
			assert_int_equal(esr_ticket_wait(h[i].tickets[k], 0), ESR_OK);
			assert_int_equal(esr_ticket_result(h[i].tickets[k], &st, NULL), ESR_OK);
			assert_int_equal(st, ESR_OK);
			esr_ticket_release(h[i].tickets[k]);
		}
		ok += h[i].ok;
		free(h[i].tickets);
	}
	assert_int_equal(stats_of(f->rt).completed, ok);
	assert_int_equal(stats_of(f->rt).submitted, ok);
	{
		esr_ticket *t;
		struct bank_command dep = {BANK_DEPOSIT, 1, 0, 0, 1};
		assert_int_equal(esr_submit(f->rt, "BankAccount", "late", 4, &dep, &t), ESR_ESHUTDOWN);
		assert_int_equal(esr_runtime_register(f->rt, &gate_type), ESR_ESHUTDOWN);
	}
	print_message("    %llu commands accepted before stop, all completed\n",
	              (unsigned long long)ok);
	finish(f);
}

struct racer {
	esr_runtime *rt;
	pthread_barrier_t *go;
	esr_status st;
};

static void *race_to_activate(void *arg)
{
	struct racer *r = arg;
	struct bank_command dep = {BANK_DEPOSIT, 1, 0, 0, 1};
	esr_result res;

	pthread_barrier_wait(r->go);
	r->st = esr_execute(r->rt, "BankAccount", "fresh", 5, &dep, &res);
	return NULL;
}

static void racing_submits_activate_one_actor(void **state)
{
	int round;

	(void)state;
	for (round = 0; round < 20; round++) {
		esr_runtime_config c = config(2);
		struct fixture *f = start_with(&c);
		pthread_barrier_t go;
		struct racer r[4];
		pthread_t th[4];
		esr_runtime_stats s;
		int i;

		pthread_barrier_init(&go, NULL, 4);
		for (i = 0; i < 4; i++) {
			r[i] = (struct racer){f->rt, &go, ESR_EIO};
			pthread_create(&th[i], NULL, race_to_activate, &r[i]);
		}
		for (i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			assert_int_equal(r[i].st, ESR_OK);
		}
		pthread_barrier_destroy(&go);
		s = stats_of(f->rt);
		assert_int_equal(s.activations, 1);
		assert_int_equal(s.live_actors, 1);
		finish(f);
	}
}

/* --- a mailbox slot is free once its command's completion is seen ----------------------- */

struct signal {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done;
	esr_status st;
};

static void signal_done(void *ctx, esr_status st, const esr_result *r)
{
	struct signal *s = ctx;

	(void)r;
	pthread_mutex_lock(&s->lock);
	s->done = 1;
	s->st = st;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/*
 * With room for one command and ESR_OVERFLOW_FAIL, a host that waits for each
 * command before it submits the next never finds the mailbox full: the slot
 * is given back before the completion can be seen, by a ticket or a callback.
 */
static void completed_commands_leave_room_at_once(void **state)
{
	enum { ROUNDS = 4000 };
	esr_runtime_config c = config(2);
	struct fixture *f;
	struct gate_cmd cmd = {NULL, 0};
	struct signal sig = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, ESR_OK};
	unsigned i, busy = 0, busy_cb = 0;

	(void)state;
	c.mailbox_capacity = 1;
	c.overflow = ESR_OVERFLOW_FAIL;
	f = start_with(&c);
	for (i = 0; i < ROUNDS; i++) {
		esr_ticket *t;
		esr_status st, outcome;
		if ((st = esr_submit(f->rt, "Gate", "g", 1, &cmd, &t)) == ESR_EBUSY) {
			busy++;
			continue;
		}
		assert_int_equal(st, ESR_OK);
		assert_int_equal(esr_ticket_wait(t, -1), ESR_OK);
		assert_int_equal(esr_ticket_result(t, &outcome, NULL), ESR_OK);
		assert_int_equal(outcome, ESR_OK);
		esr_ticket_release(t);
	}
	for (i = 0; i < ROUNDS; i++) {
		esr_status st;
		sig.done = 0;
		if ((st = esr_submit_cb(f->rt, "Gate", "g", 1, &cmd, signal_done, &sig)) ==
		    ESR_EBUSY) {
			busy_cb++;
			continue;
		}
		assert_int_equal(st, ESR_OK);
		pthread_mutex_lock(&sig.lock);
		while (!sig.done)
			pthread_cond_wait(&sig.cond, &sig.lock);
		pthread_mutex_unlock(&sig.lock);
		assert_int_equal(sig.st, ESR_OK);
	}
	print_message("    ESR_EBUSY: %u of %u submits after a ticket, %u of %u after a callback\n",
	              busy, ROUNDS, busy_cb, ROUNDS);
	assert_int_equal(busy, 0);
	assert_int_equal(busy_cb, 0);
	assert_int_equal(stats_of(f->rt).mailbox_full, 0);
	finish(f);
}

/* --- the actor's state after a failed command -------------------------------------------- */

/* A runtime over `store` running BankAccount, with max_retries as given. */
static esr_runtime *start_bank(esr_store *store, unsigned max_retries)
{
	esr_runtime_config c = config(2);
	esr_runtime *rt;

	c.max_retries = max_retries;
	assert_int_equal(esr_runtime_start(&c, store, &rt), ESR_OK);
	assert_int_equal(esr_runtime_register(rt, &bank_type), ESR_OK);
	return rt;
}

/*
 * With no retries, one foreign append makes one command conflict; the actor
 * then catches up, and the next commands (nobody else writing) succeed at the
 * first attempt.
 */
static void exhausted_conflict_catches_up_before_the_next_command(void **state)
{
	struct bank_command open = {BANK_OPEN, 100, 0, 0, 1}, dep = {BANK_DEPOSIT, 1, 0, 0, 1};
	esr_repository *repo;
	esr_store *store;
	esr_runtime *rt;
	esr_runtime_stats s;
	esr_result r;
	int i, ok = 0;

	(void)state;
	assert_int_equal(esr_memory_store_open(&store), ESR_OK);
	rt = start_bank(store, 0);
	assert_int_equal(esr_repository_open(store, NULL, &repo), ESR_OK);
	assert_int_equal(esr_repository_register(repo, &bank_type), ESR_OK);
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-7", 6, &open, &r), ESR_OK);
	assert_int_equal(esr_repository_execute(repo, "BankAccount", "acct-7", 6, &dep, &r),
	                 ESR_OK);
	assert_int_equal(r.version, 2);
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-7", 6, &dep, &r), ESR_ECONFLICT);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.conflict.expected, 1);
	assert_int_equal(r.conflict.actual, 2);
	for (i = 0; i < 5; i++) {
		esr_status st = esr_execute(rt, "BankAccount", "acct-7", 6, &dep, &r);
		ok += st == ESR_OK;
		if (st == ESR_OK) {
			assert_int_equal(r.attempts, 1);
			assert_int_equal(r.version, (uint64_t)i + 3);
		}
	}
	print_message("    %d of 5 commands after the exhausted one succeeded\n", ok);
	assert_int_equal(ok, 5);
	s = stats_of(rt);
	assert_int_equal(s.conflicts, 1);
	assert_int_equal(s.exhausted, 1);
	assert_int_equal(s.activations, 1); /* caught up, not reloaded */
	assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
	esr_repository_close(repo);
	esr_store_close(store);
}

/*
 * Retries used up against a writer that appends before every attempt: the
 * ticket carries the conflict (its text form included), and the next command,
 * once that writer stops, needs one attempt and counts no conflict.
 */
static void exhaustion_with_retries_reports_and_recovers(void **state)
{
	struct bank_command open = {BANK_OPEN, 100, 0, 0, 1}, wd = {BANK_WITHDRAW, 10, 0, 0, 1};
	char line[ESR_CONFLICT_TEXT_MAX];
	struct wrap w = {0};
	esr_store *memory, *store;
	esr_runtime *rt;
	esr_runtime_stats s;
	esr_result r;

	(void)state;
	assert_int_equal(esr_memory_store_open(&memory), ESR_OK);
	w.inner = memory;
	assert_int_equal(wrap_store_open(&w, &store), ESR_OK);
	rt = start_bank(store, 2);
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-7", 6, &open, &r), ESR_OK);
	w.interfere = 3; /* read by the worker after the submit below */
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-7", 6, &wd, &r), ESR_ECONFLICT);
	assert_int_equal(r.attempts, 3);
	assert_int_equal(r.appended, 0);
	assert_int_equal(esr_conflict_format(&r.conflict, line, sizeof line), ESR_OK);
	assert_string_equal(line, "esr: optimistic conflict: type=BankAccount id=acct-7 "
	                          "expected-version=3 actual-version=4 attempts=3");
	assert_int_equal(w.interfere, 0);
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-7", 6, &wd, &r), ESR_OK);
	print_message("    the command after exhaustion took %u attempt(s)\n", r.attempts);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.version, 5);
	s = stats_of(rt);
	assert_int_equal(s.conflicts, 3);
	assert_int_equal(s.retries, 2);
	assert_int_equal(s.exhausted, 1);
	assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
	esr_store_close(store);
	esr_store_close(memory);
}

/*
 * The most retries a runtime allows, against a writer that appends before
 * every attempt: the command runs its handler max_retries + 1 times, each
 * append conflicts, and it ends with ESR_ECONFLICT. The memory store
 * completes each append inline, on the worker's own thread, so the whole
 * retry chain runs inside one worker turn: it must not grow the stack. The
 * workers get a small stack (the runtime does not choose its threads' stack
 * size, and some C libraries default to far less than 8 MiB), which a
 * retry costing a few hundred bytes of stack would overflow.
 */
#if defined(__SANITIZE_THREAD__)
#define SMALL_STACK (1024 * 1024) /* ThreadSanitizer refuses threads below 1 MiB */
#else
#define SMALL_STACK (512 * 1024)
#endif

static void most_retries_all_conflicting_end_in_conflict(void **state)
{
	struct bank_command open = {BANK_OPEN, 100, 0, 0, 1}, wd = {BANK_WITHDRAW, 10, 0, 0, 1};
	struct wrap w = {0};
	esr_store *memory, *store;
	esr_runtime *rt;
	esr_runtime_stats s;
	pthread_attr_t normal, small;
	esr_runtime_config c = config(2);
	esr_result r;
	esr_status st;
	uint64_t appends;

	(void)state;
	assert_int_equal(esr_memory_store_open(&memory), ESR_OK);
	w.inner = memory;
	assert_int_equal(wrap_store_open(&w, &store), ESR_OK);
	assert_int_equal(pthread_getattr_default_np(&normal), 0);
	assert_int_equal(pthread_attr_init(&small), 0);
	assert_int_equal(pthread_attr_setstacksize(&small, SMALL_STACK), 0);
	assert_int_equal(pthread_setattr_default_np(&small), 0);
	c.max_retries = ESR_RETRIES_MAX;
	st = esr_runtime_start(&c, store, &rt);
	/* Back to the default before any assertion, so that a failure here
	 * cannot leave the small stack to the tests after this one. */
	assert_int_equal(pthread_setattr_default_np(&normal), 0);
	pthread_attr_destroy(&small);
	pthread_attr_destroy(&normal);
	assert_int_equal(st, ESR_OK);
	assert_int_equal(esr_runtime_register(rt, &bank_type), ESR_OK);
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-9", 6, &open, &r), ESR_OK);
	appends = w.appends;
	w.interfere = ESR_RETRIES_MAX + 1; /* read by the worker after the submit below */
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-9", 6, &wd, &r), ESR_ECONFLICT);
	assert_int_equal(r.attempts, ESR_RETRIES_MAX + 1);
	assert_int_equal(r.appended, 0);
	assert_int_equal(w.appends - appends, ESR_RETRIES_MAX + 1);
	assert_int_equal(w.interfere, 0);
	assert_int_equal(r.conflict.expected, ESR_RETRIES_MAX + 1);
	assert_int_equal(r.conflict.actual, ESR_RETRIES_MAX + 2);
	s = stats_of(rt);
	assert_int_equal(s.conflicts, ESR_RETRIES_MAX + 1);
	assert_int_equal(s.retries, ESR_RETRIES_MAX);
	assert_int_equal(s.exhausted, 1);
	/* nobody else writing: the next command goes through at once */
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-9", 6, &wd, &r), ESR_OK);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
	esr_store_close(store);
	esr_store_close(memory);
}

/* A store that stores an append but, `unknown` times, reports ESR_EUNKNOWN. */
struct unsure {
	esr_store *inner; /* first: forward_store.h */
	unsigned unknown;
};

static esr_status unsure_append(void *impl, const esr_stream_id *sid, uint64_t expected,
                                const esr_event *events, size_t n, esr_append_cb done,
                                void *ctx)
{
	struct unsure *u = impl;
	esr_append_result res;

	esr_store_append(u->inner, sid, expected, events, n, &res);
	if (u->unknown > 0 && res.status == ESR_OK) {
		u->unknown--;
		res.status = ESR_EUNKNOWN; /* stored, but the writer cannot tell */
	}
	done(ctx, &res);
	return ESR_OK;
}

static esr_status unsure_read(void *impl, const esr_stream_id *sid, uint64_t from,
                              esr_visit_fn visit, void *ctx)
{
	return esr_store_read(((struct unsure *)impl)->inner, sid, from, visit, ctx);
}

static esr_status unsure_version(void *impl, const esr_stream_id *sid, uint64_t *v)
{
	return esr_store_version(((struct unsure *)impl)->inner, sid, v);
}

static void unsure_destroy(void *impl)
{
	(void)impl;
}

static const esr_store_vtable unsure_vtable = {
	.vtable_version = ESR_STORE_VTABLE_VERSION,
	.name = "unsure", .append = unsure_append, .read = unsure_read,
	.version = unsure_version, .destroy = unsure_destroy, FORWARD_STORE_GLOBAL_OPS,
};

/* ESR_EUNKNOWN: the next command decides on what the store holds. */
static void unknown_outcome_reloads_before_the_next_command(void **state)
{
	struct bank_command open = {BANK_OPEN, 100, 0, 0, 1}, wd = {BANK_WITHDRAW, 60, 0, 0, 1};
	struct unsure u = {NULL, 0};
	esr_store *memory, *store;
	esr_runtime *rt;
	esr_result r;

	(void)state;
	assert_int_equal(esr_memory_store_open(&memory), ESR_OK);
	u.inner = memory;
	assert_int_equal(esr_store_create(&unsure_vtable, &u, &store), ESR_OK);
	rt = start_bank(store, 0); /* no retry could hide a stale state */
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-7", 6, &open, &r), ESR_OK);
	u.unknown = 1;
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-7", 6, &wd, &r), ESR_EUNKNOWN);
	assert_int_equal(r.appended, 0);
	/* The withdrawal was stored: 40 is left, and the state knows it. */
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-7", 6, &wd, &r), ESR_EREJECTED);
	assert_int_equal(r.rejection, BANK_INSUFFICIENT_FUNDS);
	assert_int_equal(r.version, 2);
	wd.amount = 40;
	assert_int_equal(esr_execute(rt, "BankAccount", "acct-7", 6, &wd, &r), ESR_OK);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.version, 3);
	assert_int_equal(stats_of(rt).conflicts, 0);
	assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
	esr_store_close(store);
	esr_store_close(memory);
}

/* --- passivation ------------------------------------------------------------------------- */

static void idle_actors_are_passivated_and_come_back(void **state)
{
	esr_runtime_config c = config(2);
	struct fixture *f;
	struct bank_command open = {BANK_OPEN, 10, 0, 0, 1}, dep = {BANK_DEPOSIT, 5, 0, 0, 1};
	esr_runtime_stats s;
	esr_result r;
	char id[16];
	int i, waited;

	(void)state;
	c.passivate_ms = 20;
	f = start_with(&c);
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof id, "p-%d", i);
		assert_int_equal(esr_execute(f->rt, "BankAccount", id, strlen(id), &open, &r), ESR_OK);
	}
	s = stats_of(f->rt); /* some may be evicted already on a slow machine */
	assert_int_equal(s.live_actors + s.passivations, 100);
	for (waited = 0; waited < 10000 && stats_of(f->rt).passivations < 100; waited += 10)
		sleep_ms(10);
	s = stats_of(f->rt);
	assert_int_equal(s.passivations, 100);
	assert_int_equal(s.live_actors, 0);
	/* reactivation replays the stream: the balance carries on */
	assert_int_equal(esr_execute(f->rt, "BankAccount", "p-7", 3, &dep, &r), ESR_OK);
	assert_int_equal(r.version, 2);
	assert_int_equal(esr_execute(f->rt, "BankAccount", "p-7", 3, &open, &r), ESR_EREJECTED);
	assert_int_equal(r.rejection, BANK_ALREADY_OPEN);
	s = stats_of(f->rt);
	assert_int_equal(s.activations, 101);
	assert_int_equal(s.live_actors, 1);
	finish(f);
}

/* Keeps many actors busy with short turns, each going idle in between. */
struct churn {
	esr_runtime *rt;
	int first, count;
	volatile int *stop;
	unsigned rounds;
};

static void *churn_actors(void *arg)
{
	static struct gate_cmd cmd = {NULL, 0};
	struct churn *c = arg;
	esr_submission subs[64];
	esr_ticket *t[64];
	char ids[64][16];
	int at = 0, i;

	while (!__atomic_load_n(c->stop, __ATOMIC_ACQUIRE)) {
		for (i = 0; i < 64; i++, at = (at + 1) % c->count) {
			int n = snprintf(ids[i], sizeof ids[i], "c-%d", c->first + at);
			subs[i] = (esr_submission){"Gate", ids[i], (size_t)n, &cmd, NULL, {NULL, 0}};
		}
		assert_int_equal(esr_submit_many(c->rt, subs, 64, t, NULL), ESR_OK);
		for (i = 0; i < 64; i++) {
			assert_int_equal(esr_ticket_wait(t[i], -1), ESR_OK);
			esr_ticket_release(t[i]);
		}
		c->rounds++;
	}
	return NULL;
}

/*
 * Actors that go idle while a sweep is under way are not idle for long: with
 * a passivation time far beyond the test's length, none is evicted however
 * many sweeps run meanwhile (one a second).
 */
static void sweeps_never_evict_recently_active_actors(void **state)
{
	enum { ACTORS = 100000, THREADS = 2, SWEEPS = 3 };
	esr_runtime_config c = config(2);
	struct fixture *f;
	struct churn ch[THREADS];
	pthread_t th[THREADS];
	volatile int stop = 0;
	unsigned i, touched = 0;

	(void)state;
	c.passivate_ms = 600000; /* ten minutes: the janitor sweeps every second */
	f = start_with(&c);
	for (i = 0; i < THREADS; i++) {
		ch[i] = (struct churn){f->rt, (int)i * ACTORS / THREADS, ACTORS / THREADS, &stop, 0};
		pthread_create(&th[i], NULL, churn_actors, &ch[i]);
	}
	sleep_ms(SWEEPS * 1000 + 500);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < THREADS; i++) /* actors touched: all of them, unless slow */
		touched += ch[i].rounds * 64 < (unsigned)ch[i].count ? ch[i].rounds * 64
		                                                     : (unsigned)ch[i].count;
	print_message("    %u rounds of 64 commands, %llu passivations\n",
	              ch[0].rounds + ch[1].rounds,
	              (unsigned long long)stats_of(f->rt).passivations);
	assert_int_equal(stats_of(f->rt).passivations, 0);
	assert_int_equal(stats_of(f->rt).live_actors, touched);
	finish(f);
}


/* --- appends completed later --------------------------------------------------------------- */

static void appends_completed_later_suspend_and_resume_actors(void **state)
{
	esr_runtime_config c = config(2);
	struct bank_command open = {BANK_OPEN, 1000, 0, 0, 1}, dep = {BANK_DEPOSIT, 1, 0, 0, 1};
	esr_store *memory, *async;
	esr_runtime *rt;
	esr_ticket *t[2000];
	esr_result r;
	char id[16];
	int i;

	(void)state;
	assert_int_equal(esr_memory_store_open(&memory), ESR_OK);
	assert_int_equal(async_store_open(memory, 0, &async), ESR_OK);
	assert_int_equal(esr_runtime_start(&c, async, &rt), ESR_OK);
	assert_int_equal(esr_runtime_register(rt, &bank_type), ESR_OK);
	for (i = 0; i < 20; i++) {
		snprintf(id, sizeof id, "a-%d", i);
		assert_int_equal(esr_execute(rt, "BankAccount", id, strlen(id), &open, &r), ESR_OK);
		assert_int_equal(r.version, 1);
	}
	for (i = 0; i < 2000; i++) {
		snprintf(id, sizeof id, "a-%d", i % 20);
		assert_int_equal(esr_submit(rt, "BankAccount", id, strlen(id), &dep, &t[i]), ESR_OK);
	}
	for (i = 0; i < 2000; i++) {
		esr_status st;
		assert_int_equal(esr_ticket_wait(t[i], -1), ESR_OK);
		assert_int_equal(esr_ticket_result(t[i], &st, &r), ESR_OK);
		assert_int_equal(st, ESR_OK);
		assert_int_equal(r.version, (uint64_t)(i / 20) + 2); /* in order, per account */
		esr_ticket_release(t[i]);
	}
	for (i = 0; i < 20; i++) {
		esr_stream_id sid;
		uint64_t v;
		snprintf(id, sizeof id, "a-%d", i);
		sid = (esr_stream_id){"BankAccount", id, strlen(id)};
		assert_int_equal(esr_store_version(memory, &sid, &v), ESR_OK);
		assert_int_equal(v, 101);
	}
	assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
	esr_store_close(async);
	esr_store_close(memory);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(config_defaults_and_checks_name_the_field),
		cmocka_unit_test(config_from_environment),
		cmocka_unit_test(start_refuses_bad_config),
		cmocka_unit_test(submit_refuses_bad_input_without_touching_actors),
		cmocka_unit_test(null_commands_reach_the_handler),
		cmocka_unit_test(execute_runs_the_handler_on_actor_state),
		cmocka_unit_test(one_submitter_runs_in_submission_order),
		cmocka_unit_test(ticket_wait_times_out_and_poll_reports),
		cmocka_unit_test(callbacks_fire_once_per_command),
		cmocka_unit_test(submit_many_stops_at_the_first_refusal),
		cmocka_unit_test(submit_many_cb_hands_each_command_its_ctx),
		cmocka_unit_test(full_mailbox_fails_fast_with_ebusy),
		cmocka_unit_test(full_mailbox_blocks_the_submitter_until_room),
		cmocka_unit_test(stop_releases_blocked_submitters),
		cmocka_unit_test(stop_drains_while_submitters_run),
		cmocka_unit_test(racing_submits_activate_one_actor),
		cmocka_unit_test(idle_actors_are_passivated_and_come_back),
		cmocka_unit_test(sweeps_never_evict_recently_active_actors),
		cmocka_unit_test(appends_completed_later_suspend_and_resume_actors),
		cmocka_unit_test(completed_commands_leave_room_at_once),
		cmocka_unit_test(exhausted_conflict_catches_up_before_the_next_command),
		cmocka_unit_test(exhaustion_with_retries_reports_and_recovers),
		cmocka_unit_test(most_retries_all_conflicting_end_in_conflict),
		cmocka_unit_test(unknown_outcome_reloads_before_the_next_command),
	};
	return cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
}
