/*
 * tests/test_pg_faults.c: the PostgreSQL store under connection faults.
 *
 * A runtime runs numbered commands on 40 aggregates through the store while
 * another thread keeps terminating every client backend (pg_terminate_backend)
 * and, once, restarts the server; and every 7th round trip loses its reply
 * after the commit went out (the store's test hook), so commits in doubt
 * are frequent, not a matter of luck. Each command emits one event carrying its
 * number. Afterwards every stream is read back:
 *   - versions are contiguous;
 *   - no command's event is there twice (nothing applied twice);
 *   - every command acknowledged ESR_OK is there exactly once (nothing lost);
 *   - no command that failed with ESR_EIO is there (a failure is a failure);
 *   - a global read from position 1 finds every stored event once, at
 *     positions without a gap (batches rolled back or sent again left none);
 * and once the faults stop, a command on every aggregate succeeds (the
 * runtime recovered by itself). Both strategies, each in a schema of its own.
 *
 * Usage: test_pg_faults [waves]   (default 24 waves of 150 commands)
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ck_pr.h>
#include <libpq-fe.h>

#include <esr/esr.h>

#include "check.h"
#include "pg_env.h"
#include "store/pg_internal.h" /* the lost-reply hook */

#define AGGREGATES 40
#define WAVE 150
#define MAX_WAVES 400

static struct pg_env env;

/* --- the aggregate: a tally of numbered commands -------------------------------- */

struct tally {
	uint64_t count;
};

static void tally_apply(void *state, const esr_event *e)
{
	(void)e;
	((struct tally *)state)->count++;
}

static int tally_handle(const void *state, const void *command, esr_emitter *em)
{
	(void)state;
	return esr_emit(em, 1, command, sizeof(uint64_t)) == ESR_OK ? 0 : 1;
}

static const esr_aggregate_type tally_type = {
	.name = "Tally", .state_size = sizeof(struct tally),
	.apply = tally_apply, .handle = tally_handle,
};

/* --- the run ------------------------------------------------------------------------ */

struct run {
	unsigned waves;
	uint64_t *numbers;         /* the commands: command i is the number i */
	_Atomic int *outcome;      /* its status; -1 until complete */
	_Atomic unsigned pending;
	_Atomic int stop_chaos, restart_now;
	unsigned terminated, restarts;
};

static void on_done(void *ctx, esr_status status, const esr_result *result)
{
	_Atomic int *slot = ctx;
	(void)result;
	atomic_store(slot, (int)status);
}

static void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&t, NULL);
}

static PGconn *admin(void)
{
	PGconn *c = PQconnectdb(env.conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Terminate every other client backend; the number terminated. */
static unsigned terminate_all(PGconn **c)
{
	PGresult *r;
	unsigned n = 0;

	if (*c == NULL && (*c = admin()) == NULL)
		return 0;
	r = PQexec(*c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	               " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()");
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		n = (unsigned)atoi(PQgetvalue(r, 0, 0));
	else {
		PQfinish(*c);
		*c = NULL;
	}
	PQclear(r);
	return n;
}

static void *chaos(void *arg)
{
	struct run *run = arg;
	PGconn *c = NULL;

	while (!atomic_load(&run->stop_chaos)) {
		if (atomic_exchange(&run->restart_now, 0)) {
			if (pg_env_server(&env, "restart") == 0)
				run->restarts++;
			PQfinish(c);
			c = NULL;
		}
		sleep_ms(40 + rand() % 60);
		run->terminated += terminate_all(&c);
	}
	PQfinish(c);
	return NULL;
}

static void id_of(char *buf, unsigned k)
{
	snprintf(buf, 16, "t-%02u", k);
}

/* Submit the waves, each waiting for the one before (so faults land mid-run). */
static void drive(esr_runtime *rt, struct run *run)
{
	uint64_t i, total = (uint64_t)run->waves * WAVE;
	char id[16];
	unsigned w;

	for (w = 0; w < run->waves; w++) {
		if (w == run->waves / 3)
			atomic_store(&run->restart_now, 1);
		for (i = (uint64_t)w * WAVE; i < (uint64_t)(w + 1) * WAVE && i < total; i++) {
			id_of(id, (unsigned)(i % AGGREGATES));
			if (esr_submit_cb(rt, "Tally", id, strlen(id), &run->numbers[i], on_done,
			                  &run->outcome[i]) != ESR_OK)
				atomic_store(&run->outcome[i], ESR_EINVAL);
		}
		for (i = (uint64_t)w * WAVE; i < (uint64_t)(w + 1) * WAVE; i++)
			while (atomic_load(&run->outcome[i]) < 0)
				sleep_ms(1);
	}
}

struct seen {
	uint8_t *times;   /* per command number */
	uint64_t next;    /* the version expected next */
	uint64_t total, bad_versions, bad_payloads;
};

static esr_status visit(void *ctx, const esr_recorded_event *e)
{
	struct seen *s = ctx;
	uint64_t n;

	if (e->version != s->next + 1)
		s->bad_versions++;
	s->next = e->version;
	if (e->event.payload_len != sizeof n) {
		s->bad_payloads++;
		return ESR_OK;
	}
	memcpy(&n, e->event.payload, sizeof n);
	if (n < s->total && s->times[n] < 255)
		s->times[n]++;
	return ESR_OK;
}

struct global {
	uint64_t expect, bad, events;
};

static esr_status visit_global(void *ctx, const esr_recorded_event *e)
{
	struct global *g = ctx;

	g->bad += e->position != g->expect;
	g->expect = e->position + 1;
	g->events++;
	return ESR_OK;
}

/* Positions 1..head, each once, as many as the streams hold. */
static void verify_global(esr_store *store, uint64_t stored)
{
	struct global g = {1, 0, 0};
	uint64_t from = 1, next, head = 0;

	for (;; from = next) {
		CHECK(esr_store_read_all(store, from, 500, visit_global, &g, &next) == ESR_OK,
		      "read_all");
		if (next == from)
			break;
	}
	CHECK(g.bad == 0, "%llu positions out of place", (unsigned long long)g.bad);
	CHECK(g.events == stored, "global read: %llu events, the streams hold %llu",
	      (unsigned long long)g.events, (unsigned long long)stored);
	CHECK(esr_store_head(store, &head) == ESR_OK && head == stored, "head %llu",
	      (unsigned long long)head);
}

static void verify(esr_store *store, struct run *run, esr_strategy strategy)
{
	uint64_t total = (uint64_t)run->waves * WAVE, i, ok = 0, io = 0, unknown = 0, other = 0;
	uint64_t stored = 0;
	struct seen s = {calloc(total, 1), 0, total, 0, 0};
	char id[16];
	unsigned k;

	for (k = 0; k < AGGREGATES; k++) {
		esr_stream_id sid = {"Tally", id, 0};
		id_of(id, k);
		sid.id_len = strlen(id);
		s.next = 0;
		CHECK(esr_store_read(store, &sid, 1, visit, &s) == ESR_OK, "read %s", id);
		stored += s.next;
	}
	for (i = 0; i < total; i++) {
		int st = atomic_load(&run->outcome[i]);
		if (st == ESR_OK) {
			ok++;
			CHECK(s.times[i] == 1, "command %llu acknowledged, stored %u times",
			      (unsigned long long)i, s.times[i]);
		} else if (st == ESR_EUNKNOWN) {
			unknown++;
			CHECK(s.times[i] <= 1, "command %llu stored %u times", (unsigned long long)i, s.times[i]);
		} else {
			st == ESR_EIO ? io++ : other++;
			CHECK(s.times[i] == 0, "command %llu failed (%s) but is stored",
			      (unsigned long long)i, esr_status_name((esr_status)st));
		}
	}
	CHECK(s.bad_versions == 0, "%llu gaps", (unsigned long long)s.bad_versions);
	CHECK(s.bad_payloads == 0, "%llu bad payloads", (unsigned long long)s.bad_payloads);
	printf("%s: %llu commands: %llu ok, %llu EIO, %llu EUNKNOWN, %llu other\n",
	       esr_strategy_name(strategy), (unsigned long long)total, (unsigned long long)ok,
	       (unsigned long long)io, (unsigned long long)unknown, (unsigned long long)other);
	CHECK(ok > total / 2, "most commands should succeed despite the faults");
	verify_global(store, stored);
	free(s.times);
}

static void run_strategy(esr_strategy strategy, unsigned waves)
{
	const char *schema = strategy == ESR_OPTIMISTIC ? "t_faults_opt" : "t_faults_unc";
	uint64_t total = (uint64_t)waves * WAVE, i;
	struct run run = {waves, calloc(total, sizeof(uint64_t)), calloc(total, sizeof(_Atomic int)),
	                  0, 0, 0, 0, 0};
	esr_pg_store_options o;
	esr_pg_store_stats ps;
	esr_runtime_config cfg;
	esr_runtime *rt;
	esr_store *store;
	pthread_t t;
	char why[256], id[16];
	unsigned k;

	for (i = 0; i < total; i++) {
		run.numbers[i] = i;
		atomic_init(&run.outcome[i], -1);
	}
	CHECK(esr_pg_drop(env.conninfo, schema, why, sizeof why) == ESR_OK, "%s", why);
	esr_pg_store_options_default(&o);
	o.schema = schema;
	o.timeout_ms = 60000; /* longer than a restart: only a lasting outage fails appends */
	ck_pr_store_uint(&esr__pg_lose_reply_every, 7);
	o.why = why;
	o.why_size = sizeof why;
	if (esr_pg_store_open(env.conninfo, &o, &store) != ESR_OK) {
		CHECK(0, "open: %s", why);
		return;
	}
	esr_runtime_config_default(&cfg);
	cfg.strategy = strategy;
	cfg.workers = 2;
	CHECK(esr_runtime_start(&cfg, store, &rt) == ESR_OK, "start");
	CHECK(esr_runtime_register(rt, &tally_type) == ESR_OK, "register");
	pthread_create(&t, NULL, chaos, &run);
	drive(rt, &run);
	atomic_store(&run.stop_chaos, 1);
	pthread_join(t, NULL);
	ck_pr_store_uint(&esr__pg_lose_reply_every, 0);
	printf("%s: %u backends terminated, %u restart(s)\n", esr_strategy_name(strategy),
	       run.terminated, run.restarts);
	CHECK(run.terminated > 0, "the faults must have happened");
	CHECK(run.restarts == 1, "the server must have restarted once");
	for (k = 0; k < AGGREGATES; k++) { /* recovered: every aggregate takes a command */
		esr_result res;
		esr_status st;
		uint64_t n = total + k;
		id_of(id, k);
		st = esr_execute(rt, "Tally", id, strlen(id), &n, &res);
		CHECK(st == ESR_OK, "after the faults, %s: %s", id, esr_status_name(st));
	}
	esr_runtime_stop(rt);
	esr_runtime_destroy(rt);
	esr_pg_store_stats_get(store, &ps);
	printf("%s: store: %llu reconnects, %llu in doubt found committed, %llu sent again,"
	       " %llu failed\n", esr_strategy_name(strategy), (unsigned long long)ps.reconnects,
	       (unsigned long long)ps.resolved, (unsigned long long)ps.resent,
	       (unsigned long long)ps.failed);
	CHECK(ps.reconnects > 0, "the store must have reconnected");
	verify(store, &run, strategy);
	esr_store_close(store);
	esr_pg_drop(env.conninfo, schema, NULL, 0);
	free(run.numbers);
	free((void *)run.outcome);
}

int main(int argc, char **argv)
{
	unsigned waves = argc > 1 ? (unsigned)atoi(argv[1]) : 24;
	char why[512];

	if (pg_env_load(&env, why, sizeof why) != 0)
		return pg_env_unavailable(why);
	if (env.script[0] == '\0')
		return pg_env_unavailable("no server script to restart the server with"
		                          " (ESR_PG_CONNINFO alone names a server this test must not restart)");
	if (waves < 3 || waves > MAX_WAVES) {
		fprintf(stderr, "usage: test_pg_faults [waves 3..%d]\n", MAX_WAVES);
		return 2;
	}
	srand((unsigned)time(NULL));
	run_strategy(ESR_OPTIMISTIC, waves);
	run_strategy(ESR_UNCHECKED, waves);
	if (check_failures)
		fprintf(stderr, "test_pg_faults: %d check(s) failed\n", check_failures);
	return check_failures ? 1 : 0;
}
