/*
 * tests/runtime/test_command_ids.c: a command id makes a resubmitted command
 * take effect once, through every way in: submit (one, batch, callback),
 * execute, references, the repository. Duplicates sent after completion,
 * inside one turn, racing in one runtime and across two runtimes on one
 * store, under both strategies; a rejection records nothing; a lost reply
 * (ESR_EUNKNOWN) is settled by the id; bad ids are refused and store nothing.
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
#include "wrap_store.h"

static esr_runtime *start(esr_store *store, esr_strategy strategy, unsigned workers)
{
	esr_runtime_config c;
	esr_runtime *rt;

	esr_runtime_config_default(&c);
	c.workers = workers;
	c.strategy = strategy;
	c.max_retries = 50;
	c.passivate_ms = 0;
	assert_int_equal(esr_runtime_start(&c, store, &rt), ESR_OK);
	assert_int_equal(esr_runtime_register(rt, &bank_type), ESR_OK);
	return rt;
}

static esr_command_id cid(const char *text)
{
	return (esr_command_id){text, strlen(text)};
}

static esr_status run(esr_runtime *rt, const char *acct, enum bank_kind kind, int64_t amount,
                      const char *id, esr_result *r)
{
	struct bank_command c = {.kind = kind, .amount = amount};
	esr_command_id k = id ? cid(id) : (esr_command_id){NULL, 0};

	return esr_execute_id(rt, "BankAccount", acct, strlen(acct), &c, id ? &k : NULL, r);
}

static uint64_t version_of(esr_store *s, const char *acct)
{
	esr_stream_id sid = {"BankAccount", acct, strlen(acct)};
	uint64_t v = 12345;

	assert_int_equal(esr_store_version(s, &sid, &v), ESR_OK);
	return v;
}

static esr_status fold(void *ctx, const esr_recorded_event *rec)
{
	bank_apply(ctx, &rec->event);
	return ESR_OK;
}

static int64_t balance_of(esr_store *s, const char *acct)
{
	esr_stream_id sid = {"BankAccount", acct, strlen(acct)};
	struct bank_state st;

	memset(&st, 0, sizeof st);
	assert_int_equal(esr_store_read(s, &sid, 0, fold, &st), ESR_OK);
	return st.balance;
}

static void a_resubmission_takes_effect_once(void **state)
{
	esr_strategy strategies[] = {ESR_OPTIMISTIC, ESR_UNCHECKED};
	unsigned i;

	(void)state;
	for (i = 0; i < 2; i++) {
		esr_store *s;
		esr_runtime *rt;
		esr_result r, again;

		assert_int_equal(esr_memory_store_open(&s), ESR_OK);
		rt = start(s, strategies[i], 2);
		assert_int_equal(run(rt, "a", BANK_OPEN, 0, "open-a", &r), ESR_OK);
		assert_int_equal(run(rt, "a", BANK_MULTI, 0, NULL, &r), ESR_OK); /* no id: 0 events */
		assert_int_equal(run(rt, "a", BANK_DEPOSIT, 70, "dep-1", &r), ESR_OK);
		assert_int_equal(r.duplicate, 0);
		assert_int_equal(r.version, 2);
		assert_int_equal(run(rt, "a", BANK_DEPOSIT, 70, "dep-1", &again), ESR_OK);
		assert_int_equal(again.duplicate, 1);
		assert_int_equal(again.version, 2);
		assert_int_equal(again.appended, 1);
		assert_int_equal(run(rt, "a", BANK_OPEN, 0, "open-a", &again), ESR_OK);
		assert_int_equal(again.duplicate, 1);
		assert_int_equal(again.version, 1);
		/* The withdrawal would now be refused: a duplicate is answered by
		 * the record, not decided again on the state its first run left. */
		assert_int_equal(run(rt, "a", BANK_WITHDRAW, 70, "wd-1", &r), ESR_OK);
		assert_int_equal(run(rt, "a", BANK_WITHDRAW, 70, "wd-1", &again), ESR_OK);
		assert_int_equal(again.duplicate, 1);
		assert_int_equal(again.version, r.version);
		assert_int_equal(version_of(s, "a"), 3);
		assert_int_equal(balance_of(s, "a"), 0);
		/* The same id on another aggregate is another command. */
		assert_int_equal(run(rt, "b", BANK_OPEN, 0, "open-a", &r), ESR_OK);
		assert_int_equal(r.duplicate, 0);
		esr_runtime_stats st;
		assert_int_equal(esr_runtime_stats_get(rt, &st), ESR_OK);
		assert_int_equal(st.duplicates, 3);
		esr_runtime_destroy(rt);
		esr_store_close(s);
	}
}

static void a_rejection_records_nothing(void **state)
{
	esr_store *s;
	esr_runtime *rt;
	esr_result r;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	rt = start(s, ESR_OPTIMISTIC, 1);
	assert_int_equal(run(rt, "a", BANK_OPEN, 0, NULL, &r), ESR_OK);
	assert_int_equal(run(rt, "a", BANK_WITHDRAW, 50, "wd", &r), ESR_EREJECTED);
	assert_int_equal(r.rejection, BANK_INSUFFICIENT_FUNDS);
	assert_int_equal(r.duplicate, 0);
	assert_int_equal(run(rt, "a", BANK_DEPOSIT, 50, NULL, &r), ESR_OK);
	/* Decided again, on the state of this moment. */
	assert_int_equal(run(rt, "a", BANK_WITHDRAW, 50, "wd", &r), ESR_OK);
	assert_int_equal(r.duplicate, 0);
	assert_int_equal(r.version, 3);
	assert_int_equal(balance_of(s, "a"), 0);
	esr_runtime_destroy(rt);
	esr_store_close(s);
}

/* One batch to one aggregate holding the same id twice: one turn, and the
 * second is answered by the first, whatever the strategy. */
static void a_duplicate_inside_one_turn(void **state)
{
	struct bank_command open = {.kind = BANK_OPEN}, dep = {.kind = BANK_DEPOSIT, .amount = 5};
	esr_submission s[4];
	esr_ticket *t[4];
	esr_status st;
	esr_result r[4];
	esr_store *store;
	esr_runtime *rt;
	size_t accepted, i;

	(void)state;
	assert_int_equal(esr_memory_store_open(&store), ESR_OK);
	rt = start(store, ESR_UNCHECKED, 1);
	for (i = 0; i < 4; i++)
		s[i] = (esr_submission){.type = "BankAccount", .id = "t", .id_len = 1,
		                        .command = i == 0 ? (const void *)&open : &dep,
		                        .command_id = cid(i == 0 ? "o" : i == 3 ? "d2" : "d1")};
	assert_int_equal(esr_submit_many(rt, s, 4, t, &accepted), ESR_OK);
	assert_int_equal(accepted, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(esr_ticket_wait(t[i], -1), ESR_OK);
		assert_int_equal(esr_ticket_result(t[i], &st, &r[i]), ESR_OK);
		assert_int_equal(st, ESR_OK);
		esr_ticket_release(t[i]);
	}
	assert_int_equal(r[1].duplicate, 0);
	assert_int_equal(r[2].duplicate, 1);
	assert_int_equal(r[2].version, r[1].version);
	assert_int_equal(r[3].duplicate, 0);
	assert_int_equal(balance_of(store, "t"), 10);
	esr_runtime_destroy(rt);
	esr_store_close(store);
}

#define RACERS 4
#define IDS 200

struct racer {
	esr_runtime *rt;
	unsigned seed;
	unsigned ok, dup;
	int failures;
};

/* Each racer sends every id once, in its own order, to four accounts. */
static void *race(void *arg)
{
	struct racer *rc = arg;
	unsigned order[IDS], i, j, x;
	char id[16], acct[8];
	esr_result r;

	for (i = 0; i < IDS; i++)
		order[i] = i;
	for (i = IDS - 1; i > 0; i--) {
		rc->seed = rc->seed * 1103515245u + 12345u;
		j = (rc->seed >> 8) % (i + 1);
		x = order[i], order[i] = order[j], order[j] = x;
	}
	for (i = 0; i < IDS; i++) {
		snprintf(id, sizeof id, "dep-%u", order[i]);
		snprintf(acct, sizeof acct, "r%u", order[i] % 4);
		if (run(rc->rt, acct, BANK_DEPOSIT, 1, id, &r) != ESR_OK)
			rc->failures++;
		else if (r.duplicate)
			rc->dup++;
		else
			rc->ok++;
	}
	return NULL;
}

/* Racers on one runtime, or two runtimes (two writers) on one store; every
 * id's deposit is stored exactly once, under either strategy. */
static void racing_duplicates(esr_strategy strategy, int two_runtimes, int async)
{
	struct racer rc[RACERS];
	pthread_t t[RACERS];
	esr_runtime *rt[2];
	esr_store *mem, *s;
	unsigned ok = 0, dup = 0, k;
	int64_t total = 0;
	char acct[8];

	assert_int_equal(esr_memory_store_open(&mem), ESR_OK);
	s = mem;
	if (async)
		assert_int_equal(async_store_open(mem, 1, &s), ESR_OK);
	rt[0] = start(s, strategy, 2);
	rt[1] = two_runtimes ? start(s, strategy, 2) : rt[0];
	for (k = 0; k < RACERS; k++) {
		rc[k] = (struct racer){.rt = rt[k % 2], .seed = 7 + k};
		assert_int_equal(pthread_create(&t[k], NULL, race, &rc[k]), 0);
	}
	for (k = 0; k < RACERS; k++) {
		pthread_join(t[k], NULL);
		assert_int_equal(rc[k].failures, 0);
		ok += rc[k].ok;
		dup += rc[k].dup;
	}
	assert_int_equal(ok, IDS);
	assert_int_equal(dup, (RACERS - 1) * IDS);
	for (k = 0; k < 4; k++) {
		snprintf(acct, sizeof acct, "r%u", k);
		total += balance_of(s, acct);
	}
	assert_int_equal(total, IDS);
	if (two_runtimes)
		esr_runtime_destroy(rt[1]);
	esr_runtime_destroy(rt[0]);
	esr_store_close(s);
}

static void racing_duplicates_in_one_runtime(void **state)
{
	(void)state;
	racing_duplicates(ESR_OPTIMISTIC, 0, 0);
	racing_duplicates(ESR_UNCHECKED, 0, 0);
}

static void racing_duplicates_across_two_runtimes(void **state)
{
	(void)state;
	racing_duplicates(ESR_OPTIMISTIC, 1, 0);
	racing_duplicates(ESR_UNCHECKED, 1, 0);
}

static void racing_duplicates_through_an_async_store(void **state)
{
	(void)state;
	racing_duplicates(ESR_OPTIMISTIC, 1, 1);
	racing_duplicates(ESR_UNCHECKED, 1, 1);
}

/* A lost reply: stored, reported ESR_EUNKNOWN by the store. The runtime
 * finds the id and reports ESR_OK; without an id it stays unknown; a
 * resubmission of the unknown one with an id is safe. */
static void a_lost_reply_is_settled_by_the_id(void **state)
{
	struct wrap w = {0};
	esr_store *s;
	esr_runtime *rt;
	esr_result r;

	(void)state;
	assert_int_equal(esr_memory_store_open(&w.inner), ESR_OK);
	assert_int_equal(wrap_store_open(&w, &s), ESR_OK);
	rt = start(s, ESR_OPTIMISTIC, 1);
	assert_int_equal(run(rt, "a", BANK_OPEN, 0, NULL, &r), ESR_OK);
	w.lose_reply = 1;
	assert_int_equal(run(rt, "a", BANK_DEPOSIT, 10, "d1", &r), ESR_OK);
	assert_int_equal(r.duplicate, 0);
	assert_int_equal(r.version, 2);
	assert_int_equal(r.appended, 1);
	w.lose_reply = 1;
	assert_int_equal(run(rt, "a", BANK_DEPOSIT, 10, NULL, &r), ESR_EUNKNOWN);
	/* The host resends what it could not settle, with an id this time;
	 * and resends d1, which must not count twice. */
	assert_int_equal(run(rt, "a", BANK_DEPOSIT, 10, "d1", &r), ESR_OK);
	assert_int_equal(r.duplicate, 1);
	assert_int_equal(balance_of(w.inner, "a"), 20);
	/* Through the repository too. */
	{
		esr_repository *repo;
		struct bank_command dep = {.kind = BANK_DEPOSIT, .amount = 5};
		esr_command_id k = cid("d2");

		assert_int_equal(esr_repository_open(s, NULL, &repo), ESR_OK);
		assert_int_equal(esr_repository_register(repo, &bank_type), ESR_OK);
		w.lose_reply = 1;
		assert_int_equal(esr_repository_execute_id(repo, "BankAccount", "a", 1, &dep, &k, 3, &r),
		                 ESR_OK);
		assert_int_equal(r.duplicate, 0);
		assert_int_equal(esr_repository_execute_id(repo, "BankAccount", "a", 1, &dep, &k, 3, &r),
		                 ESR_OK);
		assert_int_equal(r.duplicate, 1);
		esr_repository_close(repo);
	}
	assert_int_equal(balance_of(w.inner, "a"), 25);
	esr_runtime_destroy(rt);
	esr_store_close(s);
	esr_store_close(w.inner);
}

static void every_way_in_carries_the_id(void **state)
{
	struct bank_command open = {.kind = BANK_OPEN}, dep = {.kind = BANK_DEPOSIT, .amount = 3};
	const void *cmds[2] = {&dep, &dep};
	esr_command_id ids[2] = {cid("m1"), cid("m1")}, k = cid("x");
	esr_status sts[2];
	esr_result rs[2], r;
	esr_repository *repo;
	esr_ticket *t[2];
	esr_runtime *rt;
	esr_store *s;
	esr_ref *ref;
	esr_status st;
	size_t accepted;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	rt = start(s, ESR_OPTIMISTIC, 2);
	assert_int_equal(esr_ref_open(rt, "BankAccount", "ref", 3, &ref), ESR_OK);
	assert_int_equal(esr_ref_execute_id(ref, &open, &k, &r), ESR_OK);
	assert_int_equal(esr_ref_execute_id(ref, &open, &k, &r), ESR_OK);
	assert_int_equal(r.duplicate, 1);
	assert_int_equal(esr_ref_submit_many_id(ref, cmds, ids, 2, t, &accepted), ESR_OK);
	assert_int_equal(esr_ticket_wait(t[1], -1), ESR_OK);
	assert_int_equal(esr_ticket_result(t[1], &st, &r), ESR_OK);
	assert_int_equal(st, ESR_OK);
	assert_int_equal(r.duplicate, 1);
	esr_ticket_release(t[0]);
	esr_ticket_release(t[1]);
	assert_int_equal(esr_ref_submit_id(ref, &dep, &ids[0], &t[0]), ESR_OK);
	assert_int_equal(esr_ticket_wait(t[0], -1), ESR_OK);
	assert_int_equal(esr_ticket_result(t[0], &st, &r), ESR_OK);
	assert_int_equal(r.duplicate, 1);
	esr_ticket_release(t[0]);
	esr_ref_close(ref);
	assert_int_equal(balance_of(s, "ref"), 3);
	esr_runtime_destroy(rt);
	/* The repository: one call with the id twice, then again. */
	assert_int_equal(esr_repository_open(s, NULL, &repo), ESR_OK);
	assert_int_equal(esr_repository_register(repo, &bank_type), ESR_OK);
	assert_int_equal(esr_repository_execute_id(repo, "BankAccount", "rep", 3, &open, NULL, 0, &r),
	                 ESR_OK);
	assert_int_equal(esr_repository_execute_many_id(repo, "BankAccount", "rep", 3, cmds, ids, 2,
	                                                0, sts, rs),
	                 ESR_OK);
	assert_int_equal(sts[0], ESR_OK);
	assert_int_equal(sts[1], ESR_OK);
	assert_int_equal(rs[0].duplicate, 0);
	assert_int_equal(rs[1].duplicate, 1);
	assert_int_equal(rs[1].version, rs[0].version);
	assert_int_equal(esr_repository_execute_id(repo, "BankAccount", "rep", 3, &dep, &ids[0], 0, &r),
	                 ESR_OK);
	assert_int_equal(r.duplicate, 1);
	assert_int_equal(balance_of(s, "rep"), 3);
	esr_repository_close(repo);
	esr_store_close(s);
}

static void bad_ids_are_refused(void **state)
{
	struct bank_command open = {.kind = BANK_OPEN};
	char longest[ESR_COMMAND_ID_MAX + 1];
	esr_command_id too_long = {longest, sizeof longest}, empty = {"x", 0}, null = {NULL, 2};
	esr_submission s[3];
	esr_ticket *t[3];
	esr_repository *repo;
	esr_runtime *rt;
	esr_store *st;
	esr_result r;
	size_t accepted = 99;

	(void)state;
	memset(longest, 'k', sizeof longest);
	assert_int_equal(esr_memory_store_open(&st), ESR_OK);
	rt = start(st, ESR_OPTIMISTIC, 1);
	assert_int_equal(esr_execute_id(rt, "BankAccount", "a", 1, &open, &too_long, &r), ESR_ETOOBIG);
	assert_int_equal(esr_execute_id(rt, "BankAccount", "a", 1, &open, &empty, &r), ESR_EINVAL);
	assert_int_equal(esr_execute_id(rt, "BankAccount", "a", 1, &open, &null, &r), ESR_EINVAL);
	/* In a batch: the ones before the bad id go, the rest do not. */
	for (int i = 0; i < 3; i++)
		s[i] = (esr_submission){.type = "BankAccount", .id = "b", .id_len = 1,
		                        .command = &open, .command_id = i == 1 ? too_long : cid("o")};
	assert_int_equal(esr_submit_many(rt, s, 3, t, &accepted), ESR_ETOOBIG);
	assert_int_equal(accepted, 1);
	assert_int_equal(esr_ticket_wait(t[0], -1), ESR_OK);
	esr_ticket_release(t[0]);
	assert_int_equal(version_of(st, "a"), 0);
	assert_int_equal(version_of(st, "b"), 1);
	longest[ESR_COMMAND_ID_MAX - 1] = 'z'; /* the longest allowed is fine */
	too_long.len = ESR_COMMAND_ID_MAX;
	assert_int_equal(esr_execute_id(rt, "BankAccount", "a", 1, &open, &too_long, &r), ESR_OK);
	esr_runtime_destroy(rt);
	assert_int_equal(esr_repository_open(st, NULL, &repo), ESR_OK);
	assert_int_equal(esr_repository_register(repo, &bank_type), ESR_OK);
	too_long.len = ESR_COMMAND_ID_MAX + 1;
	assert_int_equal(esr_repository_execute_id(repo, "BankAccount", "c", 1, &open, &too_long, 0, &r),
	                 ESR_ETOOBIG);
	assert_int_equal(esr_repository_execute_id(repo, "BankAccount", "c", 1, &open, &empty, 0, &r),
	                 ESR_EINVAL);
	assert_int_equal(version_of(st, "c"), 0);
	esr_repository_close(repo);
	esr_store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_resubmission_takes_effect_once),
		cmocka_unit_test(a_rejection_records_nothing),
		cmocka_unit_test(a_duplicate_inside_one_turn),
		cmocka_unit_test(racing_duplicates_in_one_runtime),
		cmocka_unit_test(racing_duplicates_across_two_runtimes),
		cmocka_unit_test(racing_duplicates_through_an_async_store),
		cmocka_unit_test(a_lost_reply_is_settled_by_the_id),
		cmocka_unit_test(every_way_in_carries_the_id),
		cmocka_unit_test(bad_ids_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
