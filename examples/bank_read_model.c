/*
 * examples/bank_read_model.c: a read model kept up to date by a projection
 * while commands run.
 *
 * Bank accounts take deposits and withdrawals; a withdrawal that would take
 * the balance below zero is rejected. Two runtimes share one store (two
 * writers, as two processes would), and a subscription feeds a read model:
 * the total money in the system and the accounts that are overdrawn. Under
 * the optimistic strategy that list must stay empty; under unchecked, two
 * writers deciding on stale balances can overdraw an account, and the read
 * model shows it. At the end the read model is compared with a fresh replay.
 *
 *   bank_read_model [STORE [STRATEGY [COMMANDS]]]
 *   e.g. memory optimistic, or file:/tmp/bank unchecked 5000 (commands per thread)
 */
#define _POSIX_C_SOURCE 200809L /* rand_r */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <esr/esr.h>

#define ACCOUNTS 50
static int commands = 40000; /* per submitting thread; argv[3] */
#define THREADS 2      /* per runtime */

enum { DEPOSITED = 1, WITHDRAWN = 2 };

/* --- the aggregate -------------------------------------------------------------- */

struct account {
	int64_t balance;
};

struct command {
	int withdraw;
	int64_t amount;
};

static void apply(void *state, const esr_event *e)
{
	struct account *a = state;
	int64_t amount;

	memcpy(&amount, e->payload, sizeof amount);
	a->balance += e->type == DEPOSITED ? amount : -amount;
}

static int handle(const void *state, const void *command, esr_emitter *em)
{
	const struct account *a = state;
	const struct command *c = command;

	if (c->withdraw && a->balance < c->amount)
		return 1; /* insufficient funds */
	return esr_emit(em, c->withdraw ? WITHDRAWN : DEPOSITED, &c->amount, sizeof c->amount) ==
	               ESR_OK ? 0 : 2;
}

static const esr_aggregate_type account_type = {
	.name = "Account", .state_size = sizeof(struct account), .apply = apply, .handle = handle,
};

/* --- the read model ---------------------------------------------------------------- */

struct read_model {
	int64_t balance[ACCOUNTS];
	int64_t total;
	uint64_t position; /* the last event applied */
};

static int account_of(const esr_stream_id *s)
{
	int n = 0;
	size_t i;

	for (i = 4; i < s->id_len; i++) /* "acct<N>" */
		n = n * 10 + (((const char *)s->id)[i] - '0');
	return n;
}

/* Delivery is at-least-once across restarts: an event at or below the
 * position already applied is one this model has seen, and is skipped. */
static esr_status project(void *ctx, const esr_recorded_event *ev)
{
	struct read_model *m = ctx;
	struct account a = {0};
	int k = account_of(&ev->stream);

	if (ev->position <= m->position)
		return ESR_OK;
	apply(&a, &ev->event);
	m->balance[k] += a.balance;
	m->total += a.balance;
	m->position = ev->position;
	return ESR_OK;
}

static int overdrawn(const struct read_model *m, char *list, size_t size)
{
	int k, n = 0;
	size_t at = 0;

	list[0] = '\0';
	for (k = 0; k < ACCOUNTS; k++)
		if (m->balance[k] < 0) {
			n++;
			if (at < size)
				at += (size_t)snprintf(list + at, size - at, " acct%d", k);
		}
	return n;
}

/* The checkpoint lives in the read model itself (its position), so the two
 * can never disagree; a model kept in a database would keep it in the same
 * transaction as its rows. Saving is then nothing more to do. */
static esr_status checkpoint_load(void *ctx, uint64_t *position)
{
	*position = ((struct read_model *)ctx)->position;
	return ESR_OK;
}

static esr_status checkpoint_save(void *ctx, uint64_t position)
{
	(void)ctx;
	(void)position;
	return ESR_OK;
}

/* --- the writers ------------------------------------------------------------------- */

struct writer {
	esr_runtime *rt;
	unsigned seed;
	uint64_t accepted, rejected;
};

static void *submit(void *arg)
{
	struct writer *w = arg;
	char id[16];
	int i;

	for (i = 0; i < commands; i++) {
		struct command c = {rand_r(&w->seed) % 2, 1 + rand_r(&w->seed) % 100};
		int n = snprintf(id, sizeof id, "acct%d", rand_r(&w->seed) % ACCOUNTS);
		esr_result r;
		esr_status st = esr_execute(w->rt, "Account", id, (size_t)n, &c, &r);
		w->accepted += st == ESR_OK;
		w->rejected += st == ESR_EREJECTED;
	}
	return NULL;
}

static int run_writers(esr_store *store, esr_strategy strategy, esr_runtime_stats *stats)
{
	esr_runtime_config cfg;
	esr_runtime *rt[2];
	struct writer w[2 * THREADS];
	pthread_t t[2 * THREADS];
	int i;

	esr_runtime_config_default(&cfg);
	cfg.strategy = strategy;
	cfg.workers = 2;
	for (i = 0; i < 2; i++)
		if (esr_runtime_start(&cfg, store, &rt[i]) != ESR_OK ||
		    esr_runtime_register(rt[i], &account_type) != ESR_OK)
			return -1;
	for (i = 0; i < 2 * THREADS; i++) {
		w[i] = (struct writer){rt[i % 2], 7u + (unsigned)i, 0, 0};
		pthread_create(&t[i], NULL, submit, &w[i]);
	}
	memset(stats, 0, sizeof *stats);
	for (i = 0; i < 2 * THREADS; i++) {
		pthread_join(t[i], NULL);
		stats->completed += w[i].accepted;
		stats->rejected += w[i].rejected;
	}
	for (i = 0; i < 2; i++) {
		esr_runtime_stats s;
		esr_runtime_stop(rt[i]);
		esr_runtime_stats_get(rt[i], &s);
		stats->conflicts += s.conflicts;
		stats->retries += s.retries;
		esr_runtime_destroy(rt[i]);
	}
	return 0;
}

/* --- main -------------------------------------------------------------------------- */

/* The same read model, from a fresh replay of the whole store. */
static int replay(esr_store *store, struct read_model *m)
{
	uint64_t from, next = 1;

	memset(m, 0, sizeof *m);
	do {
		from = next;
		if (esr_store_read_all(store, from, 4096, project, m, &next) != ESR_OK)
			return -1;
	} while (next != from);
	return 0;
}

int main(int argc, char **argv)
{
	const char *spec = argc > 1 ? argv[1] : "memory";
	esr_strategy strategy = ESR_OPTIMISTIC;
	esr_subscription_options o;
	esr_subscription *sub;
	esr_runtime_stats stats;
	struct read_model live = {0}, fresh;
	esr_checkpoint_store cp = {checkpoint_load, checkpoint_save, &live};
	char why[256] = "", list[256];
	uint64_t head = 0;
	esr_store *store;
	int bad, same;

	if (argc > 3)
		commands = atoi(argv[3]);
	if ((argc > 2 && esr_strategy_parse(argv[2], &strategy) != ESR_OK) || commands <= 0 ||
	    esr_store_open_spec(spec, why, sizeof why, &store) != ESR_OK) {
		fprintf(stderr, "usage: bank_read_model [STORE [optimistic|unchecked [COMMANDS]]] (%s)\n", why);
		return 2;
	}
	esr_subscription_options_default(&o);
	o.checkpoint = &cp;
	if (esr_subscribe(store, 1, project, &live, &o, &sub) != ESR_OK ||
	    run_writers(store, strategy, &stats) != 0) {
		fprintf(stderr, "bank_read_model: could not start\n");
		return 1;
	}
	esr_store_head(store, &head);
	if (esr_subscription_wait(sub, head, 60000) != ESR_OK || esr_subscription_stop(sub) != ESR_OK ||
	    replay(store, &fresh) != 0) {
		fprintf(stderr, "bank_read_model: the projection did not finish\n");
		return 1;
	}
	same = memcmp(live.balance, fresh.balance, sizeof live.balance) == 0 &&
	       live.total == fresh.total;
	bad = overdrawn(&live, list, sizeof list);
	printf("strategy %s, store %s: %" PRIu64 " accepted, %" PRIu64 " rejected, "
	       "%" PRIu64 " conflicts, %" PRIu64 " retries, %" PRIu64 " events\n",
	       esr_strategy_name(strategy), spec, stats.completed, stats.rejected, stats.conflicts,
	       stats.retries, head);
	printf("read model: total money %" PRId64 ", overdrawn accounts %d%s%s\n", live.total, bad,
	       bad ? ":" : "", list);
	printf("read model equals a fresh replay: %s\n", same ? "yes" : "NO");
	esr_store_close(store);
	return same && (strategy != ESR_OPTIMISTIC || bad == 0) ? 0 : 1;
}
