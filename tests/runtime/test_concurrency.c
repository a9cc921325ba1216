/*
 * tests/runtime/test_concurrency.c: several writers hammer the same accounts through
 * the repository, each writer a repository of its own over one shared store
 * (as several processes sharing a store would). Afterwards the log is audited
 * against what each writer was told:
 *  - both strategies: every stream's versions are contiguous; every accepted
 *    command's event is in the log exactly once and nothing else is; each
 *    balance equals opening + accepted deposits - accepted withdrawals;
 *  - optimistic only: no balance ever went below zero at any version;
 *  - unchecked: overdrafts may happen (stale decisions) and are reported.
 * ESR_STRESS_COMMANDS overrides the commands per writer (default 3000).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bank.h"

enum { WRITERS = 4, ACCOUNTS = 8, OPENING = 1000, MAX_RETRIES = 5 };

static unsigned commands_per_writer = 3000;

struct outcome {
	int accepted;
	int account;
	int64_t delta; /* + deposit, - withdrawal */
};

struct writer {
	esr_store *store;
	esr_strategy strategy;
	uint32_t id;
	struct outcome *outcomes;
	unsigned rejected, exhausted, errors, retries;
};

static void *hammer(void *arg)
{
	struct writer *w = arg;
	esr_repository_config cfg = {.strategy = w->strategy};
	uint64_t rng = 0x9e3779b97f4a7c15ULL * (w->id + 1);
	esr_repository *repo;
	unsigned i;

	if (esr_repository_open(w->store, &cfg, &repo) != ESR_OK ||
	    esr_repository_register(repo, &bank_type) != ESR_OK) {
		w->errors++;
		return NULL;
	}
	for (i = 0; i < commands_per_writer; i++) {
		struct outcome *o = &w->outcomes[i];
		struct bank_command c;
		char id[32];
		esr_result r;
		esr_status st;

		o->account = bank_random_command(&rng, ACCOUNTS, w->id, i, &c, &o->delta);
		bank_account_id(o->account, id, sizeof id);
		st = esr_repository_execute_with_retry(repo, "BankAccount", id, strlen(id), &c,
		                                       MAX_RETRIES, &r);
		o->accepted = st == ESR_OK;
		if (r.attempts > 1)
			w->retries += r.attempts - 1;
		if (st == ESR_EREJECTED)
			w->rejected++;
		else if (st == ESR_ECONFLICT)
			w->exhausted++;
		else if (st != ESR_OK)
			w->errors++;
	}
	esr_repository_close(repo);
	return NULL;
}

static void stress(esr_strategy strategy)
{
	struct writer w[WRITERS];
	pthread_t t[WRITERS];
	struct bank_audit audit;
	int64_t expected_balance[ACCOUNTS];
	unsigned overdrawn = 0, retries = 0, rejected = 0, exhausted = 0;
	esr_repository *repo;
	esr_store *store;
	int i, acct;
	unsigned k;

	assert_int_equal(esr_memory_store_open(&store), ESR_OK);
	assert_int_equal(esr_repository_open(store, NULL, &repo), ESR_OK);
	assert_int_equal(esr_repository_register(repo, &bank_type), ESR_OK);
	for (acct = 0; acct < ACCOUNTS; acct++) {
		struct bank_command open = {.kind = BANK_OPEN, .amount = OPENING};
		char id[32];
		bank_account_id(acct, id, sizeof id);
		assert_int_equal(esr_repository_execute(repo, "BankAccount", id, strlen(id), &open,
		                                        NULL),
		                 ESR_OK);
		expected_balance[acct] = OPENING;
	}
	esr_repository_close(repo);

	assert_int_equal(bank_audit_init(&audit, WRITERS, commands_per_writer), ESR_OK);
	for (i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.store = store, .strategy = strategy, .id = (uint32_t)i};
		w[i].outcomes = calloc(commands_per_writer, sizeof *w[i].outcomes);
		assert_non_null(w[i].outcomes);
	}
	for (i = 0; i < WRITERS; i++)
		pthread_create(&t[i], NULL, hammer, &w[i]);
	for (i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].errors, 0);
		retries += w[i].retries;
		rejected += w[i].rejected;
		exhausted += w[i].exhausted;
		for (k = 0; k < commands_per_writer; k++)
			if (w[i].outcomes[k].accepted)
				expected_balance[w[i].outcomes[k].account] += w[i].outcomes[k].delta;
	}
	if (strategy == ESR_UNCHECKED)
		assert_int_equal(retries + exhausted, 0); /* never a conflict */

	for (acct = 0; acct < ACCOUNTS; acct++) {
		assert_int_equal(bank_audit_account(&audit, store, acct), ESR_OK);
		assert_int_equal(audit.state.balance, expected_balance[acct]);
		if (audit.state.lowest < 0)
			overdrawn++;
	}
	assert_int_equal(audit.gaps, 0);
	assert_int_equal(audit.foreign, 0);
	assert_int_equal(audit.out_of_order, 0); /* each writer runs its commands in turn */
	for (i = 0; i < WRITERS; i++) {
		for (k = 0; k < commands_per_writer; k++)
			assert_int_equal(audit.seen[i][k], w[i].outcomes[k].accepted ? 1 : 0);
		free(w[i].outcomes);
	}
	bank_audit_free(&audit);
	print_message("    %s: %u writers x %u commands on %d accounts: %u retries, "
	              "%u rejected, %u exhausted retries, %u of %d accounts went below zero\n",
	              esr_strategy_name(strategy), WRITERS, commands_per_writer, ACCOUNTS,
	              retries, rejected, exhausted, overdrawn, ACCOUNTS);
	if (strategy == ESR_OPTIMISTIC)
		assert_int_equal(overdrawn, 0);
	esr_store_close(store);
}

static void optimistic_writers_never_break_the_rules(void **state)
{
	(void)state;
	stress(ESR_OPTIMISTIC);
}

static void unchecked_writers_lose_and_tear_nothing(void **state)
{
	(void)state;
	stress(ESR_UNCHECKED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(optimistic_writers_never_break_the_rules),
		cmocka_unit_test(unchecked_writers_lose_and_tear_nothing),
	};
	const char *n = getenv("ESR_STRESS_COMMANDS");

	if (n != NULL && atoi(n) > 0)
		commands_per_writer = (unsigned)atoi(n);
	return cmocka_run_group_tests_name("concurrency", tests, NULL, NULL);
}
