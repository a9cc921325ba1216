/*
 * tests/runtime/test_query.c: queries read an actor's state in its own turn.
 * A query sees exactly the commands submitted before it (never one after),
 * from one thread and from many, on a store that completes inline and on
 * one that completes later; it appends nothing and is counted apart; bad
 * arguments, unknown types and a stopped runtime are refused; a second
 * writer's appends show once the actor catches up.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "async_store.h"
#include "bank.h"
#include "esr/esr.h"

static esr_runtime *start(esr_store *store, esr_strategy strategy, unsigned workers)
{
	esr_runtime_config c;
	esr_runtime *rt;

	esr_runtime_config_default(&c);
	c.workers = workers;
	c.strategy = strategy;
	c.passivate_ms = 0;
	assert_int_equal(esr_runtime_start(&c, store, &rt), ESR_OK);
	assert_int_equal(esr_runtime_register(rt, &bank_type), ESR_OK);
	return rt;
}

/* What a query copies out of the state. */
struct seen {
	int64_t balance;
	uint64_t version;
	uint32_t events;
	int calls;
};

static int read_balance(void *ctx, const void *state, uint64_t version)
{
	const struct bank_state *s = state;
	struct seen *out = ctx;

	out->balance = s->balance;
	out->version = version;
	out->events = s->events;
	out->calls++;
	return s->open ? 0 : BANK_NOT_OPEN;
}

static void ignore(void *ctx, esr_status st, const esr_result *r)
{
	(void)ctx;
	(void)st;
	(void)r;
}

static void open_account(esr_runtime *rt, const char *acct, int64_t amount)
{
	struct bank_command c = {.kind = BANK_OPEN, .amount = amount};

	assert_int_equal(esr_execute(rt, "BankAccount", acct, strlen(acct), &c, NULL), ESR_OK);
}

/* Rounds of k deposits submitted without waiting, then a query: each query
 * sees the deposits before it and none after, though they sit in one
 * mailbox and a turn would otherwise take them all. */
static void sees_exactly_what_came_before(esr_store *store, unsigned workers, const char *acct)
{
	enum { ROUNDS = 300 };
	static struct bank_command dep = {.kind = BANK_DEPOSIT, .amount = 3};
	esr_runtime *rt = start(store, ESR_OPTIMISTIC, workers);
	struct seen seen[ROUNDS];
	esr_ticket *t[ROUNDS];
	int64_t expect = 100;
	uint64_t version = 1;
	unsigned i, k;
	esr_status st;
	esr_result r;

	open_account(rt, acct, 100);
	memset(seen, 0, sizeof seen);
	for (i = 0; i < ROUNDS; i++) {
		for (k = 0; k < i % 7; k++)
			assert_int_equal(esr_submit_cb(rt, "BankAccount", acct, strlen(acct), &dep, ignore, NULL),
			                 ESR_OK);
		assert_int_equal(esr_query(rt, "BankAccount", acct, strlen(acct), read_balance, &seen[i], &t[i]),
		                 ESR_OK);
	}
	for (i = 0; i < ROUNDS; i++) {
		expect += 3 * (i % 7);
		version += i % 7;
		assert_int_equal(esr_ticket_wait(t[i], 10000), ESR_OK);
		assert_int_equal(esr_ticket_result(t[i], &st, &r), ESR_OK);
		assert_int_equal(st, ESR_OK);
		assert_int_equal(seen[i].calls, 1);
		assert_int_equal(seen[i].balance, expect);
		assert_int_equal(seen[i].version, version);
		assert_int_equal(r.version, version);
		assert_int_equal(r.appended, 0);
		esr_ticket_release(t[i]);
	}
	esr_runtime_destroy(rt);
}

static void a_query_sees_the_commands_before_it(void **state)
{
	esr_store *s;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	sees_exactly_what_came_before(s, 1, "q1");
	sees_exactly_what_came_before(s, 2, "q2");
	esr_store_close(s);
}

static void a_query_waits_for_an_append_in_flight(void **state)
{
	esr_store *inner, *s;

	(void)state;
	assert_int_equal(esr_memory_store_open(&inner), ESR_OK);
	assert_int_equal(async_store_open(inner, 1, &s), ESR_OK);
	sees_exactly_what_came_before(s, 2, "q3");
	esr_store_close(s);
}

/* Many threads each deposit, then query: each reads its own writes (the
 * balance covers at least its own deposits so far) and the versions it
 * reads never go back. */
struct reader {
	esr_runtime *rt;
	int id;
	int failures;
};

static void *deposit_and_read(void *arg)
{
	enum { N = 400 };
	struct reader *me = arg;
	struct bank_command dep = {.kind = BANK_DEPOSIT, .amount = 1};
	uint64_t last = 0;
	struct seen seen;
	esr_result r;
	int i;

	for (i = 1; i <= N; i++) {
		if (esr_execute(me->rt, "BankAccount", "shared", 6, &dep, &r) != ESR_OK) {
			me->failures++;
			continue;
		}
		memset(&seen, 0, sizeof seen);
		if (esr_query_execute(me->rt, "BankAccount", "shared", 6, read_balance, &seen, NULL) !=
		        ESR_OK ||
		    seen.version < r.version || seen.version < last || seen.balance < i)
			me->failures++;
		last = seen.version;
	}
	return NULL;
}

static void many_threads_read_their_writes(void **state)
{
	enum { THREADS = 4 };
	struct reader rd[THREADS];
	pthread_t th[THREADS];
	esr_runtime_stats before, after;
	esr_store *s;
	esr_runtime *rt;
	struct seen seen = {0};
	int i;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	rt = start(s, ESR_OPTIMISTIC, 2);
	open_account(rt, "shared", 0);
	assert_int_equal(esr_runtime_stats_get(rt, &before), ESR_OK);
	for (i = 0; i < THREADS; i++) {
		rd[i] = (struct reader){rt, i, 0};
		assert_int_equal(pthread_create(&th[i], NULL, deposit_and_read, &rd[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(rd[i].failures, 0);
	}
	assert_int_equal(esr_query_execute(rt, "BankAccount", "shared", 6, read_balance, &seen, NULL),
	                 ESR_OK);
	assert_int_equal(seen.balance, THREADS * 400);
	assert_int_equal(seen.version, THREADS * 400 + 1);
	/* Queries are counted apart from commands. */
	assert_int_equal(esr_runtime_stats_get(rt, &after), ESR_OK);
	assert_int_equal(after.submitted - before.submitted, THREADS * 400);
	assert_int_equal(after.completed - before.completed, THREADS * 400);
	assert_int_equal(after.queries_submitted - before.queries_submitted, THREADS * 400 + 1);
	assert_int_equal(after.queries - before.queries, THREADS * 400 + 1);
	assert_int_equal(after.appends - before.appends <= THREADS * 400, 1);
	esr_runtime_destroy(rt);
	esr_store_close(s);
}

/* A query of an aggregate with no events reads init()'s state at version 0,
 * creates nothing in the store, and a nonzero answer is a rejection. */
static void a_query_of_an_empty_stream_appends_nothing(void **state)
{
	esr_stream_id sid = {"BankAccount", "nobody", 6};
	struct seen seen = {0};
	esr_result r;
	esr_store *s;
	esr_runtime *rt;
	uint64_t v = 99, head = 99;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	rt = start(s, ESR_UNCHECKED, 1);
	assert_int_equal(esr_query_execute(rt, "BankAccount", "nobody", 6, read_balance, &seen, &r),
	                 ESR_EREJECTED);
	assert_int_equal(r.rejection, BANK_NOT_OPEN);
	assert_int_equal(r.version, 0);
	assert_int_equal(seen.calls, 1);
	assert_int_equal(seen.version, 0);
	assert_int_equal(esr_store_version(s, &sid, &v), ESR_OK);
	assert_int_equal(v, 0);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, 0);
	esr_runtime_destroy(rt);
	esr_store_close(s);
}

/* Callback form: done() runs after read() returned, once. */
struct cb_box {
	struct seen seen;
	int done_calls, seen_at_done;
	esr_status st;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void query_done(void *ctx, esr_status st, const esr_result *r)
{
	struct cb_box *b = ctx;

	(void)r;
	pthread_mutex_lock(&b->lock);
	b->st = st;
	b->seen_at_done = b->seen.calls;
	b->done_calls++;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static void the_callback_form_completes_after_the_read(void **state)
{
	struct cb_box b = {.done_calls = 0};
	esr_store *s;
	esr_runtime *rt;

	(void)state;
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	rt = start(s, ESR_OPTIMISTIC, 2);
	open_account(rt, "cb", 42);
	assert_int_equal(esr_query_cb(rt, "BankAccount", "cb", 2, read_balance, &b.seen, query_done,
	                              &b),
	                 ESR_OK);
	pthread_mutex_lock(&b.lock);
	while (b.done_calls == 0)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);
	esr_runtime_destroy(rt); /* drains: a second done() would show */
	assert_int_equal(b.done_calls, 1);
	assert_int_equal(b.seen_at_done, 1);
	assert_int_equal(b.st, ESR_OK);
	assert_int_equal(b.seen.balance, 42);
	esr_store_close(s);
	pthread_mutex_destroy(&b.lock);
	pthread_cond_destroy(&b.cond);
}

static void bad_queries_are_refused(void **state)
{
	char long_id[ESR_ID_MAX + 2];
	struct seen seen = {0};
	esr_ticket *t = NULL;
	esr_runtime_stats st;
	esr_store *s;
	esr_runtime *rt;

	(void)state;
	memset(long_id, 'x', sizeof long_id);
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	rt = start(s, ESR_OPTIMISTIC, 1);
	assert_int_equal(esr_query(NULL, "BankAccount", "a", 1, read_balance, &seen, &t), ESR_EINVAL);
	assert_int_equal(esr_query(rt, "BankAccount", "a", 1, NULL, &seen, &t), ESR_EINVAL);
	assert_int_equal(esr_query(rt, "BankAccount", "a", 1, read_balance, &seen, NULL), ESR_EINVAL);
	assert_int_equal(esr_query(rt, "BankAccount", NULL, 1, read_balance, &seen, &t), ESR_EINVAL);
	assert_int_equal(esr_query(rt, "BankAccount", "a", 0, read_balance, &seen, &t), ESR_EINVAL);
	assert_int_equal(esr_query(rt, "BankAccount", long_id, sizeof long_id, read_balance, &seen, &t),
	                 ESR_ETOOBIG);
	assert_int_equal(esr_query(rt, "Nope", "a", 1, read_balance, &seen, &t), ESR_ENOTYPE);
	assert_int_equal(esr_query_cb(rt, "BankAccount", "a", 1, read_balance, &seen, NULL, NULL),
	                 ESR_EINVAL);
	assert_int_equal(esr_query_cb(rt, "BankAccount", "a", 1, NULL, &seen, ignore, NULL),
	                 ESR_EINVAL);
	assert_int_equal(esr_runtime_stats_get(rt, &st), ESR_OK);
	assert_int_equal(st.queries_submitted, 0);
	assert_int_equal(st.live_actors, 0);
	assert_int_equal(esr_runtime_stop(rt), ESR_OK);
	assert_int_equal(esr_query(rt, "BankAccount", "a", 1, read_balance, &seen, &t), ESR_ESHUTDOWN);
	assert_int_equal(esr_query_execute(rt, "BankAccount", "a", 1, read_balance, &seen, NULL),
	                 ESR_ESHUTDOWN);
	assert_null(t);
	assert_int_equal(seen.calls, 0);
	esr_runtime_destroy(rt);
	esr_store_close(s);
}

/* Another runtime on the same store (a second writer): a query reads the
 * actor's own state, which catches up at its next command. */
static void a_second_writer_shows_after_catch_up(void **state)
{
	struct bank_command dep = {.kind = BANK_DEPOSIT, .amount = 10};
	struct seen seen = {0};
	esr_runtime *a, *b;
	esr_store *s;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	a = start(s, ESR_OPTIMISTIC, 1);
	b = start(s, ESR_OPTIMISTIC, 1);
	open_account(a, "two", 0);
	assert_int_equal(esr_execute(b, "BankAccount", "two", 3, &dep, NULL), ESR_OK);
	assert_int_equal(esr_query_execute(a, "BankAccount", "two", 3, read_balance, &seen, NULL),
	                 ESR_OK);
	assert_int_equal(seen.version, 1); /* a's actor has not seen b's deposit */
	assert_int_equal(esr_execute(a, "BankAccount", "two", 3, &dep, NULL), ESR_OK);
	assert_int_equal(esr_query_execute(a, "BankAccount", "two", 3, read_balance, &seen, NULL),
	                 ESR_OK);
	assert_int_equal(seen.version, 3);
	assert_int_equal(seen.balance, 20);
	esr_runtime_destroy(a);
	esr_runtime_destroy(b);
	esr_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_query_sees_the_commands_before_it),
		cmocka_unit_test(a_query_waits_for_an_append_in_flight),
		cmocka_unit_test(many_threads_read_their_writes),
		cmocka_unit_test(a_query_of_an_empty_stream_appends_nothing),
		cmocka_unit_test(the_callback_form_completes_after_the_read),
		cmocka_unit_test(bad_queries_are_refused),
		cmocka_unit_test(a_second_writer_shows_after_catch_up),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
