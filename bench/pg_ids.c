/*
 * bench/pg_ids.c: what command ids cost the PostgreSQL store: appends per
 * second with and without ids on the same workload, and the bytes an id
 * takes in the database.
 *
 *   bench_pg_ids CONNINFO [APPENDS [ROUNDS [without]]]
 *
 * Each round runs the workload twice, in a fresh schema each time, first
 * without ids, then with them: APPENDS appends (default 20000) of one event
 * (16 bytes of payload) at any version, round-robin over 1000 streams, up to
 * 1024 in flight from one thread (the store batches them), timed from the
 * first append to the last completion. With ids every append carries one of
 * its own, 16 bytes ("cmd-" and 12 digits), as a host would send a request
 * id. After the last round with ids it reads the sizes: the `commands` table
 * with its index per row, and the events table against the one without
 * ids. Prints one JSON line per run and one for the sizes. Uses, and drops,
 * the schemas "esr_ids_a" and "esr_ids_b". Every wait is bounded (120 s).
 * With `without` it runs only the appends without ids, and reads no sizes:
 * the same workload for a build from before ids, to compare.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include <esr/esr.h>

#define STREAMS 1000
#define WINDOW 1024

struct flight {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned inflight, failed;
};

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void landed(void *ctx, const esr_append_result *r)
{
	struct flight *f = ctx;

	pthread_mutex_lock(&f->lock);
	f->failed += r->status != ESR_OK;
	f->inflight--;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/* Wait until at most `most` appends are in flight; 0 if that took over 120 s. */
static int settle(struct flight *f, unsigned most)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 120;
	pthread_mutex_lock(&f->lock);
	while (f->inflight > most && rc == 0)
		rc = pthread_cond_timedwait(&f->cond, &f->lock, &until);
	pthread_mutex_unlock(&f->lock);
	return rc == 0;
}

static esr_store *open_fresh(const char *conninfo, const char *schema)
{
	esr_pg_store_options o;
	esr_store *s;
	char why[256] = "";

	esr_pg_drop(conninfo, schema, NULL, 0);
	esr_pg_store_options_default(&o);
	o.schema = schema;
	o.why = why;
	o.why_size = sizeof why;
	if (esr_pg_store_open(conninfo, &o, &s) != ESR_OK) {
		fprintf(stderr, "bench_pg_ids: open: %s\n", why);
		exit(1);
	}
	return s;
}

/* One run: appends/s, or a negative number on failure. */
static double run(const char *conninfo, const char *schema, unsigned appends, int ids)
{
	struct flight f = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	esr_store *s = open_fresh(conninfo, schema);
	char payload[16] = "0123456789abcdef", cmd[24], sid_buf[16];
	double t0 = now_s(), took;
	unsigned i;

	for (i = 0; i < appends; i++) {
		esr_event ev = {.type = 1, .payload = payload, .payload_len = sizeof payload};
		esr_stream_id sid = {"Bench", sid_buf, 0};
		sid.id_len = (size_t)snprintf(sid_buf, sizeof sid_buf, "s-%u", i % STREAMS);
		if (ids)
			ev.command_id = (esr_command_id){cmd, (size_t)snprintf(cmd, sizeof cmd,
			                                                        "cmd-%012u", i)};
		if (!settle(&f, WINDOW - 1))
			return -1;
		pthread_mutex_lock(&f.lock);
		f.inflight++;
		pthread_mutex_unlock(&f.lock);
		if (esr_store_append_async(s, &sid, ESR_VERSION_ANY, &ev, 1, landed, &f) != ESR_OK)
			return -1;
	}
	if (!settle(&f, 0) || f.failed > 0)
		return -1;
	took = now_s() - t0;
	esr_store_close(s);
	return appends / took;
}

/* One number from SQL, or -1. */
static double sql_number(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	double v = -1;

	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		v = atof(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static void sizes(const char *conninfo)
{
	PGconn *c = PQconnectdb(conninfo);
	double rows, commands, events_ids, events_none;

	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "bench_pg_ids: %s", PQerrorMessage(c));
		exit(1);
	}
	PQclear(PQexec(c, "VACUUM ANALYZE esr_ids_a.events; VACUUM ANALYZE esr_ids_b.events;"
	                  " VACUUM ANALYZE esr_ids_b.commands"));
	rows = sql_number(c, "SELECT count(*) FROM esr_ids_b.commands");
	commands = sql_number(c, "SELECT pg_total_relation_size('esr_ids_b.commands')");
	events_ids = sql_number(c, "SELECT pg_total_relation_size('esr_ids_b.events')");
	events_none = sql_number(c, "SELECT pg_total_relation_size('esr_ids_a.events')");
	printf("{\"ids\": %.0f, \"commands_bytes_per_id\": %.1f, \"events_bytes_per_event_with_id\":"
	       " %.1f, \"events_bytes_per_event_without\": %.1f}\n", rows, commands / rows,
	       events_ids / rows, events_none / rows);
	PQfinish(c);
}

int main(int argc, char **argv)
{
	unsigned appends = argc > 2 ? (unsigned)atoi(argv[2]) : 20000;
	unsigned rounds = argc > 3 ? (unsigned)atoi(argv[3]) : 2, r;
	int only_without = argc > 4 && strcmp(argv[4], "without") == 0;

	if (argc < 2 || appends < 1 || rounds < 1) {
		fprintf(stderr, "usage: bench_pg_ids CONNINFO [APPENDS [ROUNDS [without]]]\n");
		return 2;
	}
	for (r = 0; r < rounds; r++) {
		double without = run(argv[1], "esr_ids_a", appends, 0);
		double with = only_without ? 0 : run(argv[1], "esr_ids_b", appends, 1);
		if (without < 0 || with < 0) {
			fprintf(stderr, "bench_pg_ids: an append failed or stalled\n");
			return 1;
		}
		printf("{\"round\": %u, \"appends\": %u, \"without_ids_per_s\": %.0f,"
		       " \"with_ids_per_s\": %.0f}\n", r + 1, appends, without, with);
		fflush(stdout);
	}
	if (!only_without)
		sizes(argv[1]);
	esr_pg_drop(argv[1], "esr_ids_a", NULL, 0);
	esr_pg_drop(argv[1], "esr_ids_b", NULL, 0);
	return 0;
}
