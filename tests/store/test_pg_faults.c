/*
 * tests/store/test_pg_faults.c: the PostgreSQL store under connection faults.
 *
 * Two processes, each with two runtimes on one store of its own, run
 * numbered commands on the same 10 aggregates, so every aggregate has four
 * writers: two in one store (their appends to one stream often share a
 * batch) and two behind another store. Meanwhile the parent keeps
 * terminating every client backend (pg_terminate_backend) and, once,
 * restarts the server; and every 7th round trip of each process loses its
 * reply (the store's test hook), so commits in doubt are frequent, not a
 * matter of luck. Each command emits one event carrying its number, and each
 * process reports every command's status and the version it was told.
 * Afterwards every stream is read back:
 *   - versions are contiguous;
 *   - no command's event is there twice (nothing applied twice);
 *   - every command acknowledged ESR_OK is there exactly once, in its
 *     aggregate's stream, at the version it was told (nothing lost, no
 *     outcome borrowed from another append);
 *   - no command reported as not stored (ESR_ECONFLICT, ESR_EIO, any other
 *     error) is there; ESR_EUNKNOWN may go either way, at most once;
 *   - a global read from position 1 finds every stored event once, at
 *     positions without a gap (batches rolled back or sent again left none);
 * and once the faults stop, a command on every aggregate succeeds in every
 * runtime (they recovered by themselves). Both strategies, each in a schema
 * of its own.
 *
 * Then the same faults under appends with command ids, straight to the
 * store: every append carries an id of its own, and whatever fails it
 * (ESR_EIO, ESR_EUNKNOWN: appends may wait only 400 ms, so the restart
 * fails some, in doubt or not; ESR_ECONFLICT for the process at exact
 * versions) is sent again, the same events with the same id, until it
 * completes ESR_OK or ESR_EDUPLICATE. Afterwards every id's events are
 * stored exactly once, at the versions its last answer named.
 *
 * Usage: test_pg_faults [waves]   (default 12 waves of 75 commands per runtime)
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>
#include <libpq-fe.h>

#include <esr/esr.h>

#include "check.h"
#include "pg_env.h"
#include "store/pg/pg_internal.h" /* the lost-reply hook */

#define AGGREGATES 10
#define WAVE 75 /* commands per runtime per wave */
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

#define PROCESSES 2
#define RUNTIMES 2 /* per process, sharing its store */
#define WRITERS (PROCESSES * RUNTIMES)

/* What a process reports of one command. */
struct outcome {
	_Atomic int32_t status; /* -1 until complete */
	uint32_t pad;
	uint64_t version; /* on ESR_OK, the version its event was told it got */
};

struct chaos {
	_Atomic int stop, restart_now, restart_done;
	unsigned terminated, restarts;
};

static void on_done(void *ctx, esr_status status, const esr_result *result)
{
	struct outcome *o = ctx;

	o->version = status == ESR_OK && result != NULL ? result->version : 0;
	atomic_store(&o->status, (int32_t)status);
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
	struct chaos *ch = arg;
	PGconn *c = NULL;

	while (!atomic_load(&ch->stop)) {
		if (atomic_exchange(&ch->restart_now, 0)) {
			if (pg_env_server(&env, "restart") == 0)
				ch->restarts++;
			PQfinish(c);
			c = NULL;
			atomic_store(&ch->restart_done, 1);
		}
		sleep_ms(40 + rand() % 60);
		ch->terminated += terminate_all(&c);
	}
	PQfinish(c);
	return NULL;
}

static void id_of(char *buf, unsigned k)
{
	snprintf(buf, 16, "t-%02u", k);
}

/* Command i of a writer goes to aggregate i % AGGREGATES, whoever writes it. */
static unsigned aggregate_of(uint64_t number, uint64_t per_writer)
{
	return (unsigned)(number % per_writer % AGGREGATES);
}

/* All of len bytes to or from fd (a pipe moves them in pieces). */
static int move_all(int fd, void *buf, size_t len, int out)
{
	char *p = buf;
	ssize_t n;

	while (len > 0) {
		if ((n = out ? write(fd, p, len) : read(fd, p, len)) <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * One process: RUNTIMES runtimes on one store run waves of commands, each
 * wave waiting for the one before (so faults land mid-run). It writes 'O'
 * to `out` once its store is open (the faults begin then), 'P' a third of
 * the way through (the parent restarts the server then); two thirds of the
 * way through it waits for a byte on `go` saying the restart is over, so
 * the restart always lands while the process has commands to run, however
 * fast it is. Then it writes every command's outcome; then, once the parent
 * writes to `go` again (the faults are over), it runs one command per
 * aggregate in every runtime and writes how many failed.
 */
static int child(unsigned p, esr_strategy strategy, const char *schema, unsigned waves,
                 int out, int go)
{
	uint64_t per_writer = (uint64_t)waves * WAVE, i, first;
	size_t records = RUNTIMES * (size_t)per_writer;
	struct outcome *o = calloc(records, sizeof *o);
	uint64_t *numbers = calloc(records, sizeof *numbers);
	esr_runtime *rt[RUNTIMES];
	esr_pg_store_options po;
	esr_pg_store_stats ps;
	esr_runtime_config cfg;
	esr_store *store;
	uint32_t failed = 0;
	char id[16], why[256];
	unsigned r, w, k;

	if (o == NULL || numbers == NULL)
		return 2;
	ck_pr_store_uint(&esr__pg_lose_reply_every, 7);
	esr_pg_store_options_default(&po);
	po.schema = schema;
	po.timeout_ms = 60000; /* longer than a restart: only a lasting outage fails appends */
	po.why = why;
	po.why_size = sizeof why;
	if (esr_pg_store_open(env.conninfo, &po, &store) != ESR_OK) {
		fprintf(stderr, "process %u: open: %s\n", p, why);
		return 2;
	}
	esr_runtime_config_default(&cfg);
	cfg.strategy = strategy;
	cfg.workers = 2;
	for (r = 0; r < RUNTIMES; r++)
		if (esr_runtime_start(&cfg, store, &rt[r]) != ESR_OK ||
		    esr_runtime_register(rt[r], &tally_type) != ESR_OK)
			return 2;
	if (move_all(out, "O", 1, 1) != 0) /* the faults may begin */
		return 2;
	for (i = 0; i < records; i++) {
		numbers[i] = (p * RUNTIMES + i / per_writer) * per_writer + i % per_writer;
		atomic_init(&o[i].status, -1);
	}
	for (w = 0; w < waves; w++) {
		if (w == waves / 3 && move_all(out, "P", 1, 1) != 0)
			return 2;
		if (w == 2 * waves / 3 && move_all(go, id, 1, 0) != 0) /* the restart is over */
			return 2;
		for (r = 0; r < RUNTIMES; r++)
			for (i = (uint64_t)w * WAVE; i < (uint64_t)(w + 1) * WAVE; i++) {
				size_t x = r * (size_t)per_writer + i;
				id_of(id, aggregate_of(i, per_writer));
				if (esr_submit_cb(rt[r], "Tally", id, strlen(id), &numbers[x], on_done,
				                  &o[x]) != ESR_OK)
					atomic_store(&o[x].status, ESR_EINVAL);
			}
		for (r = 0; r < RUNTIMES; r++)
			for (i = (uint64_t)w * WAVE; i < (uint64_t)(w + 1) * WAVE; i++)
				while (atomic_load(&o[r * per_writer + i].status) < 0)
					sleep_ms(1);
	}
	if (move_all(out, o, records * sizeof *o, 1) != 0 || move_all(go, id, 1, 0) != 0)
		return 2;
	ck_pr_store_uint(&esr__pg_lose_reply_every, 0);
	first = (uint64_t)WRITERS * per_writer + (uint64_t)p * RUNTIMES * AGGREGATES;
	for (r = 0; r < RUNTIMES; r++) /* recovered: every aggregate takes a command */
		for (k = 0; k < AGGREGATES; k++) {
			uint64_t n = first + r * AGGREGATES + k;
			esr_result res;
			esr_status st;
			id_of(id, k);
			if ((st = esr_execute(rt[r], "Tally", id, strlen(id), &n, &res)) != ESR_OK) {
				fprintf(stderr, "process %u: after the faults, %s: %s\n", p, id,
				        esr_status_name(st));
				failed++;
			}
		}
	for (r = 0; r < RUNTIMES; r++) {
		esr_runtime_stop(rt[r]);
		esr_runtime_destroy(rt[r]);
	}
	esr_pg_store_stats_get(store, &ps);
	printf("%s: process %u: %llu reconnects, %llu in doubt found committed, %llu sent again,"
	       " %llu failed\n", esr_strategy_name(strategy), p, (unsigned long long)ps.reconnects,
	       (unsigned long long)ps.resolved, (unsigned long long)ps.resent,
	       (unsigned long long)ps.failed);
	fflush(stdout);
	failed += ps.reconnects == 0; /* the faults must have reached it */
	esr_store_close(store);
	free(o);
	free(numbers);
	return move_all(out, &failed, sizeof failed, 1) == 0 ? 0 : 2;
}

struct seen {
	uint8_t *times;   /* per command number */
	uint64_t *at;     /* per command number: the version it is stored at */
	unsigned *in;     /* per command number: the aggregate it is stored in */
	unsigned stream;  /* the aggregate being read */
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
	if (n < s->total && s->times[n] < 255) {
		s->times[n]++;
		s->at[n] = e->version;
		s->in[n] = s->stream;
	}
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

/* Every command's outcome against the streams (outcome[n] is command n's). */
static void verify(esr_store *store, const struct outcome *outcome, uint64_t per_writer,
                   esr_strategy strategy)
{
	uint64_t total = WRITERS * per_writer, i, stored = 0;
	uint64_t ok = 0, conflict = 0, io = 0, unknown = 0, other = 0;
	uint64_t lost = 0, misplaced = 0, failed_stored = 0, twice = 0;
	struct seen s = {calloc(total, 1), calloc(total, sizeof(uint64_t)),
	                 calloc(total, sizeof(unsigned)), 0, 0, total, 0, 0};
	char id[16];
	unsigned k;

	for (k = 0; k < AGGREGATES; k++) {
		esr_stream_id sid = {"Tally", id, 0};
		id_of(id, k);
		sid.id_len = strlen(id);
		s.next = 0;
		s.stream = k;
		CHECK(esr_store_read(store, &sid, 1, visit, &s) == ESR_OK, "read %s", id);
		stored += s.next;
	}
	for (i = 0; i < total; i++) {
		int st = atomic_load(&outcome[i].status);
		twice += s.times[i] > 1;
		if (st == ESR_OK) {
			ok++;
			lost += s.times[i] == 0;
			misplaced += s.times[i] == 1 && (s.at[i] != outcome[i].version ||
			                                 s.in[i] != aggregate_of(i, per_writer));
		} else if (st == ESR_EUNKNOWN) {
			unknown++;
		} else {
			st == ESR_ECONFLICT ? conflict++ : st == ESR_EIO ? io++ : other++;
			failed_stored += s.times[i] != 0;
		}
	}
	printf("%s: %llu commands: %llu ok, %llu ECONFLICT, %llu EIO, %llu EUNKNOWN, %llu other\n",
	       esr_strategy_name(strategy), (unsigned long long)total, (unsigned long long)ok,
	       (unsigned long long)conflict, (unsigned long long)io, (unsigned long long)unknown,
	       (unsigned long long)other);
	CHECK(lost == 0, "%llu commands acknowledged ESR_OK have no event", (unsigned long long)lost);
	CHECK(misplaced == 0, "%llu commands acknowledged ESR_OK were told another version than"
	      " their event's", (unsigned long long)misplaced);
	CHECK(failed_stored == 0, "%llu commands reported as not stored have an event",
	      (unsigned long long)failed_stored);
	CHECK(twice == 0, "%llu commands stored more than once", (unsigned long long)twice);
	CHECK(s.bad_versions == 0, "%llu gaps", (unsigned long long)s.bad_versions);
	CHECK(s.bad_payloads == 0, "%llu bad payloads", (unsigned long long)s.bad_payloads);
	CHECK(other == 0, "%llu commands failed otherwise", (unsigned long long)other);
	CHECK(ok > total / 2, "most commands should succeed despite the faults");
	verify_global(store, stored);
	free(s.times);
	free(s.at);
	free(s.in);
}

static int id_child(unsigned p, const char *schema, unsigned waves, int out, int go);

/* Which children a run forks: the runtime's (child) or the store's with
 * command ids (id_child). */
struct faults_child {
	const char *schema;
	unsigned waves;
	esr_strategy strategy; /* child's */
	int ids;               /* 1: id_child */
};

/*
 * Both runs' choreography: a fresh schema, PROCESSES children forked before
 * any thread of ours (a child gets one), each opened ('O'), the chaos thread
 * started, each started ('P'), the server restarted while they run, and
 * then every child told it may finish ('r'). The caller reads the reports.
 */
static void start_through_restart(const struct faults_child *fc, struct chaos *ch,
                                  int out[PROCESSES][2], int go[PROCESSES][2],
                                  pid_t pid[PROCESSES], pthread_t *t)
{
	unsigned p, waited;
	char why[256], byte;

	CHECK(esr_pg_drop(env.conninfo, fc->schema, why, sizeof why) == ESR_OK, "%s", why);
	CHECK(esr_pg_migrate(env.conninfo, fc->schema, why, sizeof why) == ESR_OK, "%s", why);
	fflush(stdout); /* or the children print it again */
	for (p = 0; p < PROCESSES; p++) {
		if (pipe(out[p]) != 0 || pipe(go[p]) != 0 || (pid[p] = fork()) < 0) {
			CHECK(0, "fork");
			exit(1);
		}
		if (pid[p] == 0) {
			close(out[p][0]);
			close(go[p][1]);
			_exit(fc->ids ? id_child(p, fc->schema, fc->waves, out[p][1], go[p][0])
			              : child(p, fc->strategy, fc->schema, fc->waves, out[p][1],
			                      go[p][0]));
		}
		close(out[p][1]);
		close(go[p][0]);
	}
	for (p = 0; p < PROCESSES; p++)
		CHECK(move_all(out[p][0], &byte, 1, 0) == 0 && byte == 'O', "process %u opened", p);
	pthread_create(t, NULL, chaos, ch);
	for (p = 0; p < PROCESSES; p++)
		CHECK(move_all(out[p][0], &byte, 1, 0) == 0 && byte == 'P', "process %u started", p);
	atomic_store(&ch->restart_now, 1);
	for (waited = 0; !atomic_load(&ch->restart_done) && waited < 120000; waited += 10)
		sleep_ms(10);
	for (p = 0; p < PROCESSES; p++) /* the children may finish now */
		CHECK(write(go[p][1], "r", 1) == 1, "restarted");
}

static void run_strategy(esr_strategy strategy, unsigned waves)
{
	const char *schema = strategy == ESR_OPTIMISTIC ? "t_faults_opt" : "t_faults_unc";
	uint64_t per_writer = (uint64_t)waves * WAVE;
	size_t records = RUNTIMES * (size_t)per_writer;
	struct outcome *outcome = calloc(WRITERS * (size_t)per_writer, sizeof *outcome);
	struct chaos ch = {0, 0, 0, 0, 0};
	int out[PROCESSES][2], go[PROCESSES][2], status;
	pid_t pid[PROCESSES];
	esr_pg_store_options o;
	esr_store *store;
	pthread_t t;
	char why[256];
	unsigned p;

	struct faults_child fc = {schema, waves, strategy, 0};

	start_through_restart(&fc, &ch, out, go, pid, &t);
	for (p = 0; p < PROCESSES; p++)
		CHECK(move_all(out[p][0], outcome + p * records, records * sizeof *outcome, 0) == 0,
		      "process %u reported", p);
	atomic_store(&ch.stop, 1);
	pthread_join(t, NULL);
	printf("%s: %u backends terminated, %u restart(s)\n", esr_strategy_name(strategy),
	       ch.terminated, ch.restarts);
	CHECK(ch.terminated > 0, "the faults must have happened");
	CHECK(ch.restarts == 1, "the server must have restarted once");
	for (p = 0; p < PROCESSES; p++) {
		uint32_t failed = 1;
		CHECK(write(go[p][1], "g", 1) == 1, "go");
		CHECK(move_all(out[p][0], &failed, sizeof failed, 0) == 0 && failed == 0,
		      "process %u: %u failures after the faults (or no reconnect)", p, failed);
		close(out[p][0]);
		close(go[p][1]);
		waitpid(pid[p], &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %u exit", p);
	}
	esr_pg_store_options_default(&o);
	o.schema = schema;
	o.why = why;
	o.why_size = sizeof why;
	if (esr_pg_store_open(env.conninfo, &o, &store) != ESR_OK) {
		CHECK(0, "open: %s", why);
		return;
	}
	verify(store, outcome, per_writer, strategy);
	esr_store_close(store);
	esr_pg_drop(env.conninfo, schema, NULL, 0);
	free(outcome);
}

/* --- command ids: resubmitted until settled ---------------------------------------- */

#define ID_THREADS 3      /* per process, each appending in turn */
#define ID_WAVE 6         /* appends per thread per wave */
#define ID_ATTEMPTS 2000  /* sends of one append at most ... */
#define ID_PATIENCE_MS 60000 /* ... and for at most this long (a restart takes seconds) */

/* What a process reports of one append. */
struct id_outcome {
	int32_t status;   /* the last answer: ESR_OK or ESR_EDUPLICATE when settled */
	uint32_t sends;
	uint64_t first, last; /* the versions that answer named */
};

struct id_counts {
	_Atomic unsigned io, unknown, conflict, resent, duplicate;
};

struct id_thread {
	unsigned p, t, from, to; /* appends [from, to) of this process */
	int checked;             /* exact versions (retrying conflicts), or any */
	esr_store *store;
	struct id_outcome *o;
	struct id_counts *counts;
};

/* Append a (of process p) has number p * 1e6 + a, 1 or 2 events carrying it,
 * id "i-<number>", to stream t-(a % AGGREGATES). */
static unsigned id_events(uint64_t number)
{
	return 1 + (unsigned)(number % 2);
}

static struct id_outcome id_append(struct id_thread *it, uint64_t number, uint64_t *seen)
{
	struct id_outcome o = {ESR_EIO, 0, 0, 0};
	unsigned k = (unsigned)(number % AGGREGATES), n = id_events(number), e;
	char cmd[32], id[16];
	esr_stream_id sid = {"Ided", id, 0};
	esr_event ev[2];
	esr_append_result r;
	struct timespec t0, now;
	esr_status st;

	id_of(id, k);
	sid.id_len = strlen(id);
	for (e = 0; e < n; e++)
		ev[e] = (esr_event){.type = 1, .payload = &number, .payload_len = sizeof number,
		                    .command_id = {cmd, (size_t)snprintf(cmd, sizeof cmd, "i-%llu",
		                                                         (unsigned long long)number)}};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (; o.sends < ID_ATTEMPTS; o.sends++) {
		st = esr_store_append(it->store, &sid, it->checked ? seen[k] : ESR_VERSION_ANY, ev, n, &r);
		if (o.sends > 0)
			atomic_fetch_add(&it->counts->resent, 1);
		if (st == ESR_OK || st == ESR_EDUPLICATE) {
			o.status = (int32_t)st;
			o.last = r.version;
			o.first = st == ESR_OK ? r.version - n + 1 : r.recorded_first;
			atomic_fetch_add(&it->counts->duplicate, st == ESR_EDUPLICATE);
			o.sends++;
			if (r.version > seen[k])
				seen[k] = r.version;
			return o;
		}
		if (st == ESR_ECONFLICT) { /* from where the stream is: then OK or a duplicate */
			atomic_fetch_add(&it->counts->conflict, 1);
			seen[k] = r.version;
			continue;
		}
		atomic_fetch_add(st == ESR_EUNKNOWN ? &it->counts->unknown : &it->counts->io, 1);
		o.status = (int32_t)st;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 >
		    ID_PATIENCE_MS)
			break;
		sleep_ms(5); /* the server may be away: try the same append again */
	}
	return o;
}

static void *id_appender(void *arg)
{
	struct id_thread *it = arg;
	uint64_t seen[AGGREGATES] = {0};
	unsigned a;

	for (a = it->from; a < it->to; a++)
		it->o[a] = id_append(it, (uint64_t)it->p * 1000000u + a, seen);
	return NULL;
}

/*
 * One process: ID_THREADS threads on one store append waves of
 * ID_WAVE each, with the same handshakes with the parent as child() has
 * ('O' when open, 'P' a third of the way, the restart awaited at two
 * thirds); then every append's outcome to `out`.
 */
static int id_child(unsigned p, const char *schema, unsigned waves, int out, int go)
{
	unsigned per_thread = waves * ID_WAVE, total = ID_THREADS * per_thread, w, t;
	struct id_outcome *o = calloc(total, sizeof *o);
	struct id_thread it[ID_THREADS];
	struct id_counts counts;
	pthread_t th[ID_THREADS];
	esr_pg_store_options po;
	esr_store *store;
	char why[256], byte;

	if (o == NULL)
		return 2;
	memset(&counts, 0, sizeof counts);
	ck_pr_store_uint(&esr__pg_lose_reply_every, 7);
	esr_pg_store_options_default(&po);
	po.schema = schema;
	po.timeout_ms = 400; /* short: the restart fails appends, some in doubt */
	po.backoff_max_ms = 50;
	po.why = why;
	po.why_size = sizeof why;
	if (esr_pg_store_open(env.conninfo, &po, &store) != ESR_OK) {
		fprintf(stderr, "process %u: open: %s\n", p, why);
		return 2;
	}
	if (move_all(out, "O", 1, 1) != 0)
		return 2;
	for (w = 0; w < waves; w++) {
		if (w == waves / 3 && move_all(out, "P", 1, 1) != 0)
			return 2;
		if (w == 2 * waves / 3 && move_all(go, &byte, 1, 0) != 0)
			return 2;
		for (t = 0; t < ID_THREADS; t++) {
			it[t] = (struct id_thread){p, t, t * per_thread + w * ID_WAVE,
			                           t * per_thread + (w + 1) * ID_WAVE, p == 0, store, o,
			                           &counts};
			if (pthread_create(&th[t], NULL, id_appender, &it[t]) != 0)
				return 2;
		}
		for (t = 0; t < ID_THREADS; t++)
			pthread_join(th[t], NULL);
	}
	ck_pr_store_uint(&esr__pg_lose_reply_every, 0);
	printf("ids: process %u (%s): %u EIO, %u EUNKNOWN, %u ECONFLICT answers; %u sent again,"
	       " %u settled as duplicates\n", p, p == 0 ? "exact versions" : "any version",
	       counts.io, counts.unknown, counts.conflict, counts.resent, counts.duplicate);
	fflush(stdout);
	esr_store_close(store);
	if (move_all(out, o, total * sizeof *o, 1) != 0)
		return 2;
	free(o);
	return 0;
}

struct id_seen {
	unsigned total, per_process;
	uint8_t *times;
	uint64_t *first, *last;
	uint64_t next, bad_versions, bad_payloads, stored;
};

static esr_status visit_ided(void *ctx, const esr_recorded_event *e)
{
	struct id_seen *s = ctx;
	const esr_command_id *c = &e->event.command_id;
	char want[32];
	uint64_t number;
	unsigned x;

	s->bad_versions += e->version != ++s->next;
	s->stored++;
	if (e->event.payload_len != sizeof number) {
		s->bad_payloads++;
		return ESR_OK;
	}
	memcpy(&number, e->event.payload, sizeof number);
	x = (unsigned)(number / 1000000u) * s->per_process + (unsigned)(number % 1000000u);
	snprintf(want, sizeof want, "i-%llu", (unsigned long long)number);
	if (number % 1000000u >= s->per_process || x >= s->total || c->len != strlen(want) ||
	    memcmp(c->bytes, want, c->len) != 0) {
		s->bad_payloads++;
		return ESR_OK;
	}
	if (s->times[x]++ == 0)
		s->first[x] = e->version;
	s->last[x] = e->version;
	return ESR_OK;
}

/* Every append's events stored once, where its last answer said. */
static void verify_ids(esr_store *store, const struct id_outcome *o, unsigned per_process)
{
	unsigned total = PROCESSES * per_process, x, k, unsettled = 0, wrong = 0, dups = 0;
	struct id_seen s = {total, per_process, calloc(total, 1), calloc(total, sizeof(uint64_t)),
	                    calloc(total, sizeof(uint64_t)), 0, 0, 0, 0};
	char id[16];

	for (k = 0; k < AGGREGATES; k++) {
		esr_stream_id sid = {"Ided", id, 0};
		id_of(id, k);
		sid.id_len = strlen(id);
		s.next = 0;
		CHECK(esr_store_read(store, &sid, 1, visit_ided, &s) == ESR_OK, "read %s", id);
	}
	for (x = 0; x < total; x++) {
		unsigned n = id_events((uint64_t)(x / per_process) * 1000000u + x % per_process);
		if (o[x].status != ESR_OK && o[x].status != ESR_EDUPLICATE) {
			unsettled++;
			continue;
		}
		dups += o[x].status == ESR_EDUPLICATE;
		wrong += s.times[x] != n || s.first[x] != o[x].first || s.last[x] != o[x].last ||
		         s.last[x] != s.first[x] + n - 1;
	}
	printf("ids: %u appends: %u settled ESR_OK, %u ESR_EDUPLICATE; %llu events stored\n",
	       total, total - unsettled - dups, dups, (unsigned long long)s.stored);
	CHECK(unsettled == 0, "%u appends never settled", unsettled);
	CHECK(wrong == 0, "%u appends' events not stored exactly once where they were told",
	      wrong);
	CHECK(s.bad_versions == 0 && s.bad_payloads == 0, "%llu gaps, %llu foreign events",
	      (unsigned long long)s.bad_versions, (unsigned long long)s.bad_payloads);
	verify_global(store, s.stored);
	free(s.times);
	free(s.first);
	free(s.last);
}

static void run_ids(unsigned waves)
{
	const char *schema = "t_faults_ids";
	unsigned per_process = ID_THREADS * waves * ID_WAVE, p;
	struct id_outcome *o = calloc(PROCESSES * (size_t)per_process, sizeof *o);
	struct chaos ch = {0, 0, 0, 0, 0};
	int out[PROCESSES][2], go[PROCESSES][2], status;
	pid_t pid[PROCESSES];
	esr_pg_store_options po;
	esr_store *store;
	pthread_t t;
	char why[256];

	struct faults_child fc = {schema, waves, ESR_OPTIMISTIC, 1};

	start_through_restart(&fc, &ch, out, go, pid, &t);
	for (p = 0; p < PROCESSES; p++) {
		CHECK(move_all(out[p][0], o + p * (size_t)per_process, per_process * sizeof *o, 0) == 0,
		      "process %u reported", p);
		close(out[p][0]);
		close(go[p][1]);
		waitpid(pid[p], &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %u exit", p);
	}
	atomic_store(&ch.stop, 1);
	pthread_join(t, NULL);
	printf("ids: %u backends terminated, %u restart(s)\n", ch.terminated, ch.restarts);
	CHECK(ch.terminated > 0 && ch.restarts == 1, "the faults must have happened");
	esr_pg_store_options_default(&po);
	po.schema = schema;
	po.why = why;
	po.why_size = sizeof why;
	if (esr_pg_store_open(env.conninfo, &po, &store) != ESR_OK) {
		CHECK(0, "open: %s", why);
		free(o);
		return;
	}
	verify_ids(store, o, per_process);
	esr_store_close(store);
	esr_pg_drop(env.conninfo, schema, NULL, 0);
	free(o);
}

int main(int argc, char **argv)
{
	unsigned waves = argc > 1 ? (unsigned)atoi(argv[1]) : 12;
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
	run_ids(waves);
	if (check_failures)
		fprintf(stderr, "test_pg_faults: %d check(s) failed\n", check_failures);
	return check_failures ? 1 : 0;
}
