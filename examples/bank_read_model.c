/*
 * examples/bank_read_model.c: a read model kept up to date by a projection
 * while commands run.
 *
 * Fifty bank accounts take deposits and withdrawals; a withdrawal that would
 * take a balance below zero is rejected. Two runtimes share one store (two
 * writers, as two processes would) while a subscription feeds a read model:
 * the total money in the system, every balance, and the overdrawn accounts.
 * Under the optimistic strategy nobody can be overdrawn; under unchecked the
 * two writers decide on balances the other has already spent, and the read
 * model shows the accounts that went below zero. At the end the read model is
 * compared with a fresh replay of the store, and a second subscription under
 * the same checkpoint name shows that a projection resumes where it stopped.
 *
 *   bank_read_model [STORE [STRATEGY [COMMANDS]]]
 *   STORE: memory (default), file:DIR or postgres:CONNINFO
 *   STRATEGY: optimistic (default) or unchecked; COMMANDS: 40000 by default
 *
 * Exits 0 when the read model equals the replay and, under optimistic, no
 * account is overdrawn; 1 otherwise; 2 for bad arguments or a store that
 * cannot be opened.
 */
#define _POSIX_C_SOURCE 200809L /* rand_r, nanosleep */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <esr/esr.h>

#define ACCOUNTS 50
#define OPENING_BALANCE 100
#define RUNTIMES 2        /* writers sharing the store */
#define THREADS 2         /* submitting threads per runtime */
#define PROGRESS_EVERY 10000
#define CHECKPOINT "bank.read-model"

/* --- the aggregate ------------------------------------------------------ */

enum { OPENED = 1, DEPOSITED = 2, WITHDRAWN = 3 };
enum { OPEN, DEPOSIT, WITHDRAW };
enum { INSUFFICIENT_FUNDS = 1, ALREADY_OPEN = 2, NOT_OPEN = 3 };

struct account {
	int64_t balance;
	int open;
};

struct command {
	int kind;
	int64_t amount;
};

/* Payloads are little-endian whatever the host, so a file or PostgreSQL
 * store written on one machine reads the same on another. */
static void put_le64(unsigned char out[8], int64_t value)
{
	uint64_t v = (uint64_t)value;
	int i;

	for (i = 0; i < 8; i++, v >>= 8)
		out[i] = (unsigned char)v;
}

static int64_t get_le64(const esr_event *ev)
{
	const unsigned char *p = ev->payload;
	uint64_t v = 0;
	int i;

	if (ev->payload_len != 8)
		return 0;
	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return (int64_t)v;
}

static void apply(void *state, const esr_event *ev)
{
	struct account *a = state;
	int64_t amount = get_le64(ev);

	if (ev->type == OPENED) {
		a->open = 1;
		a->balance = amount;
	} else if (ev->type == DEPOSITED) {
		a->balance += amount;
	} else if (ev->type == WITHDRAWN) {
		a->balance -= amount;
	}
}

static int emit_amount(esr_emitter *emit, uint32_t type, int64_t amount)
{
	unsigned char payload[8];

	put_le64(payload, amount);
	return esr_emit(emit, type, payload, sizeof payload);
}

static int handle(const void *state, const void *command, esr_emitter *emit)
{
	const struct account *a = state;
	const struct command *c = command;

	if (c->kind == OPEN)
		return a->open ? ALREADY_OPEN : emit_amount(emit, OPENED, c->amount);
	if (!a->open)
		return NOT_OPEN;
	if (c->kind == DEPOSIT)
		return emit_amount(emit, DEPOSITED, c->amount);
	if (a->balance < c->amount)
		return INSUFFICIENT_FUNDS;
	return emit_amount(emit, WITHDRAWN, c->amount);
}

static const esr_aggregate_type bank_account = {
	.name = "BankAccount",
	.state_size = sizeof(struct account),
	.apply = apply,
	.handle = handle,
};

/* --- the read model ------------------------------------------------------- */

struct read_model {
	pthread_mutex_t lock; /* the projection writes while main reads progress */
	struct account account[ACCOUNTS];
	int64_t total;
	uint64_t events;
	uint64_t position; /* the last event applied */
};

static void model_init(struct read_model *m)
{
	memset(m, 0, sizeof *m);
	pthread_mutex_init(&m->lock, NULL);
}

/* "acct-N" of this example's type, or -1 for any other stream in the store. */
static int account_index(const esr_stream_id *s)
{
	char id[16];
	char *end;
	long k;

	if (strcmp(s->type, bank_account.name) != 0 || s->id_len < 6 || s->id_len >= sizeof id)
		return -1;
	memcpy(id, s->id, s->id_len);
	id[s->id_len] = '\0';
	if (strncmp(id, "acct-", 5) != 0)
		return -1;
	k = strtol(id + 5, &end, 10);
	return *end == '\0' && k >= 0 && k < ACCOUNTS ? (int)k : -1;
}

/* Delivery is at-least-once across restarts: a subscription resumes after its
 * last saved checkpoint, which may be behind what the model has applied. The
 * model keeps the position it has applied, so an event at or below it is
 * skipped instead of counted twice. */
static esr_status project(void *ctx, const esr_recorded_event *ev)
{
	struct read_model *m = ctx;
	int k = account_index(&ev->stream);

	pthread_mutex_lock(&m->lock);
	if (ev->position > m->position) {
		if (k >= 0) {
			int64_t before = m->account[k].balance;

			apply(&m->account[k], &ev->event);
			m->total += m->account[k].balance - before;
			m->events++;
		}
		m->position = ev->position;
	}
	pthread_mutex_unlock(&m->lock);
	return ESR_OK;
}

/* The overdrawn accounts as " acct-3 acct-17" into list; returns how many. */
static int overdrawn(const struct read_model *m, char *list, size_t size)
{
	size_t at = 0;
	int k, n = 0;

	list[0] = '\0';
	for (k = 0; k < ACCOUNTS; k++) {
		if (m->account[k].balance >= 0)
			continue;
		n++;
		if (at < size)
			at += (size_t)snprintf(list + at, size - at, " acct-%d", k);
	}
	return n;
}

/* The same read model, rebuilt by reading the whole store from position 1. */
static esr_status replay(esr_store *store, struct read_model *m)
{
	uint64_t from, next = 1;
	esr_status st;

	do {
		from = next;
		st = esr_store_read_all(store, from, 4096, project, m, &next);
	} while (st == ESR_OK && next != from);
	return st;
}

static int same_model(const struct read_model *a, const struct read_model *b)
{
	char la[1024], lb[1024];
	int k;

	for (k = 0; k < ACCOUNTS; k++)
		if (a->account[k].balance != b->account[k].balance)
			return 0;
	return a->total == b->total && overdrawn(a, la, sizeof la) == overdrawn(b, lb, sizeof lb) &&
	       strcmp(la, lb) == 0;
}

/* --- the writers ------------------------------------------------------------ */

struct load {
	int commands;
	atomic_int claimed, done;
	atomic_uint_fast64_t accepted, rejected, failed;
};

struct submitter {
	struct load *load;
	esr_runtime *rt;
	unsigned seed;
	pthread_t thread;
};

static void *submit(void *arg)
{
	struct submitter *s = arg;
	struct load *l = s->load;
	char id[16];

	while (atomic_fetch_add(&l->claimed, 1) < l->commands) {
		/* More withdrawals than deposits keep balances near zero, where
		 * stale decisions show. */
		int kind = rand_r(&s->seed) % 5 < 2 ? DEPOSIT : WITHDRAW;
		struct command c = {kind, 1 + rand_r(&s->seed) % 100};
		int n = snprintf(id, sizeof id, "acct-%d", rand_r(&s->seed) % ACCOUNTS);
		esr_status st = esr_execute(s->rt, bank_account.name, id, (size_t)n, &c, NULL);

		atomic_fetch_add(st == ESR_OK ? &l->accepted :
		                 st == ESR_EREJECTED ? &l->rejected : &l->failed, 1);
		atomic_fetch_add(&l->done, 1);
	}
	return NULL;
}

static esr_status open_accounts(esr_runtime *rt)
{
	struct command open = {OPEN, OPENING_BALANCE};
	esr_result r;
	char id[16];
	int k;

	for (k = 0; k < ACCOUNTS; k++) {
		int n = snprintf(id, sizeof id, "acct-%d", k);
		esr_status st = esr_execute(rt, bank_account.name, id, (size_t)n, &open, &r);

		/* A store kept from an earlier run has them open already. */
		if (st != ESR_OK && !(st == ESR_EREJECTED && r.rejection == ALREADY_OPEN))
			return st;
	}
	return ESR_OK;
}

/* Polls while the writers run: samples the projection's lag behind the store
 * head and prints a progress line every PROGRESS_EVERY commands. */
static uint64_t watch(struct load *l, esr_store *store, esr_subscription *sub,
                      struct read_model *m)
{
	const struct timespec tick = {0, 1000000};
	uint64_t head, lag, max_lag = 0;
	int done, mark = PROGRESS_EVERY;
	esr_subscription_stats s;
	char list[1024];

	do {
		done = atomic_load(&l->done);
		/* Position first: the head only grows, so the lag is never negative. */
		esr_subscription_stats_get(sub, &s);
		if (esr_store_head(store, &head) != ESR_OK)
			head = s.position;
		lag = head > s.position ? head - s.position : 0;
		max_lag = lag > max_lag ? lag : max_lag;
		if (done >= mark) {
			pthread_mutex_lock(&m->lock);
			printf("  %6d commands: total money %" PRId64 ", %d overdrawn; projection at %"
			       PRIu64 " of %" PRIu64 " (lag %" PRIu64 ")\n", done, m->total,
			       overdrawn(m, list, sizeof list), s.position, head, lag);
			pthread_mutex_unlock(&m->lock);
			while (mark <= done)
				mark += PROGRESS_EVERY;
		}
		nanosleep(&tick, NULL);
	} while (done < l->commands);
	return max_lag;
}

/* Runs the commands on RUNTIMES runtimes with THREADS submitters each; sums
 * their conflicts and retries into *stats and returns the max lag seen. */
static int run_writers(esr_store *store, esr_strategy strategy, struct load *l,
                       esr_subscription *sub, struct read_model *m,
                       esr_runtime_stats *stats, uint64_t *max_lag)
{
	struct submitter s[RUNTIMES * THREADS];
	esr_runtime *rt[RUNTIMES] = {NULL};
	esr_runtime_config cfg;
	int i, ok = 1;

	esr_runtime_config_default(&cfg);
	cfg.strategy = strategy;
	for (i = 0; i < RUNTIMES; i++)
		ok = ok && esr_runtime_start(&cfg, store, &rt[i]) == ESR_OK &&
		     esr_runtime_register(rt[i], &bank_account) == ESR_OK;
	if (ok && open_accounts(rt[0]) == ESR_OK) {
		for (i = 0; i < RUNTIMES * THREADS; i++) {
			s[i] = (struct submitter){.load = l, .rt = rt[i % RUNTIMES], .seed = 7u + (unsigned)i};
			pthread_create(&s[i].thread, NULL, submit, &s[i]);
		}
		*max_lag = watch(l, store, sub, m);
		for (i = 0; i < RUNTIMES * THREADS; i++)
			pthread_join(s[i].thread, NULL);
	} else {
		ok = 0;
	}
	memset(stats, 0, sizeof *stats);
	for (i = 0; i < RUNTIMES; i++) {
		esr_runtime_stats one;

		if (rt[i] && esr_runtime_stop(rt[i]) == ESR_OK &&
		    esr_runtime_stats_get(rt[i], &one) == ESR_OK) {
			stats->conflicts += one.conflicts;
			stats->retries += one.retries;
		}
		esr_runtime_destroy(rt[i]);
	}
	return ok ? 0 : -1;
}

/* --- resuming ------------------------------------------------------------------ */

struct resumed {
	struct read_model *model;
	uint64_t first, count;
};

static esr_status note_resumed(void *ctx, const esr_recorded_event *ev)
{
	struct resumed *r = ctx;

	if (r->count++ == 0)
		r->first = ev->position;
	return project(r->model, ev);
}

/* Appends one more deposit, then subscribes again under the same checkpoint
 * name: the new event must come, and nothing at or below the checkpoint. */
static int resume(esr_store *store, struct read_model *m)
{
	struct command deposit = {DEPOSIT, 1};
	struct resumed r = {m, 0, 0};
	esr_subscription_options o;
	esr_repository *repo = NULL;
	esr_subscription *sub = NULL;
	uint64_t saved = 0, head = 0;
	int ok;

	ok = esr_store_checkpoint_load(store, CHECKPOINT, &saved) == ESR_OK &&
	     esr_repository_open(store, NULL, &repo) == ESR_OK &&
	     esr_repository_register(repo, &bank_account) == ESR_OK &&
	     esr_repository_execute(repo, bank_account.name, "acct-0", 6, &deposit, NULL) == ESR_OK &&
	     esr_store_head(store, &head) == ESR_OK;
	esr_repository_close(repo);
	esr_subscription_options_default(&o);
	o.checkpoint_name = CHECKPOINT;
	ok = ok && esr_subscribe(store, 1, note_resumed, &r, &o, &sub) == ESR_OK &&
	     esr_subscription_wait(sub, head, 60000) == ESR_OK;
	ok = esr_subscription_stop(sub) == ESR_OK && ok;
	ok = ok && (r.count == 0 || r.first > saved) && m->position == head;
	printf("resumed from checkpoint %" PRIu64 ": %" PRIu64 " event%s delivered, the first at %"
	       PRIu64 " (%s)\n", saved, r.count, r.count == 1 ? "" : "s", r.first,
	       ok ? "nothing old again" : "WRONG");
	return ok;
}

/* --- main ------------------------------------------------------------------------ */

static void report(esr_strategy strategy, const struct load *l, const esr_runtime_stats *rs,
                   const struct read_model *m, uint64_t max_lag, int bad, const char *list,
                   int same)
{
	printf("commands: %" PRIu64 " accepted, %" PRIu64 " rejected, %" PRIu64 " failed\n",
	       (uint64_t)l->accepted, (uint64_t)l->rejected, (uint64_t)l->failed);
	printf("runtimes: %" PRIu64 " conflicts, %" PRIu64 " retries\n", rs->conflicts, rs->retries);
	printf("events: %" PRIu64 ", total money %" PRId64 "\n", m->events, m->total);
	printf("overdrawn accounts: %d%s%s%s\n", bad, bad ? ":" : "", list,
	       strategy == ESR_OPTIMISTIC ? (bad ? " (WRONG under optimistic)" : "")
	                                  : (bad ? " (stale decisions of two writers)" : ""));
	printf("projection: max lag %" PRIu64 " events\n", max_lag);
	printf("read model == replay: %s\n", same ? "yes" : "NO");
}

int main(int argc, char **argv)
{
	const char *spec = argc > 1 ? argv[1] : "memory";
	esr_strategy strategy = ESR_OPTIMISTIC;
	struct load l = {.commands = argc > 3 ? atoi(argv[3]) : 40000};
	struct read_model live, fresh;
	esr_subscription_options o;
	esr_subscription *sub = NULL;
	esr_runtime_stats rs;
	uint64_t head = 0, max_lag = 0;
	char why[256] = "", list[1024];
	esr_store *store;
	int ok, bad, same;

	if ((argc > 2 && esr_strategy_parse(argv[2], &strategy) != ESR_OK) || l.commands <= 0 ||
	    esr_store_open_spec(spec, why, sizeof why, &store) != ESR_OK) {
		fprintf(stderr, "usage: bank_read_model [STORE [optimistic|unchecked [COMMANDS]]]%s%s\n",
		        *why ? ": " : "", why);
		return 2;
	}
	/* The backend's name, not the spec: a conninfo may hold a password. */
	printf("strategy %s, store %s: %d runtimes x %d threads, %d commands on %d accounts\n",
	       esr_strategy_name(strategy), esr_store_name(store), RUNTIMES, THREADS, l.commands,
	       ACCOUNTS);
	model_init(&live);
	model_init(&fresh);
	esr_subscription_options_default(&o);
	o.checkpoint_name = CHECKPOINT;
	/* This model lives in memory and starts empty each run, so its checkpoint
	 * starts at 0 too: one left by an earlier run on a kept store would skip
	 * that run's events. A model kept in a database resumes from both. */
	ok = esr_store_checkpoint_save(store, CHECKPOINT, 0) == ESR_OK &&
	     esr_subscribe(store, 1, project, &live, &o, &sub) == ESR_OK &&
	     run_writers(store, strategy, &l, sub, &live, &rs, &max_lag) == 0 &&
	     esr_store_head(store, &head) == ESR_OK &&
	     esr_subscription_wait(sub, head, 60000) == ESR_OK;
	ok = esr_subscription_stop(sub) == ESR_OK && ok;
	if (!ok || replay(store, &fresh) != ESR_OK) {
		fprintf(stderr, "bank_read_model: the run or the projection failed\n");
		esr_store_close(store);
		return 1;
	}
	same = same_model(&live, &fresh);
	bad = overdrawn(&live, list, sizeof list);
	report(strategy, &l, &rs, &live, max_lag, bad, list, same);
	ok = resume(store, &live) && same && (strategy != ESR_OPTIMISTIC || bad == 0);
	esr_store_close(store);
	return ok ? 0 : 1;
}
