/*
 * examples/bank_account.c: the withdrawal race, under both strategies.
 *
 * An account holds 500. Two writers (think: two processes sharing one event
 * store) each read the balance at the same moment and each decide on a
 * withdrawal. Under the unchecked strategy both decisions are appended, even
 * though the second was made on a balance that no longer existed. Under the
 * optimistic strategy the second append finds the stream moved on, catches
 * up, and decides again on the real balance.
 *
 * Build and run: see README.md. Exits 0 when every outcome is the one the
 * strategy promises, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_barrier_t */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <esr/esr.h>

/* --- the aggregate ------------------------------------------------------ */

enum { OPENED = 1, DEPOSITED = 2, WITHDRAWN = 3 };
enum { OPEN, DEPOSIT, WITHDRAW };
enum { INSUFFICIENT_FUNDS = 1, ALREADY_OPEN = 2 };

struct account {
	int64_t balance;
	int open;
};

struct command {
	int kind;
	int64_t amount;
	/* Example-only: makes both writers read the account before either
	 * appends, as two hosts deciding at the same instant would. */
	pthread_barrier_t *read_together;
	int waited;
};

static void apply(void *state, const esr_event *ev)
{
	struct account *a = state;
	int64_t amount;

	memcpy(&amount, ev->payload, sizeof amount);
	if (ev->type == OPENED) {
		a->open = 1;
		a->balance = amount;
	} else if (ev->type == DEPOSITED) {
		a->balance += amount;
	} else if (ev->type == WITHDRAWN) {
		a->balance -= amount;
	}
}

static int handle(const void *state, const void *command, esr_emitter *emit)
{
	const struct account *a = state;
	struct command *c = (struct command *)command;

	if (c->read_together && !c->waited) {
		c->waited = 1;
		pthread_barrier_wait(c->read_together);
	}
	switch (c->kind) {
	case OPEN:
		if (a->open)
			return ALREADY_OPEN;
		return esr_emit(emit, OPENED, &c->amount, sizeof c->amount);
	case DEPOSIT:
		return esr_emit(emit, DEPOSITED, &c->amount, sizeof c->amount);
	default:
		if (a->balance < c->amount)
			return INSUFFICIENT_FUNDS;
		return esr_emit(emit, WITHDRAWN, &c->amount, sizeof c->amount);
	}
}

static const esr_aggregate_type bank_account = {
	.name = "BankAccount",
	.state_size = sizeof(struct account),
	.apply = apply,
	.handle = handle,
};

/* --- two writers --------------------------------------------------------- */

struct writer {
	const char *name;
	esr_repository *repo;
	struct command cmd;
	esr_status status;
	esr_result result;
};

static const char id[] = "acct-7";

static void *run_writer(void *arg)
{
	struct writer *w = arg;

	w->status = esr_repository_execute_with_retry(w->repo, "BankAccount", id,
	                                              strlen(id), &w->cmd,
	                                              ESR_DEFAULT_MAX_RETRIES,
	                                              &w->result);
	return NULL;
}

static void report(const struct writer *w)
{
	printf("  writer %s, withdraw %" PRId64 ": ", w->name, w->cmd.amount);
	if (w->status == ESR_OK)
		printf("accepted");
	else if (w->status == ESR_EREJECTED)
		printf("rejected (insufficient funds)");
	else
		printf("failed: %s", esr_strerror(w->status));
	printf(" after %" PRIu32 " attempt%s\n", w->result.attempts,
	       w->result.attempts == 1 ? "" : "s");
}

/* Runs one race; *final_balance is what a fresh replay of the stream gives.
 * Returns non-zero if the race could not be set up. */
static int race(esr_strategy strategy, int64_t a_amount, int64_t b_amount,
                int64_t *final_balance, struct writer w[2])
{
	esr_repository_config config = {.strategy = strategy};
	struct command open = {.kind = OPEN, .amount = 500};
	pthread_barrier_t barrier;
	struct account replayed;
	esr_store *store = NULL;
	esr_repository *reader = NULL;
	pthread_t t[2];
	int i, failed = 1;

	if (esr_memory_store_open(&store) != ESR_OK)
		return 1;
	pthread_barrier_init(&barrier, NULL, 2);
	memset(w, 0, 2 * sizeof *w);
	w[0].name = "A";
	w[1].name = "B";
	w[0].cmd = (struct command){WITHDRAW, a_amount, &barrier, 0};
	w[1].cmd = (struct command){WITHDRAW, b_amount, &barrier, 0};
	/* Each writer has a repository of its own: two writers, one store. */
	for (i = 0; i < 2; i++)
		if (esr_repository_open(store, &config, &w[i].repo) != ESR_OK ||
		    esr_repository_register(w[i].repo, &bank_account) != ESR_OK)
			goto out;
	if (esr_repository_execute(w[0].repo, "BankAccount", id, strlen(id), &open,
	                           NULL) != ESR_OK)
		goto out;
	for (i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, run_writer, &w[i]);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	if (esr_repository_open(store, NULL, &reader) != ESR_OK ||
	    esr_repository_register(reader, &bank_account) != ESR_OK ||
	    esr_repository_load(reader, "BankAccount", id, strlen(id), &replayed,
	                        sizeof replayed, NULL) != ESR_OK)
		goto out;
	*final_balance = replayed.balance;
	failed = 0;
out:
	esr_repository_close(reader);
	for (i = 0; i < 2; i++)
		esr_repository_close(w[i].repo);
	esr_store_close(store);
	pthread_barrier_destroy(&barrier);
	return failed;
}

/* Runs and narrates one race; returns 1 if the outcome broke the promise. */
static int scenario(esr_strategy strategy, int64_t a, int64_t b)
{
	int64_t balance = 0, want;
	const struct writer *first;
	struct writer w[2];
	int accepted;

	if (race(strategy, a, b, &balance, w)) {
		printf("  could not run the race\n");
		return 1;
	}
	printf("strategy %s:\n", esr_strategy_name(strategy));
	report(&w[0]);
	report(&w[1]);
	accepted = (w[0].status == ESR_OK) + (w[1].status == ESR_OK);
	printf("  final balance, replayed from the stream: %" PRId64 "\n", balance);
	if (strategy == ESR_UNCHECKED) {
		want = 500 - a - b; /* both stale decisions land */
		if (balance < 0)
			printf("  -> OVERDRAFT: both writers decided on the stale balance 500; "
			       "the rule \"never below zero\" is broken.\n");
		else
			printf("  -> both withdrawals landed, but each was decided on the "
			       "stale balance 500: neither writer saw the other's.\n");
		return accepted != 2 || balance != want;
	}
	/* The writer that needed one attempt appended first. */
	first = w[0].result.attempts == 1 ? &w[0] : &w[1];
	want = 500 - first->cmd.amount;
	if (accepted == 2) {
		want -= (first == &w[0] ? w[1] : w[0]).cmd.amount;
		printf("  -> the second append hit a conflict, caught up (balance %" PRId64
		       ") and withdrew again on the real balance.\n", 500 - first->cmd.amount);
	} else {
		printf("  -> the second append hit a conflict, caught up, and the handler "
		       "rejected the withdrawal on the real balance.\n");
	}
	/* a + b fits in 500: both must land; otherwise the second is refused. */
	return accepted != (a + b <= 500 ? 2 : 1) || balance != want ||
	       w[0].result.attempts + w[1].result.attempts != 3;
}

int main(void)
{
	int wrong = 0;

	printf("Account acct-7 opens with 500. Two writers read the balance (500) at\n"
	       "the same moment; each then withdraws.\n\n");
	printf("== A withdraws 100, B withdraws 200 ==\n");
	wrong |= scenario(ESR_UNCHECKED, 100, 200);
	wrong |= scenario(ESR_OPTIMISTIC, 100, 200);
	printf("\n== A withdraws 300, B withdraws 300 (together they would overdraw) ==\n");
	wrong |= scenario(ESR_UNCHECKED, 300, 300);
	wrong |= scenario(ESR_OPTIMISTIC, 300, 300);
	printf("\n%s\n", wrong ? "UNEXPECTED: an outcome differs from what the strategy promises."
	                       : "Every outcome is the one its strategy promises.");
	return wrong;
}
