/*
 * tests/runtime/test_turn.c: an actor's turn, several queued commands decided
 * one after another and appended as one (runtime/turn.h). Commands to one
 * account are submitted with one esr_submit_many, which claims their slots
 * and pushes them in one step before the actor is scheduled, so the worker
 * finds them all queued and decides them in one turn.
 *  - each command keeps its own outcome: its version range, its rejection
 *    (decided on the state the commands before it left), all in one append;
 *  - a conflict re-decides the whole turn on the caught-up state;
 *  - exhausted retries and a failed append fail the commands that depended on
 *    the append, not a rejection decided on the state before the turn;
 *  - a command that does not fit the turn's limits (ESR_APPEND_MAX events, the
 *    store's byte limit) starts the next turn; one over them alone gets its
 *    own ESR_ETOOBIG and nothing else fails;
 *  - on a store that completes later, commands queued meanwhile go in one
 *    append, each submitter's in order;
 *  - two runtimes on one account (two writers): every accepted command stored
 *    once, the account never overdrawn.
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
#include "store/store_internal.h" /* a small turn byte limit */
#include "wrap_store.h"

enum { MAX_TURN = 16 };

struct outcome {
	esr_status st;
	esr_result r;
};

static esr_runtime *start(esr_store *store, unsigned max_retries)
{
	esr_runtime_config c;
	esr_runtime *rt;

	esr_runtime_config_default(&c);
	c.workers = 1;
	c.max_retries = max_retries;
	c.passivate_ms = 0;
	assert_int_equal(esr_runtime_start(&c, store, &rt), ESR_OK);
	assert_int_equal(esr_runtime_register(rt, &bank_type), ESR_OK);
	return rt;
}

/* Submit cmds[0..n) to account "t" in one call and wait for every outcome. */
static void run_turn(esr_runtime *rt, const struct bank_command *cmds, size_t n,
                     struct outcome *out)
{
	esr_submission s[MAX_TURN];
	esr_ticket *t[MAX_TURN];
	size_t i, accepted = 0;

	assert_true(n <= MAX_TURN);
	for (i = 0; i < n; i++)
		s[i] = (esr_submission){bank_type.name, "t", 1, &cmds[i], NULL, {NULL, 0}};
	assert_int_equal(esr_submit_many(rt, s, n, t, &accepted), ESR_OK);
	assert_int_equal(accepted, n);
	for (i = 0; i < n; i++) {
		assert_int_equal(esr_ticket_wait(t[i], 10000), ESR_OK);
		assert_int_equal(esr_ticket_result(t[i], &out[i].st, &out[i].r), ESR_OK);
		esr_ticket_release(t[i]);
	}
}

static uint64_t appends(esr_runtime *rt)
{
	esr_runtime_stats st;

	assert_int_equal(esr_runtime_stats_get(rt, &st), ESR_OK);
	return st.appends;
}

static int64_t stored_balance(esr_store *s, uint64_t *version)
{
	struct bank_state st;
	esr_repository *repo;

	assert_int_equal(esr_repository_open(s, NULL, &repo), ESR_OK);
	assert_int_equal(esr_repository_register(repo, &bank_type), ESR_OK);
	assert_int_equal(esr_repository_load(repo, bank_type.name, "t", 1, &st, sizeof st, version),
	                 ESR_OK);
	esr_repository_close(repo);
	return st.balance;
}

static void expect(const struct outcome *o, esr_status st, uint64_t version, uint32_t appended)
{
	assert_int_equal(o->st, st);
	assert_int_equal(o->r.version, version);
	assert_int_equal(o->r.appended, appended);
}

/* --- 1. every command its own outcome, one append ----------------------------------- */

static void own_outcomes_one_append(void **state)
{
	esr_store *s;
	esr_runtime *rt;
	struct bank_command c[] = {
		{.kind = BANK_OPEN},
		{.kind = BANK_DEPOSIT, .amount = 100},
		{.kind = BANK_WITHDRAW, .amount = 300}, /* over the 100 just deposited */
		{.kind = BANK_WITHDRAW, .amount = 50},
		{.kind = BANK_NOOP},
		{.kind = BANK_MULTI, .amount = 10, .count = 3},
		{.kind = BANK_WITHDRAW, .amount = 80}, /* only with the multi's 30 */
	};
	struct outcome o[7];
	uint64_t v;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	rt = start(s, 5);
	run_turn(rt, c, 7, o);
	expect(&o[0], ESR_OK, 1, 1);
	expect(&o[1], ESR_OK, 2, 1);
	expect(&o[2], ESR_EREJECTED, 2, 0);
	assert_int_equal(o[2].r.rejection, BANK_INSUFFICIENT_FUNDS);
	expect(&o[3], ESR_OK, 3, 1);
	expect(&o[4], ESR_OK, 3, 0);
	expect(&o[5], ESR_OK, 6, 3);
	expect(&o[6], ESR_OK, 7, 1);
	assert_int_equal(appends(rt), 1);
	assert_int_equal(stored_balance(s, &v), 0);
	assert_int_equal(v, 7);
	esr_runtime_destroy(rt);
	esr_store_close(s);
}

/* --- 2. a conflict re-decides the whole turn -------------------------------------------- */

static void conflict_redecides_the_turn(void **state)
{
	struct bank_command open = {.kind = BANK_OPEN};
	struct bank_command c[] = {
		{.kind = BANK_DEPOSIT, .amount = 10},
		{.kind = BANK_WITHDRAW, .amount = 11}, /* needs the other writer's 1 */
	};
	struct wrap w = {0};
	struct outcome o[2];
	esr_store *s;
	esr_runtime *rt;
	uint64_t v;

	(void)state;
	assert_int_equal(esr_memory_store_open(&w.inner), ESR_OK);
	assert_int_equal(wrap_store_open(&w, &s), ESR_OK);
	rt = start(s, 5);
	run_turn(rt, &open, 1, o);
	assert_int_equal(o[0].st, ESR_OK);
	w.interfere = 1; /* a deposit of 1 lands before the turn's append */
	run_turn(rt, c, 2, o);
	/* Attempt 1, on balance 0: the deposit, the withdrawal refused; its
	 * append conflicts. Attempt 2, on balance 1: both go in one append. */
	expect(&o[0], ESR_OK, 3, 1);
	expect(&o[1], ESR_OK, 4, 1);
	assert_int_equal(o[0].r.attempts, 2);
	assert_int_equal(o[1].r.attempts, 2);
	assert_int_equal(w.appends, 3); /* open, the conflicting one, the retry */
	assert_int_equal(stored_balance(w.inner, &v), 0);
	assert_int_equal(v, 4);
	esr_runtime_destroy(rt);
	esr_store_close(s);
	esr_store_close(w.inner);
}

/* --- 3. failures fail the commands that depended on the append ----------------------------- */

static void exhausted_and_failed_appends(void **state)
{
	struct bank_command open = {.kind = BANK_OPEN};
	struct bank_command c[] = {
		{.kind = BANK_WITHDRAW, .amount = 5},  /* refused on the state before the turn */
		{.kind = BANK_DEPOSIT, .amount = 10},
		{.kind = BANK_WITHDRAW, .amount = 50}, /* refused, after the deposit */
		{.kind = BANK_NOOP},                   /* accepted, after the deposit */
	};
	struct wrap w = {0};
	struct outcome o[4];
	esr_store *s;
	esr_runtime *rt;
	uint64_t v;
	unsigned i;

	(void)state;
	assert_int_equal(esr_memory_store_open(&w.inner), ESR_OK);
	assert_int_equal(wrap_store_open(&w, &s), ESR_OK);
	rt = start(s, 2);
	run_turn(rt, &open, 1, o);
	w.interfere = 100; /* every attempt loses */
	run_turn(rt, c, 4, o);
	assert_int_equal(o[0].st, ESR_EREJECTED);
	assert_int_equal(o[0].r.rejection, BANK_INSUFFICIENT_FUNDS);
	for (i = 1; i < 4; i++) {
		assert_int_equal(o[i].st, ESR_ECONFLICT);
		assert_int_equal(o[i].r.appended, 0);
		assert_int_equal(o[i].r.attempts, 3);
		assert_int_equal(o[i].r.conflict.attempts, 3);
		assert_int_equal(o[i].r.conflict.actual, o[i].r.conflict.expected + 1);
	}
	w.interfere = 0;
	esr_store_version(w.inner, &(esr_stream_id){bank_type.name, "t", 1}, &v);
	w.fail = 1;
	w.fail_with = ESR_EIO;
	run_turn(rt, c, 4, o);
	assert_int_equal(o[0].st, ESR_EREJECTED);
	for (i = 1; i < 4; i++) {
		assert_int_equal(o[i].st, ESR_EIO);
		assert_int_equal(o[i].r.appended, 0);
	}
	/* Nothing of it stored; the actor goes on from where the store is. */
	run_turn(rt, &c[1], 1, o);
	expect(&o[0], ESR_OK, v + 1, 1);
	esr_runtime_destroy(rt);
	esr_store_close(s);
	esr_store_close(w.inner);
}

/* --- 4. limits: what does not fit starts the next turn ------------------------------------ */

static void limits_split_turns(void **state)
{
	struct bank_command big[] = {
		{.kind = BANK_MULTI, .amount = 1, .count = 600},
		{.kind = BANK_MULTI, .amount = 1, .count = 600}, /* 1200 > ESR_APPEND_MAX */
	};
	struct bank_command alone[] = {
		{.kind = BANK_OPEN},
		{.kind = BANK_MULTI, .amount = 1, .count = ESR_APPEND_MAX + 1},
		{.kind = BANK_DEPOSIT, .amount = 1},
	};
	struct bank_command small[10];
	struct outcome o[10];
	esr_store *s;
	esr_runtime *rt;
	uint64_t before, v;
	unsigned i;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	rt = start(s, 5);
	run_turn(rt, alone, 3, o);
	expect(&o[0], ESR_OK, 1, 1);
	assert_int_equal(o[1].st, ESR_ETOOBIG);
	expect(&o[2], ESR_OK, 2, 1);
	before = appends(rt);
	run_turn(rt, big, 2, o);
	expect(&o[0], ESR_OK, 602, 600);
	expect(&o[1], ESR_OK, 1202, 600);
	assert_int_equal(appends(rt) - before, 2);
	/* 16-byte payloads, 64 bytes a turn: 4 deposits per append. */
	esr__store_set_turn_bytes(s, 4 * sizeof(struct bank_payload));
	for (i = 0; i < 10; i++)
		small[i] = (struct bank_command){.kind = BANK_DEPOSIT, .amount = 1};
	before = appends(rt);
	run_turn(rt, small, 10, o);
	for (i = 0; i < 10; i++)
		expect(&o[i], ESR_OK, 1203 + i, 1);
	assert_int_equal(appends(rt) - before, 3);
	assert_int_equal(stored_balance(s, &v), 1 + 1200 + 10);
	assert_int_equal(v, 1212);
	esr_runtime_destroy(rt);
	esr_store_close(s);
}

/* --- 5. a store that completes later batches what queues meanwhile ---------------------------- */

static unsigned completed_in_order, completed_out_of_order;

static void check_order(void *ctx, esr_status st, const esr_result *r)
{
	uint64_t *last = ctx; /* the submitter's last version seen */

	if (st == ESR_OK && r->version > *last)
		completed_in_order++;
	else
		completed_out_of_order++;
	*last = r->version;
}

static void later_completions_batch(void **state)
{
	enum { RUNS = 40, PER_RUN = 50 };
	struct bank_command dep = {.kind = BANK_DEPOSIT, .amount = 1}, open = {.kind = BANK_OPEN};
	esr_submission s[PER_RUN];
	struct outcome o;
	esr_store *mem, *store;
	esr_runtime *rt;
	uint64_t last = 0, v;
	size_t accepted;
	unsigned i;

	(void)state;
	assert_int_equal(esr_memory_store_open(&mem), ESR_OK);
	assert_int_equal(async_store_open(mem, 0, &store), ESR_OK);
	rt = start(store, 5);
	run_turn(rt, &open, 1, &o);
	last = o.r.version;
	for (i = 0; i < PER_RUN; i++)
		s[i] = (esr_submission){bank_type.name, "t", 1, &dep, &last, {NULL, 0}};
	for (i = 0; i < RUNS; i++) {
		assert_int_equal(esr_submit_many_cb(rt, s, PER_RUN, check_order, &accepted), ESR_OK);
		assert_int_equal(accepted, PER_RUN);
	}
	esr_runtime_stop(rt); /* drains */
	assert_int_equal(completed_out_of_order, 0);
	assert_int_equal(completed_in_order, RUNS * PER_RUN);
	print_message("turn: %u commands in %llu appends\n", RUNS * PER_RUN,
	              (unsigned long long)appends(rt) - 1);
	assert_true(appends(rt) - 1 <= RUNS * PER_RUN / 2);
	assert_int_equal(stored_balance(mem, &v), RUNS * PER_RUN);
	assert_int_equal(v, 1 + RUNS * PER_RUN);
	esr_runtime_destroy(rt);
	esr_store_close(store);
	esr_store_close(mem);
}

/* --- 6. two runtimes on one account: turns under a real second writer -------------------- */

enum { RACE_RUNS = 200, RACE_PER_RUN = 16 };

static pthread_barrier_t race_start;

struct racer {
	esr_runtime *rt;
	unsigned seed;
	int64_t delta;  /* sum of the accepted commands' effects */
	unsigned accepted, failed;
};

static void *race_turns(void *arg)
{
	struct racer *me = arg;
	struct bank_command c[RACE_PER_RUN];
	struct outcome o[RACE_PER_RUN];
	unsigned i, k;

	pthread_barrier_wait(&race_start); /* both writers at once */
	for (i = 0; i < RACE_RUNS; i++) {
		for (k = 0; k < RACE_PER_RUN; k++) {
			me->seed = me->seed * 1103515245u + 12345u;
			c[k] = (struct bank_command){(me->seed >> 16) % 3 ? BANK_WITHDRAW : BANK_DEPOSIT,
			                             1 + (me->seed >> 8) % 60, 0, 0, 0};
		}
		run_turn(me->rt, c, RACE_PER_RUN, o);
		for (k = 0; k < RACE_PER_RUN; k++) {
			if (o[k].st == ESR_OK) {
				me->accepted++;
				me->delta += c[k].kind == BANK_DEPOSIT ? c[k].amount : -c[k].amount;
			} else if (o[k].st != ESR_EREJECTED && o[k].st != ESR_ECONFLICT) {
				me->failed++;
			}
		}
	}
	return NULL;
}

/*
 * Two optimistic runtimes (two writers, as two processes on one store would
 * be) submit turns of mixed deposits and withdrawals to one account. Each
 * turn's append races the other runtime's: the loser catches up and decides
 * its whole turn again. The stored stream must be exactly the accepted
 * commands (balance equals their sum, one event each) and never overdrawn.
 */
static void two_runtimes_race_turns(void **state)
{
	struct bank_command open = {.kind = BANK_OPEN}, seed = {.kind = BANK_DEPOSIT, .amount = 500};
	struct racer r[2] = {{.seed = 1}, {.seed = 2}};
	struct bank_state st;
	esr_runtime_stats stats;
	esr_repository *repo;
	struct outcome o;
	pthread_t t[2];
	esr_store *s;
	uint64_t v, conflicts = 0;
	unsigned i, round;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	r[0].rt = start(s, 1000);
	r[1].rt = start(s, 1000);
	run_turn(r[0].rt, &open, 1, &o);
	assert_int_equal(o.st, ESR_OK);
	run_turn(r[0].rt, &seed, 1, &o);
	assert_int_equal(o.st, ESR_OK);
	/* Two threads on two cores may still take turns rather than race:
	 * rounds go on (at most 5) until the runtimes saw a conflict. */
	pthread_barrier_init(&race_start, NULL, 2);
	for (round = 0; round < 5 && conflicts == 0; round++) {
		for (i = 0; i < 2; i++)
			assert_int_equal(pthread_create(&t[i], NULL, race_turns, &r[i]), 0);
		for (i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		for (conflicts = 0, i = 0; i < 2; i++) {
			assert_int_equal(esr_runtime_stats_get(r[i].rt, &stats), ESR_OK);
			conflicts += stats.conflicts;
		}
	}
	pthread_barrier_destroy(&race_start);
	for (i = 0; i < 2; i++) {
		assert_int_equal(r[i].failed, 0);
		esr_runtime_destroy(r[i].rt);
	}
	assert_int_equal(esr_repository_open(s, NULL, &repo), ESR_OK);
	assert_int_equal(esr_repository_register(repo, &bank_type), ESR_OK);
	assert_int_equal(esr_repository_load(repo, bank_type.name, "t", 1, &st, sizeof st, &v),
	                 ESR_OK);
	esr_repository_close(repo);
	print_message("turns: %u + %u accepted, %llu conflicts, %u rounds\n", r[0].accepted,
	              r[1].accepted, (unsigned long long)conflicts, round);
	assert_int_equal(v, 2 + r[0].accepted + r[1].accepted);
	assert_int_equal(st.balance, 500 + r[0].delta + r[1].delta);
	assert_true(st.lowest >= 0);
	assert_true(conflicts > 0); /* the two writers did race */
	esr_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(own_outcomes_one_append),
		cmocka_unit_test(conflict_redecides_the_turn),
		cmocka_unit_test(exhausted_and_failed_appends),
		cmocka_unit_test(limits_split_turns),
		cmocka_unit_test(later_completions_batch),
		cmocka_unit_test(two_runtimes_race_turns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
