/*
 * tests/store/test_store_pg.c: the PostgreSQL store: the whole conformance suite,
 * each test in a schema of its own; then what only this backend has: errors
 * at open, migrations (idempotent, concurrent, refusing a newer schema, a
 * schema 1 upgraded with its events, a schema 4 upgraded to command ids),
 * batching that keeps one stream's conflict, or a duplicate command id, from
 * failing another's append, two stores (as two processes would
 * be) racing at one expected version, positions in commit order without gaps
 * while two stores append and a reader follows, appends made outside a batch,
 * snapshot and checkpoint rows, and waiting at the head.
 *
 * The conformance suite's restart (reopen) opens the same schema again.
 * Needs a server: scripts/pg-server.sh starts one for ctest (tests/fixtures/pg_env.h).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ck_pr.h>
#include <libpq-fe.h>

#include <esr/esr.h>

#include "pg_env.h"
#include "store/pg/pg_internal.h" /* the lost-reply test hook */
#include "store_conformance.h"

static struct pg_env env;
static unsigned schemas; /* conformance schemas made so far: t_conf_1.. */

static void schema_name(char *buf, size_t n, unsigned k)
{
	snprintf(buf, n, "t_conf_%u", k);
}

static esr_status open_fresh(void *arg, esr_store **out)
{
	esr_pg_store_options o;
	char schema[32], why[256];
	esr_status st;

	(void)arg;
	schema_name(schema, sizeof schema, ++schemas);
	if ((st = esr_pg_drop(env.conninfo, schema, why, sizeof why)) != ESR_OK)
		return st;
	esr_pg_store_options_default(&o);
	o.schema = schema;
	o.why = why;
	o.why_size = sizeof why;
	if ((st = esr_pg_store_open(env.conninfo, &o, out)) != ESR_OK)
		fprintf(stderr, "open: %s\n", why);
	return st;
}

/* The conformance suite's restart: close the store and open the schema the
 * last open_fresh made again, as it is. */
static esr_status reopen_last(void *arg, esr_store **store)
{
	esr_pg_store_options o;
	char schema[32], why[256];
	esr_status st;

	(void)arg;
	esr_store_close(*store);
	*store = NULL;
	schema_name(schema, sizeof schema, schemas);
	esr_pg_store_options_default(&o);
	o.schema = schema;
	o.why = why;
	o.why_size = sizeof why;
	if ((st = esr_pg_store_open(env.conninfo, &o, store)) != ESR_OK)
		fprintf(stderr, "reopen: %s\n", why);
	return st;
}

/* A fresh schema (dropped first) opened with options o. */
static esr_store *open_fresh_with(const char *schema, esr_pg_store_options *o)
{
	esr_store *s = NULL;
	char why[256];

	assert_int_equal(esr_pg_drop(env.conninfo, schema, why, sizeof why), ESR_OK);
	o->schema = schema;
	o->why = why;
	o->why_size = sizeof why;
	if (esr_pg_store_open(env.conninfo, o, &s) != ESR_OK)
		fail_msg("open %s: %s", schema, why);
	return s;
}

/* A fresh schema for one test of this file, with options. */
static esr_store *open_schema(const char *schema, unsigned connections, unsigned batch_max)
{
	esr_pg_store_options o;

	esr_pg_store_options_default(&o);
	o.connections = connections;
	o.batch_max = batch_max;
	return open_fresh_with(schema, &o);
}

/*
 * A fresh schema for a fault test that loses replies on purpose: reconnects
 * back off at most 20 ms and an append may wait two minutes, so a slow or
 * loaded machine cannot turn "settled" into a timeout (ESR_EUNKNOWN), which
 * is a correct answer but not what such a test is about.
 */
static esr_store *open_schema_patient(const char *schema, unsigned connections)
{
	esr_pg_store_options o;

	esr_pg_store_options_default(&o);
	o.connections = connections;
	o.timeout_ms = 120000;
	o.backoff_max_ms = 20;
	return open_fresh_with(schema, &o);
}

/* Another store on a schema as it is (migrated at open, nothing dropped). */
static esr_store *open_schema_kept(const char *schema)
{
	esr_pg_store_options o;
	esr_store *s = NULL;
	char why[256];

	esr_pg_store_options_default(&o);
	o.schema = schema;
	o.why = why;
	o.why_size = sizeof why;
	if (esr_pg_store_open(env.conninfo, &o, &s) != ESR_OK)
		fail_msg("open %s: %s", schema, why);
	return s;
}

/* One SQL statement's first value as text ("" if none), through libpq. */
static void sql_value(const char *sql, char *out, size_t n)
{
	PGconn *c = PQconnectdb(env.conninfo);
	PGresult *r;

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	snprintf(out, n, "%s", PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ?
	                           PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	PQfinish(c);
}

/* --- open ------------------------------------------------------------------------ */

static void bad_connection_strings_and_servers_are_clear_errors(void **state)
{
	esr_pg_store_options o;
	esr_store *s = NULL;
	char why[256];

	(void)state;
	esr_pg_store_options_default(&o);
	o.why = why;
	o.why_size = sizeof why;
	assert_int_equal(esr_pg_store_open("host=", &o, NULL), ESR_EINVAL);
	assert_int_equal(esr_pg_store_open(NULL, &o, &s), ESR_EINVAL);
	assert_int_equal(esr_pg_store_open("nonsense without equals", &o, &s), ESR_EINVAL);
	assert_non_null(strstr(why, "bad connection string"));
	assert_int_equal(esr_pg_store_open("host=/nonexistent/esr-socket-dir port=1 connect_timeout=2",
	                                   &o, &s), ESR_EIO);
	assert_non_null(strstr(why, "cannot connect"));
	assert_null(strpbrk(why, "\n\t")); /* one line, whatever libpq wrote */
	assert_null(s);
	o.schema = "Bad-Name";
	assert_int_equal(esr_pg_store_open(env.conninfo, &o, &s), ESR_EINVAL);
	assert_non_null(strstr(why, "schema"));
	esr_pg_store_options_default(&o);
	o.connections = 0;
	assert_int_equal(esr_pg_store_open(env.conninfo, &o, &s), ESR_EINVAL);
	esr_pg_store_options_default(&o);
	o.batch_max = 5000;
	assert_int_equal(esr_pg_store_open(env.conninfo, &o, &s), ESR_EINVAL);
	assert_int_equal(esr_pg_migrate(env.conninfo, "9starts_with_digit", NULL, 0), ESR_EINVAL);
	assert_int_equal(esr_pg_store_options_default(NULL), ESR_EINVAL);
	{
		esr_store *m;
		esr_pg_store_stats st;
		assert_int_equal(esr_memory_store_open(&m), ESR_OK);
		assert_int_equal(esr_pg_store_stats_get(m, &st), ESR_EINVAL);
		esr_store_close(m);
	}
}

/* The selector a host program's configuration gives. */
static void stores_open_by_selector(void **state)
{
	char spec[1100], why[256];
	esr_store *s = NULL;

	(void)state;
	assert_int_equal(esr_store_open_spec("memory", why, sizeof why, &s), ESR_OK);
	assert_string_equal(esr_store_name(s), "memory");
	esr_store_close(s);
	snprintf(spec, sizeof spec, "postgres:%s", env.conninfo);
	assert_int_equal(esr_store_open_spec(spec, why, sizeof why, &s), ESR_OK);
	assert_string_equal(esr_store_name(s), "postgres");
	esr_store_close(s);
	assert_int_equal(esr_store_open_spec("postgres:nonsense", why, sizeof why, &s), ESR_EINVAL);
	assert_non_null(strstr(why, "bad connection string"));
	assert_int_equal(esr_store_open_spec("mysql:x", why, sizeof why, &s), ESR_EINVAL);
	assert_non_null(strstr(why, "expected memory"));
	assert_int_equal(esr_store_open_spec("file:", why, sizeof why, &s), ESR_EINVAL);
	assert_int_equal(esr_store_open_spec(NULL, why, sizeof why, &s), ESR_EINVAL);
	assert_int_equal(esr_store_open_spec("memory", NULL, 0, NULL), ESR_EINVAL);
	esr_pg_drop(env.conninfo, "esr", NULL, 0);
}

/* --- migrations -------------------------------------------------------------------- */

static void *migrate_thread(void *arg)
{
	return (void *)(intptr_t)esr_pg_migrate(env.conninfo, (const char *)arg, NULL, 0);
}

static void migrations_are_idempotent_and_safe_to_race(void **state)
{
	pthread_t t[4];
	char v[32], want[32];
	void *ret;
	int i;

	(void)state;
	assert_int_equal(esr_pg_drop(env.conninfo, "t_migrate", NULL, 0), ESR_OK);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, migrate_thread, "t_migrate"), 0);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], &ret);
		assert_int_equal((intptr_t)ret, ESR_OK);
	}
	assert_int_equal(esr_pg_migrate(env.conninfo, "t_migrate", NULL, 0), ESR_OK);
	sql_value("SELECT count(*) || ':' || max(version) FROM t_migrate.esr_schema", v, sizeof v);
	/* each migration recorded once, up to this build's version */
	snprintf(want, sizeof want, "%d:%d", ESR_PG_SCHEMA_VERSION, ESR_PG_SCHEMA_VERSION);
	assert_string_equal(v, want);
}

static void a_newer_schema_is_refused(void **state)
{
	esr_pg_store_options o;
	esr_store *s = NULL;
	char why[256], v[8];

	(void)state;
	assert_int_equal(esr_pg_drop(env.conninfo, "t_newer", NULL, 0), ESR_OK);
	assert_int_equal(esr_pg_migrate(env.conninfo, "t_newer", NULL, 0), ESR_OK);
	sql_value("INSERT INTO t_newer.esr_schema (version) VALUES (99)", v, sizeof v);
	esr_pg_store_options_default(&o);
	o.schema = "t_newer";
	o.why = why;
	o.why_size = sizeof why;
	assert_int_equal(esr_pg_store_open(env.conninfo, &o, &s), ESR_ENOTSUP);
	assert_non_null(strstr(why, "newer"));
	assert_int_equal(esr_pg_drop(env.conninfo, "t_newer", NULL, 0), ESR_OK);
}

/* --- batching ------------------------------------------------------------------------- */

struct done_count {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned calls;
	esr_append_result results[512];
};

struct done_slot {
	struct done_count *dc;
	unsigned index;
};

static void counted(void *ctx, const esr_append_result *r)
{
	struct done_slot *ds = ctx;

	pthread_mutex_lock(&ds->dc->lock);
	ds->dc->results[ds->index] = *r;
	ds->dc->calls++;
	pthread_cond_broadcast(&ds->dc->cond);
	pthread_mutex_unlock(&ds->dc->lock);
}

/*
 * 400 appends queued at once on one connection, every fourth one with a
 * stale expected version: those conflict, every other one is appended, and
 * the whole lot took far fewer round trips than appends.
 */
static void one_streams_conflict_does_not_fail_another_in_its_batch(void **state)
{
	static struct done_count dc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {{0}}};
	static struct done_slot slots[400];
	esr_store *s = open_schema("t_batch", 1, 256);
	esr_event ev = {.type = 3, .payload = "x", .payload_len = 1};
	esr_pg_store_stats st;
	char ids[400][16];
	unsigned i;

	(void)state;
	for (i = 0; i < 400; i++) { /* every stream at version 1 */
		esr_stream_id sid = {"Account", ids[i], (size_t)snprintf(ids[i], 16, "b-%u", i)};
		assert_int_equal(esr_store_append(s, &sid, 0, &ev, 1, NULL), ESR_OK);
	}
	for (i = 0; i < 400; i++) {
		esr_stream_id sid = {"Account", ids[i], strlen(ids[i])};
		slots[i] = (struct done_slot){&dc, i};
		assert_int_equal(esr_store_append_async(s, &sid, i % 4 == 0 ? 0 : 1, &ev, 1,
		                                        counted, &slots[i]), ESR_OK);
	}
	pthread_mutex_lock(&dc.lock);
	while (dc.calls < 400)
		pthread_cond_wait(&dc.cond, &dc.lock);
	pthread_mutex_unlock(&dc.lock);
	for (i = 0; i < 400; i++) {
		assert_int_equal(dc.results[i].status, i % 4 == 0 ? ESR_ECONFLICT : ESR_OK);
		assert_int_equal(dc.results[i].version, i % 4 == 0 ? 1 : 2);
		if (i % 4 != 0)
			assert_true(dc.results[i].position > 400); /* after the 400 first events */
	}
	assert_int_equal(esr_pg_store_stats_get(s, &st), ESR_OK);
	assert_int_equal(st.appends, 400 + 300);
	assert_int_equal(st.conflicts, 100);
	assert_true(st.round_trips < 400 + 100); /* the async 400 shared round trips */
	esr_store_close(s);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_batch", NULL, 0), ESR_OK);
}

/* --- two stores, one database -------------------------------------------------------- */

struct racer {
	esr_store *s;
	unsigned wins, conflicts;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	esr_stream_id sid = {"Account", "contended", 9};
	esr_event ev = {.type = 1, .payload = "r", .payload_len = 1};
	esr_append_result res;
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < 300; i++) {
		esr_status st = esr_store_append(r->s, &sid, v, &ev, 1, &res);
		if (st == ESR_OK) {
			r->wins++;
			v = res.version;
		} else if (st == ESR_ECONFLICT) {
			r->conflicts++;
			v = res.version; /* the actual version: try from there */
		} else {
			fprintf(stderr, "race: %s\n", esr_strerror(st));
			return NULL;
		}
	}
	return NULL;
}

static esr_status count_versions(void *ctx, const esr_recorded_event *e)
{
	uint64_t *next = ctx;

	if (e->version != *next + 1)
		return ESR_ECORRUPT;
	*next = e->version;
	return ESR_OK;
}

/*
 * Two stores over one database (their own connections and queues, as two
 * processes would have) race at the same expected versions: the database
 * lets exactly one win each version, so the wins add up to the stream's
 * length and the versions are contiguous.
 */
static void two_stores_racing_at_one_version_never_both_win(void **state)
{
	esr_store *a = open_schema("t_race", 2, 256), *b;
	struct racer ra, rb;
	esr_stream_id sid = {"Account", "contended", 9};
	pthread_t ta, tb;
	uint64_t v = 0, next = 0;
	esr_pg_store_options o;

	(void)state;
	esr_pg_store_options_default(&o);
	o.schema = "t_race";
	assert_int_equal(esr_pg_store_open(env.conninfo, &o, &b), ESR_OK);
	ra = (struct racer){a, 0, 0};
	rb = (struct racer){b, 0, 0};
	assert_int_equal(pthread_create(&ta, NULL, race, &ra), 0);
	assert_int_equal(pthread_create(&tb, NULL, race, &rb), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(ra.wins + ra.conflicts, 300);
	assert_int_equal(rb.wins + rb.conflicts, 300);
	assert_int_equal(esr_store_version(a, &sid, &v), ESR_OK);
	assert_int_equal(v, ra.wins + rb.wins);
	assert_int_equal(esr_store_read(b, &sid, 1, count_versions, &next), ESR_OK);
	assert_int_equal(next, v);
	esr_store_close(a);
	esr_store_close(b);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_race", NULL, 0), ESR_OK);
}

/* --- the global order --------------------------------------------------------------- */

/* One SQL command on c; its first value as text into out ("" if none).
 * Returns 0, or -1 with the server's message in out when it fails. */
static int sql_on(PGconn *c, const char *sql, char *out, size_t n)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;

	snprintf(out, n, "%s", !ok ? PQresultErrorMessage(r) :
	         PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
	PQclear(r);
	return ok ? 0 : -1;
}

static PGconn *connect_env(void)
{
	PGconn *c = PQconnectdb(env.conninfo);

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	return c;
}

/* The SQL of one call of `append` in schema `schema`, as a build that sends
 * its own statements (an older one, say) would make it. */
static void append_sql(char *sql, size_t n, const char *schema, const char *id)
{
	snprintf(sql, n, "SELECT r_position FROM %s.append('Account', convert_to('%s', 'UTF8'), -1,"
	         " 7, ARRAY[1]::bigint[], ARRAY['\\x01'::bytea],"
	         " ARRAY['00000000-0000-0000-0000-000000000000']::uuid[],"
	         " ARRAY['00000000-0000-0000-0000-000000000000']::uuid[], ARRAY[0]::bigint[])",
	         schema, id);
}

struct global {
	uint64_t positions[64], versions[64];
	char streams[64][24];
	size_t n;
};

static esr_status keep_global(void *ctx, const esr_recorded_event *e)
{
	struct global *g = ctx;

	if (g->n == 64)
		return ESR_ETOOBIG;
	g->positions[g->n] = e->position;
	g->versions[g->n] = e->version;
	snprintf(g->streams[g->n], sizeof g->streams[0], "%s/%.*s", e->stream.type,
	         (int)e->stream.id_len, (const char *)e->stream.id);
	g->n++;
	return ESR_OK;
}

/*
 * A schema made at version 1, with events an old build wrote (one rolled
 * back, so position 3 is a hole), is upgraded at open: the events keep their
 * positions, the identity is gone, and new events follow the old maximum.
 */
static void schema_1_upgrades_keeping_events_and_positions(void **state)
{
	static const uint64_t want_pos[] = {1, 2, 4, 5}, want_ver[] = {1, 2, 1, 3};
	static const char *const want_stream[] = {"Account/a1", "Account/a1", "Account/a2",
	                                          "Account/a1"};
	struct global g = {.n = 0};
	esr_stream_id a1 = {"Account", "a1", 2};
	esr_event ev = {.type = 1, .payload = "n", .payload_len = 1};
	esr_append_result res;
	PGconn *c = connect_env();
	esr_store *s;
	uint64_t head = 0, next = 0;
	char sql[512], v[256];
	size_t i;

	(void)state;
	assert_int_equal(esr_pg_drop(env.conninfo, "t_v1", NULL, 0), ESR_OK);
	assert_int_equal(esr__pg_migrate_conn_to(c, "t_v1", 1, v, sizeof v), ESR_OK);
	append_sql(sql, sizeof sql, "t_v1", "a1");
	assert_int_equal(sql_on(c, sql, v, sizeof v), 0);
	assert_string_equal(v, "1");
	assert_int_equal(sql_on(c, sql, v, sizeof v), 0);
	assert_string_equal(v, "2");
	assert_int_equal(sql_on(c, "BEGIN", v, sizeof v), 0);
	assert_int_equal(sql_on(c, sql, v, sizeof v), 0);
	assert_string_equal(v, "3");
	assert_int_equal(sql_on(c, "ROLLBACK", v, sizeof v), 0);
	append_sql(sql, sizeof sql, "t_v1", "a2");
	assert_int_equal(sql_on(c, sql, v, sizeof v), 0);
	assert_string_equal(v, "4");
	sql_value("SELECT max(version) FROM t_v1.esr_schema", v, sizeof v);
	assert_string_equal(v, "1");

	s = open_schema_kept("t_v1");
	sql_value("SELECT max(version) FROM t_v1.esr_schema", v, sizeof v);
	assert_int_equal(atoi(v), ESR_PG_SCHEMA_VERSION);
	sql_value("SELECT is_identity FROM information_schema.columns WHERE table_schema = 't_v1'"
	          " AND table_name = 'events' AND column_name = 'position'", v, sizeof v);
	assert_string_equal(v, "NO");
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, 4);
	assert_int_equal(esr_store_append(s, &a1, 2, &ev, 1, &res), ESR_OK);
	assert_int_equal(res.version, 3);
	assert_int_equal(res.position, 5);
	assert_int_equal(esr_store_read_all(s, 1, 100, keep_global, &g, &next), ESR_OK);
	assert_int_equal(g.n, 4);
	assert_int_equal(next, 6);
	for (i = 0; i < g.n; i++) {
		assert_int_equal(g.positions[i], want_pos[i]);
		assert_int_equal(g.versions[i], want_ver[i]);
		assert_string_equal(g.streams[i], want_stream[i]);
	}
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, 5);
	esr_store_close(s);
	PQfinish(c);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_v1", NULL, 0), ESR_OK);
}

/*
 * A schema 2 (one commit token per batch) with events is upgraded at open to
 * a token per append: its events and tokens stay as they were, the store
 * appends after them, and the one-token form of append_batch (an older
 * build's) still works, every append of its batch under that token.
 */
static void schema_2_upgrades_to_a_token_per_append(void **state)
{
	esr_stream_id a1 = {"Account", "a1", 2};
	esr_event ev = {.type = 1, .payload = "n", .payload_len = 1};
	esr_append_result res;
	PGconn *c = connect_env();
	esr_store *s;
	char sql[512], v[256];

	(void)state;
	assert_int_equal(esr_pg_drop(env.conninfo, "t_v2", NULL, 0), ESR_OK);
	assert_int_equal(esr__pg_migrate_conn_to(c, "t_v2", 2, v, sizeof v), ESR_OK);
	append_sql(sql, sizeof sql, "t_v2", "a1"); /* token 7, position 1 */
	assert_int_equal(sql_on(c, sql, v, sizeof v), 0);
	assert_string_equal(v, "1");
	s = open_schema_kept("t_v2");
	sql_value("SELECT max(version) FROM t_v2.esr_schema", v, sizeof v);
	assert_int_equal(atoi(v), ESR_PG_SCHEMA_VERSION);
	assert_int_equal(esr_store_append(s, &a1, 1, &ev, 1, &res), ESR_OK);
	assert_int_equal(res.version, 2);
	assert_int_equal(res.position, 2);
	assert_int_equal(sql_on(c, "SELECT string_agg(r_status || ':' || r_version || ':' ||"
	                        " r_position, ' ') FROM t_v2.append_batch(9,"
	                        " ARRAY['Account', 'Account'],"
	                        " ARRAY[convert_to('a1', 'UTF8'), convert_to('a1', 'UTF8')],"
	                        " ARRAY[2, -1]::bigint[], ARRAY[1, 1]::bigint[], ARRAY[1, 2]::bigint[],"
	                        " ARRAY['\\x01', '\\x02']::bytea[],"
	                        " array_fill('00000000-0000-0000-0000-000000000000'::uuid, ARRAY[2]),"
	                        " array_fill('00000000-0000-0000-0000-000000000000'::uuid, ARRAY[2]),"
	                        " ARRAY[0, 0]::bigint[])", v, sizeof v), 0);
	assert_string_equal(v, "0:3:3 0:4:4");
	sql_value("SELECT string_agg(version || ':' || position || ':' ||"
	          " (commit_token IN (7, 9))::text, ' ' ORDER BY version) FROM t_v2.events",
	          v, sizeof v);
	assert_string_equal(v, "1:1:true 2:2:false 3:3:true 4:4:true");
	esr_store_close(s);
	PQfinish(c);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_v2", NULL, 0), ESR_OK);
}

/* Keeps each event's command id as text ("-" for none), space separated. */
static esr_status keep_ids_text(void *ctx, const esr_recorded_event *e)
{
	char *out = ctx;
	size_t len = strlen(out), n = e->event.command_id.len;

	if (len + n + 2 > 256)
		return ESR_ETOOBIG;
	if (len > 0)
		out[len++] = ' ';
	memcpy(out + len, n ? e->event.command_id.bytes : "-", n ? n : 1);
	out[len + (n ? n : 1)] = '\0';
	return ESR_OK;
}

/*
 * A schema 4 with events is upgraded at open to command ids (schema 5): the
 * old events read back without one, ids are recorded and refused from then
 * on, and schema 4's append_batch (an older build's process) still appends,
 * without ids.
 */
static void schema_4_upgrades_to_command_ids(void **state)
{
	esr_stream_id a1 = {"Account", "a1", 2};
	esr_event ev = {.type = 1, .payload = "n", .payload_len = 1,
	                .command_id = {"cmd-1", 5}};
	esr_append_result res;
	PGconn *c = connect_env();
	uint64_t first = 9, last = 9;
	char sql[512], v[256], ids[256] = "";
	esr_store *s;

	(void)state;
	assert_int_equal(esr_pg_drop(env.conninfo, "t_v4", NULL, 0), ESR_OK);
	assert_int_equal(esr__pg_migrate_conn_to(c, "t_v4", 4, v, sizeof v), ESR_OK);
	append_sql(sql, sizeof sql, "t_v4", "a1");
	assert_int_equal(sql_on(c, sql, v, sizeof v), 0);
	assert_string_equal(v, "1");
	s = open_schema_kept("t_v4");
	sql_value("SELECT max(version) FROM t_v4.esr_schema", v, sizeof v);
	assert_int_equal(atoi(v), ESR_PG_SCHEMA_VERSION);
	assert_int_equal(esr_store_append(s, &a1, 1, &ev, 1, &res), ESR_OK);
	assert_int_equal(res.version, 2);
	assert_int_equal(esr_store_append(s, &a1, ESR_VERSION_ANY, &ev, 1, &res), ESR_EDUPLICATE);
	assert_int_equal(res.recorded_first, 2);
	assert_int_equal(res.version, 2);
	assert_int_equal(sql_on(c, "SELECT string_agg(r_status || ':' || r_version, ' ')"
	                        " FROM t_v4.append_batch(ARRAY[11]::bigint[], ARRAY['Account'],"
	                        " ARRAY[convert_to('a1', 'UTF8')], ARRAY[-1]::bigint[],"
	                        " ARRAY[1]::bigint[], ARRAY[1]::bigint[], ARRAY['\\x01']::bytea[],"
	                        " array_fill('00000000-0000-0000-0000-000000000000'::uuid, ARRAY[1]),"
	                        " array_fill('00000000-0000-0000-0000-000000000000'::uuid, ARRAY[1]),"
	                        " ARRAY[0]::bigint[])", v, sizeof v), 0);
	assert_string_equal(v, "0:3");
	assert_int_equal(esr_store_read(s, &a1, 1, keep_ids_text, ids), ESR_OK);
	assert_string_equal(ids, "- cmd-1 -");
	assert_int_equal(esr_store_command(s, &a1, "cmd-1", 5, &first, &last), ESR_OK);
	assert_int_equal(first, 2);
	assert_int_equal(last, 2);
	sql_value("SELECT count(*) FROM t_v4.commands", v, sizeof v);
	assert_string_equal(v, "1");
	esr_store_close(s);
	PQfinish(c);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_v4", NULL, 0), ESR_OK);
}

/*
 * Two stores (as two processes) append concurrently through their own
 * connections, many appends in flight, while a reader follows with read_all
 * from wherever it got to. If a position could commit after a later one, the
 * reader would step over it and never come back: it must see every position
 * 1..N exactly once, in order, and every stream's versions in order.
 */
#define ORDER_THREADS 4  /* two per store */
#define ORDER_APPENDS 400 /* per thread, of 1 to 3 events */
#define ORDER_WINDOW 32  /* appends in flight per thread */
#define ORDER_STREAMS 12 /* 2 of each thread's own, 4 shared by all */

struct order_tag {
	uint32_t thread, append, event;
};

struct appender {
	esr_store *s;
	unsigned index, inflight, failed;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void order_done(void *ctx, const esr_append_result *r)
{
	struct appender *a = ctx;

	pthread_mutex_lock(&a->lock);
	a->failed += r->status != ESR_OK;
	a->inflight--;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

/* Two appends in six go to one of the thread's own streams, four to shared ones. */
static size_t order_stream(unsigned thread, unsigned i, char *id)
{
	unsigned k = i % 6 < 2 ? thread * 2 + i % 2 : ORDER_THREADS * 2 + i % 4;

	return (size_t)snprintf(id, 16, "o-%u", k);
}

static void *order_append(void *arg)
{
	struct appender *a = arg;
	unsigned i, j;

	for (i = 0; i < ORDER_APPENDS; i++) {
		struct order_tag tags[3];
		esr_event ev[3];
		char id[16];
		esr_stream_id sid = {"Order", id, order_stream(a->index, i, id)};
		unsigned n = 1 + i % 3;

		for (j = 0; j < n; j++) {
			tags[j] = (struct order_tag){a->index, i, j};
			ev[j] = (esr_event){.type = 2, .payload = &tags[j], .payload_len = sizeof tags[j]};
		}
		pthread_mutex_lock(&a->lock);
		while (a->inflight >= ORDER_WINDOW)
			pthread_cond_wait(&a->cond, &a->lock);
		a->inflight++;
		pthread_mutex_unlock(&a->lock);
		if (esr_store_append_async(a->s, &sid, ESR_VERSION_ANY, ev, n, order_done, a) != ESR_OK) {
			pthread_mutex_lock(&a->lock);
			a->inflight--;
			a->failed++;
			pthread_mutex_unlock(&a->lock);
		}
	}
	pthread_mutex_lock(&a->lock);
	while (a->inflight > 0)
		pthread_cond_wait(&a->cond, &a->lock);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

struct follower {
	esr_store *s;
	int stop; /* ck_pr: the appenders are done */
	uint64_t expect, bad_positions, bad_versions, bad_tags, reads;
	uint64_t version[ORDER_STREAMS];
	uint8_t times[ORDER_THREADS][ORDER_APPENDS][3];
};

static esr_status follow_visit(void *ctx, const esr_recorded_event *e)
{
	struct follower *f = ctx;
	struct order_tag t;
	unsigned k;

	f->bad_positions += e->position != f->expect;
	f->expect = e->position + 1;
	if (e->stream.id_len < 3 || sscanf((const char *)e->stream.id + 2, "%u", &k) != 1 ||
	    k >= ORDER_STREAMS || e->event.payload_len != sizeof t) {
		f->bad_tags++;
		return ESR_OK;
	}
	f->bad_versions += e->version != f->version[k] + 1;
	f->version[k] = e->version;
	memcpy(&t, e->event.payload, sizeof t);
	if (t.thread >= ORDER_THREADS || t.append >= ORDER_APPENDS || t.event >= 3)
		f->bad_tags++;
	else
		f->times[t.thread][t.append][t.event]++;
	return ESR_OK;
}

static void *follow(void *arg)
{
	struct follower *f = arg;
	uint64_t from = 1, next;
	int last_round = 0;

	for (;;) {
		int done = ck_pr_load_int(&f->stop);
		if (esr_store_read_all(f->s, from, 97, follow_visit, f, &next) != ESR_OK)
			f->bad_positions++;
		f->reads++;
		if (next == from) {
			if (last_round)
				break;
			last_round = done; /* one more read after the last commit */
			esr_store_wait(f->s, from - 1, 20);
		}
		from = next;
	}
	return NULL;
}

static void positions_follow_commits_without_gaps(void **state)
{
	static struct follower f;
	struct appender a[ORDER_THREADS];
	pthread_t at[ORDER_THREADS], ft;
	esr_store *s[2];
	uint64_t head = 0, events = 0;
	unsigned i, j, k;

	(void)state;
	s[0] = open_schema("t_order", 2, 256);
	s[1] = open_schema_kept("t_order");
	memset(&f, 0, sizeof f);
	f.s = s[0];
	f.expect = 1;
	assert_int_equal(pthread_create(&ft, NULL, follow, &f), 0);
	for (i = 0; i < ORDER_THREADS; i++) {
		a[i] = (struct appender){s[i % 2], i, 0, 0, PTHREAD_MUTEX_INITIALIZER,
		                         PTHREAD_COND_INITIALIZER};
		assert_int_equal(pthread_create(&at[i], NULL, order_append, &a[i]), 0);
	}
	for (i = 0; i < ORDER_THREADS; i++) {
		pthread_join(at[i], NULL);
		assert_int_equal(a[i].failed, 0);
	}
	ck_pr_store_int(&f.stop, 1);
	pthread_join(ft, NULL);
	assert_int_equal(f.bad_positions, 0);
	assert_int_equal(f.bad_versions, 0);
	assert_int_equal(f.bad_tags, 0);
	for (i = 0; i < ORDER_THREADS; i++)
		for (j = 0; j < ORDER_APPENDS; j++)
			for (k = 0; k < 3; k++)
				assert_int_equal(f.times[i][j][k], k <= j % 3 ? 1 : 0);
	for (j = 0; j < ORDER_APPENDS; j++)
		events += (1 + j % 3) * ORDER_THREADS;
	assert_int_equal(f.expect - 1, events);
	assert_int_equal(esr_store_head(s[1], &head), ESR_OK);
	assert_int_equal(head, events);
	printf("    %llu events, followed in %llu reads\n", (unsigned long long)events,
	       (unsigned long long)f.reads);
	esr_store_close(s[0]);
	esr_store_close(s[1]);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_order", NULL, 0), ESR_OK);
}

static void *store_appends(void *arg)
{
	esr_store *s = arg;
	esr_event ev = {.type = 1, .payload = "s", .payload_len = 1};
	char id[16];
	unsigned i;

	for (i = 0; i < 200; i++) {
		esr_stream_id sid = {"Account", id, (size_t)snprintf(id, sizeof id, "s-%u", i % 5)};
		if (esr_store_append(s, &sid, ESR_VERSION_ANY, &ev, 1, NULL) != ESR_OK)
			return (void *)1;
	}
	return NULL;
}

static esr_status count_contiguous(void *ctx, const esr_recorded_event *e)
{
	uint64_t *expect = ctx;

	if (e->position != *expect)
		return ESR_ECORRUPT;
	(*expect)++;
	return ESR_OK;
}

/*
 * Appends that come from SQL (an older build's process, a hand-written
 * script) call `append`, one at a time: each locks the head itself. Mixed
 * with the store's batches they still take contiguous positions, and so
 * does a batch made by hand, whose conflict takes none.
 */
static void appends_outside_a_batch_are_numbered_too(void **state)
{
	esr_store *s = open_schema("t_alone", 2, 256);
	PGconn *c = connect_env();
	uint64_t head = 0, expect = 1, next;
	char sql[512], v[256];
	pthread_t t;
	void *ret;
	unsigned i;

	(void)state;
	append_sql(sql, sizeof sql, "t_alone", "alone");
	assert_int_equal(pthread_create(&t, NULL, store_appends, s), 0);
	for (i = 0; i < 100; i++)
		assert_int_equal(sql_on(c, sql, v, sizeof v), 0);
	pthread_join(t, &ret);
	assert_null(ret);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, 300);

	/* a batch by hand: a conflict (no positions) between two appends */
	assert_int_equal(sql_on(c, "SELECT string_agg(r_status || ':' || r_version || ':' ||"
	                        " r_position, ' ') FROM t_alone.append_batch(5,"
	                        " ARRAY['Account', 'Account', 'Account'],"
	                        " ARRAY[convert_to('h1', 'UTF8'), convert_to('s-0', 'UTF8'),"
	                        " convert_to('h2', 'UTF8')], ARRAY[-1, 0, 0]::bigint[],"
	                        " ARRAY[1, 1, 1]::bigint[], ARRAY[1, 2, 3]::bigint[],"
	                        " ARRAY['\\x01', '\\x02', '\\x03']::bytea[],"
	                        " array_fill('00000000-0000-0000-0000-000000000000'::uuid, ARRAY[3]),"
	                        " array_fill('00000000-0000-0000-0000-000000000000'::uuid, ARRAY[3]),"
	                        " ARRAY[0, 0, 0]::bigint[])", v, sizeof v), 0);
	assert_string_equal(v, "0:1:301 1:40:0 0:1:302");

	assert_int_equal(esr_store_read_all(s, 1, 1000, count_contiguous, &expect, &next), ESR_OK);
	assert_int_equal(expect, 303);
	assert_int_equal(next, 303);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, 302);
	PQfinish(c);
	esr_store_close(s);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_alone", NULL, 0), ESR_OK);
}

/*
 * In SQL, as in the store, only -1 (ESR_VERSION_ANY as a bigint) skips the
 * check. An expected version above INT64_MAX arrives as another negative
 * number: through `append` and through a batch by hand it conflicts with the
 * actual version and stores nothing, before the stream exists and after.
 */
static void only_minus_one_is_any_version_in_sql(void **state)
{
	static const char *const huge[] = {"-2", "-9223372036854775808"};
	static const char batch[] =
		"SELECT string_agg(r_status || ':' || r_version, ' ') FROM t_huge.append_batch(5,"
		" ARRAY['Account', 'Account'], ARRAY[convert_to('h', 'UTF8'), convert_to('g', 'UTF8')],"
		" ARRAY[%s, -1]::bigint[], ARRAY[1, 1]::bigint[], ARRAY[1, 2]::bigint[],"
		" ARRAY['\\x01', '\\x02']::bytea[],"
		" array_fill('00000000-0000-0000-0000-000000000000'::uuid, ARRAY[2]),"
		" array_fill('00000000-0000-0000-0000-000000000000'::uuid, ARRAY[2]),"
		" ARRAY[0, 0]::bigint[])";
	esr_store *s = open_schema("t_huge", 1, 256);
	PGconn *c = connect_env();
	char sql[1024], v[256], want[32];
	size_t i, round;

	(void)state;
	for (round = 0; round < 2; round++) /* absent, then at version 1 */
		for (i = 0; i < 2; i++) {
			snprintf(sql, sizeof sql, "SELECT r_status || ':' || r_version FROM"
			         " t_huge.append('Account', convert_to('h', 'UTF8'), %s, 7,"
			         " ARRAY[1]::bigint[], ARRAY['\\x01'::bytea],"
			         " ARRAY['00000000-0000-0000-0000-000000000000']::uuid[],"
			         " ARRAY['00000000-0000-0000-0000-000000000000']::uuid[],"
			         " ARRAY[0]::bigint[])", huge[i]);
			assert_int_equal(sql_on(c, sql, v, sizeof v), 0);
			snprintf(want, sizeof want, "1:%zu", round);
			assert_string_equal(v, want);
			snprintf(sql, sizeof sql, batch, huge[i]);
			assert_int_equal(sql_on(c, sql, v, sizeof v), 0);
			snprintf(want, sizeof want, "1:%zu 0:%zu", round, round * 2 + i + 1);
			assert_string_equal(v, want);
			sql_on(c, "SELECT count(*) FROM t_huge.events WHERE stream_id = 'h'", v, sizeof v);
			snprintf(want, sizeof want, "%zu", round);
			assert_string_equal(v, want);
			if (round == 0 && i == 1)
				assert_int_equal(sql_on(c, "SELECT t_huge.append('Account', 'h', 0, 7,"
				                        " ARRAY[1]::bigint[], ARRAY['\\x01'::bytea],"
				                        " ARRAY['00000000-0000-0000-0000-000000000000']::uuid[],"
				                        " ARRAY['00000000-0000-0000-0000-000000000000']::uuid[],"
				                        " ARRAY[0]::bigint[])", v, sizeof v), 0);
		}
	PQfinish(c);
	esr_store_close(s);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_huge", NULL, 0), ESR_OK);
}

/* --- snapshots, checkpoints, waiting --------------------------------------------------- */

struct snap_seen {
	unsigned calls;
	uint64_t version;
	uint32_t format, len;
	unsigned char first, last;
};

static esr_status see_snap(void *ctx, const esr_snapshot *snap)
{
	struct snap_seen *c = ctx;
	const unsigned char *d = snap->data;

	c->calls++;
	c->version = snap->version;
	c->format = snap->format;
	c->len = snap->len;
	c->first = snap->len ? d[0] : 0;
	c->last = snap->len ? d[snap->len - 1] : 0;
	return ESR_OK;
}

/*
 * Snapshots and checkpoints are rows of their own tables, saved beside the
 * append batches (no round trip of the writer), kept across a reopen; a
 * snapshot row that does not decode loads as none; any checkpoint up to
 * UINT64_MAX - 1 (UINT64_MAX is no position) comes back as it went.
 */
static void snapshot_and_checkpoint_rows(void **state)
{
	esr_store *s = open_schema("t_snap", 1, 256);
	esr_stream_id sid = {"Account", "snap", 4};
	unsigned char *big = malloc(ESR_SNAPSHOT_MAX);
	esr_snapshot v7 = {7, 3, 5, "seven"}, huge = {9, 1, ESR_SNAPSHOT_MAX, big};
	struct snap_seen c = {0};
	esr_pg_store_stats st;
	uint64_t p = 1;
	char v[64];

	(void)state;
	assert_non_null(big);
	memset(big, 0xab, ESR_SNAPSHOT_MAX);
	big[ESR_SNAPSHOT_MAX - 1] = 0xcd;
	assert_int_equal(esr_store_snapshot_save(s, &sid, &v7), ESR_OK);
	assert_int_equal(esr_store_checkpoint_save(s, "proj.a", 42), ESR_OK);
	assert_int_equal(esr_store_checkpoint_save(s, "top", UINT64_MAX - 1), ESR_OK);
	assert_int_equal(esr_store_checkpoint_save(s, "top", UINT64_MAX), ESR_EINVAL);
	assert_int_equal(esr_pg_store_stats_get(s, &st), ESR_OK);
	assert_int_equal(st.round_trips, 0);
	esr_store_close(s);

	s = open_schema_kept("t_snap");
	assert_int_equal(esr_store_snapshot_load(s, &sid, see_snap, &c), ESR_OK);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.version, 7);
	assert_int_equal(c.format, 3);
	assert_int_equal(c.len, 5);
	assert_int_equal(esr_store_checkpoint_load(s, "proj.a", &p), ESR_OK);
	assert_int_equal(p, 42);
	assert_int_equal(esr_store_checkpoint_load(s, "top", &p), ESR_OK);
	assert_true(p == UINT64_MAX - 1);
	assert_int_equal(esr_store_checkpoint_load(s, "never", &p), ESR_OK);
	assert_int_equal(p, 0);

	sql_value("UPDATE t_snap.snapshots SET format = 0", v, sizeof v);
	c.calls = 0;
	assert_int_equal(esr_store_snapshot_load(s, &sid, see_snap, &c), ESR_OK);
	assert_int_equal(c.calls, 0);
	sql_value("UPDATE t_snap.snapshots SET format = 1, version = -3", v, sizeof v);
	assert_int_equal(esr_store_snapshot_load(s, &sid, see_snap, &c), ESR_OK);
	assert_int_equal(c.calls, 0);

	assert_int_equal(esr_store_snapshot_save(s, &sid, &huge), ESR_OK);
	assert_int_equal(esr_store_snapshot_load(s, &sid, see_snap, &c), ESR_OK);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.version, 9);
	assert_int_equal(c.len, ESR_SNAPSHOT_MAX);
	assert_int_equal(c.first, 0xab);
	assert_int_equal(c.last, 0xcd);
	free(big);
	esr_store_close(s);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_snap", NULL, 0), ESR_OK);
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void *append_later(void *arg)
{
	esr_stream_id sid = {"Account", "later", 5};
	esr_event ev = {.type = 1, .payload = "l", .payload_len = 1};

	nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	return (void *)(intptr_t)esr_store_append(arg, &sid, ESR_VERSION_ANY, &ev, 1, NULL);
}

/* A wait at the head sleeps to its timeout, unless this store commits first;
 * one that starts behind this store's last commit returns at once. */
static void a_wait_wakes_when_this_store_commits(void **state)
{
	esr_store *s = open_schema("t_wait", 1, 256);
	uint64_t t0, head = 0;
	pthread_t t;
	void *ret;

	(void)state;
	t0 = now_ms();
	assert_int_equal(esr_store_wait(s, 0, 150), ESR_OK);
	assert_true(now_ms() - t0 >= 140);
	assert_int_equal(pthread_create(&t, NULL, append_later, s), 0);
	t0 = now_ms();
	assert_int_equal(esr_store_wait(s, 0, 10000), ESR_OK);
	assert_true(now_ms() - t0 < 5000);
	pthread_join(t, &ret);
	assert_int_equal((intptr_t)ret, ESR_OK);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, 1);
	t0 = now_ms();
	assert_int_equal(esr_store_wait(s, 0, 10000), ESR_OK);
	assert_true(now_ms() - t0 < 1000);
	esr_store_close(s);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_wait", NULL, 0), ESR_OK);
}

/*
 * Another store on the schema (another process, as far as the server can
 * tell) commits: a wait here ends through the listener's notification, long
 * before its 30 s timeout, and so does a subscription that polls only every
 * 60 s. Its first wait starts the listener, so the other store appends only
 * once this one has been waiting a while.
 */
struct seen {
	pthread_mutex_t lock;
	uint64_t position, at_ms;
};

static esr_status note_event(void *ctx, const esr_recorded_event *ev)
{
	struct seen *s = ctx;

	pthread_mutex_lock(&s->lock);
	s->position = ev->position;
	s->at_ms = now_ms();
	pthread_mutex_unlock(&s->lock);
	return ESR_OK;
}

static void other_stores_commits_wake_waits_and_subscriptions(void **state)
{
	esr_store *s = open_schema("t_notify", 1, 256), *other = open_schema_kept("t_notify");
	struct seen seen = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
	esr_subscription_options so;
	esr_subscription *sub;
	uint64_t t0, head = 0, sent, lag, at = 0;
	pthread_t t;
	void *ret;
	unsigned i;

	(void)state;
	assert_int_equal(esr_store_wait(s, 0, 300), ESR_OK); /* starts the listener */
	assert_int_equal(pthread_create(&t, NULL, append_later, other), 0);
	t0 = now_ms();
	assert_int_equal(esr_store_wait(s, 0, 30000), ESR_OK);
	assert_true(now_ms() - t0 < 5000);
	pthread_join(t, &ret);
	assert_int_equal((intptr_t)ret, ESR_OK);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, 1);

	esr_subscription_options_default(&so);
	so.poll_ms = 60000;
	assert_int_equal(esr_subscribe(s, 2, note_event, &seen, &so, &sub), ESR_OK);
	nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL); /* it waits at the head */
	sent = now_ms();
	assert_int_equal(pthread_create(&t, NULL, append_later, other), 0);
	pthread_join(t, &ret);
	assert_int_equal((intptr_t)ret, ESR_OK);
	for (i = 0; i < 5000 && at == 0; i++) {
		nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
		pthread_mutex_lock(&seen.lock);
		at = seen.position == 2 ? seen.at_ms : 0;
		pthread_mutex_unlock(&seen.lock);
	}
	assert_true(at != 0); /* within 5 s of a 60 s poll */
	lag = at - sent - 100; /* append_later sleeps 100 ms first */
	print_message("notify: a subscription saw another store's append %llu ms after it\n",
	              (unsigned long long)lag);
	esr_subscription_stop(sub);
	esr_store_close(other);
	esr_store_close(s);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_notify", NULL, 0), ESR_OK);
}

/* --- commits in doubt ------------------------------------------------------------ */

#define DOUBT_THREADS 4
#define DOUBT_APPENDS 60

struct doubter {
	esr_store *s;
	unsigned index, failed;
};

/* Each thread: its own stream at exact versions, and a shared one at ANY.
 * Every payload says (thread, append number), so duplicates show. */
static void *doubt(void *arg)
{
	struct doubter *d = arg;
	char own[16];
	esr_stream_id mine = {"Account", own, (size_t)snprintf(own, sizeof own, "own-%u", d->index)};
	esr_stream_id shared = {"Account", "shared", 6};
	esr_append_result res;
	uint32_t tag[2] = {d->index, 0};
	esr_event ev = {.type = 5, .payload = tag, .payload_len = sizeof tag};
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < DOUBT_APPENDS; i++) {
		tag[1] = i;
		if (esr_store_append(d->s, &mine, v, &ev, 1, &res) != ESR_OK ||
		    res.version != v + 1)
			d->failed++;
		v = res.version;
		tag[1] = 1000 + i;
		if (esr_store_append(d->s, &shared, ESR_VERSION_ANY, &ev, 1, &res) != ESR_OK)
			d->failed++;
	}
	return NULL;
}

struct tally_seen {
	unsigned times[DOUBT_THREADS][1000 + DOUBT_APPENDS];
	uint64_t next, gaps;
};

static esr_status tally_seen(void *ctx, const esr_recorded_event *e)
{
	struct tally_seen *t = ctx;
	uint32_t tag[2];

	t->gaps += e->version != ++t->next;
	if (e->event.payload_len != sizeof tag)
		return ESR_ECORRUPT;
	memcpy(tag, e->event.payload, sizeof tag);
	if (tag[0] >= DOUBT_THREADS || tag[1] >= 1000 + DOUBT_APPENDS)
		return ESR_ECORRUPT;
	t->times[tag[0]][tag[1]]++;
	return ESR_OK;
}

/*
 * Every third pipeline loses its reply after the Sync has gone out, so the
 * commit may or may not have happened. Every append must still complete
 * ESR_OK exactly once, at the version it took, and be stored exactly once.
 */
static void commits_in_doubt_are_settled_exactly_once(void **state)
{
	static struct tally_seen seen;
	struct doubter d[DOUBT_THREADS];
	pthread_t t[DOUBT_THREADS];
	esr_pg_store_stats st;
	esr_store *s;
	unsigned i, j;

	(void)state;
	ck_pr_store_uint(&esr__pg_lose_reply_every, 3);
	s = open_schema_patient("t_doubt", 2);
	for (i = 0; i < DOUBT_THREADS; i++) {
		d[i] = (struct doubter){s, i, 0};
		assert_int_equal(pthread_create(&t[i], NULL, doubt, &d[i]), 0);
	}
	for (i = 0; i < DOUBT_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(d[i].failed, 0);
	}
	ck_pr_store_uint(&esr__pg_lose_reply_every, 0);
	for (i = 0; i < DOUBT_THREADS; i++) {
		char own[16];
		esr_stream_id mine = {"Account", own, (size_t)snprintf(own, sizeof own, "own-%u", i)};
		seen.next = 0;
		assert_int_equal(esr_store_read(s, &mine, 1, tally_seen, &seen), ESR_OK);
		assert_int_equal(seen.next, DOUBT_APPENDS);
	}
	seen.next = 0;
	{
		esr_stream_id shared = {"Account", "shared", 6};
		assert_int_equal(esr_store_read(s, &shared, 1, tally_seen, &seen), ESR_OK);
		assert_int_equal(seen.next, DOUBT_THREADS * DOUBT_APPENDS);
	}
	assert_int_equal(seen.gaps, 0);
	{ /* the rolled-back and resent batches left no hole in the positions */
		uint64_t expect = 1, next;
		assert_int_equal(esr_store_read_all(s, 1, 10000, count_contiguous, &expect, &next),
		                 ESR_OK);
		assert_int_equal(expect - 1, 2 * DOUBT_THREADS * DOUBT_APPENDS);
	}
	for (i = 0; i < DOUBT_THREADS; i++)
		for (j = 0; j < DOUBT_APPENDS; j++) {
			assert_int_equal(seen.times[i][j], 1);
			assert_int_equal(seen.times[i][1000 + j], 1);
		}
	assert_int_equal(esr_pg_store_stats_get(s, &st), ESR_OK);
	printf("    %llu round trips, %llu reconnects, %llu in doubt found committed,"
	       " %llu sent again\n", (unsigned long long)st.round_trips,
	       (unsigned long long)st.reconnects, (unsigned long long)st.resolved,
	       (unsigned long long)st.resent);
	assert_true(st.reconnects > 0);
	assert_true(st.resolved + st.resent > 0);
	assert_int_equal(st.failed, 0);
	esr_store_close(s);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_doubt", NULL, 0), ESR_OK);
}

/*
 * Two appends to one stream in one batch whose reply is lost: each must be
 * settled by what it did itself, not by its batch-mate's events. Pairs at
 * expected version 0 (one wins, one conflicts) and pairs at any version (both
 * win, at different versions and positions). All of them must be one batch,
 * so the writer is first held on a blocker append (its head row is locked)
 * while they queue. Then every reply is lost until one append per stream has
 * completed (the hook's third kind, after the answer, guarantees that within
 * three round trips), then the hook is off and the rest settle (a loser's
 * conflict reply would be lost for ever). Each payload names its append, so
 * every ESR_OK must point at its own event (version and position) and no
 * other append may be stored.
 */
#define PAIRS 8

struct paired {
	uint32_t tag;
	uint64_t version, position;
};

static esr_status keep_paired(void *ctx, const esr_recorded_event *e)
{
	struct paired *p = ctx;

	if (e->version < 1 || e->version > 2 || e->event.payload_len != sizeof p->tag)
		return ESR_ECORRUPT;
	memcpy(&p[e->version - 1].tag, e->event.payload, sizeof p->tag);
	p[e->version - 1].version = e->version;
	p[e->version - 1].position = e->position;
	return ESR_OK;
}

static void sql_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);

	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
}

/* Lock the schema's head row from a session of the test's own, and append
 * once: the writer sends that append and waits at the server for the lock. */
static PGconn *hold_writer(esr_store *s, const char *schema, struct done_slot *slot)
{
	PGconn *c = PQconnectdb(env.conninfo);
	esr_stream_id sid = {"Blocker", "b", 1};
	esr_event ev = {.type = 1, .payload = "b", .payload_len = 1};
	char sql[128];
	int waiting = 0, polls;

	assert_int_equal(PQstatus(c), CONNECTION_OK);
	sql_ok(c, "BEGIN");
	snprintf(sql, sizeof sql, "SELECT * FROM \"%s\".head FOR UPDATE", schema);
	sql_ok(c, sql);
	assert_int_equal(esr_store_append_async(s, &sid, ESR_VERSION_ANY, &ev, 1, counted, slot),
	                 ESR_OK);
	for (polls = 0; !waiting; polls++) { /* 1 ms apart, 30 s at most */
		PGresult *r;
		if (polls == 30000)
			fail_msg("the writer never waited for the head row of %s", schema);
		r = PQexec(c, "SELECT count(*) FROM pg_locks WHERE NOT granted");
		assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
		waiting = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
		PQclear(r);
		if (!waiting)
			nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
	}
	return c;
}

static unsigned pairs_in_doubt(uint64_t expected, const char *schema)
{
	static struct done_count dc;
	static struct done_slot slots[2 * PAIRS + 1];
	esr_event ev[2 * PAIRS];
	uint32_t tags[2 * PAIRS];
	char ids[PAIRS][16];
	esr_store *s = open_schema_patient(schema, 1);
	esr_pg_store_stats st;
	unsigned i, k, wrong = 0, ok = 0;
	PGconn *holder;

	memset(&dc, 0, sizeof dc);
	pthread_mutex_init(&dc.lock, NULL);
	pthread_cond_init(&dc.cond, NULL);
	slots[2 * PAIRS] = (struct done_slot){&dc, 2 * PAIRS};
	holder = hold_writer(s, schema, &slots[2 * PAIRS]);
	for (i = 0; i < 2 * PAIRS; i++) {
		esr_stream_id sid = {"Pair", ids[i / 2], (size_t)snprintf(ids[i / 2], 16, "p-%u", i / 2)};
		tags[i] = i;
		ev[i] = (esr_event){.type = 1, .payload = &tags[i], .payload_len = sizeof tags[i]};
		slots[i] = (struct done_slot){&dc, i};
		assert_int_equal(esr_store_append_async(s, &sid, expected, &ev[i], 1, counted,
		                                        &slots[i]), ESR_OK);
	}
	ck_pr_store_uint(&esr__pg_lose_reply_every, 1); /* from the next pipeline: the pairs' */
	sql_ok(holder, "COMMIT");
	PQfinish(holder);
	pthread_mutex_lock(&dc.lock);
	while (dc.calls < 1 + PAIRS) /* the blocker, every winner: a loser's conflict is never heard */
		pthread_cond_wait(&dc.cond, &dc.lock);
	ck_pr_store_uint(&esr__pg_lose_reply_every, 0); /* the rest settle on a calm line */
	while (dc.calls < 1 + 2 * PAIRS)
		pthread_cond_wait(&dc.cond, &dc.lock);
	pthread_mutex_unlock(&dc.lock);
	assert_int_equal(dc.results[2 * PAIRS].status, ESR_OK);
	assert_int_equal(esr_pg_store_stats_get(s, &st), ESR_OK);
	assert_true(st.resolved >= PAIRS); /* the winners were settled in doubt */
	for (k = 0; k < PAIRS; k++) {
		struct paired got[2] = {{UINT32_MAX, 0, 0}, {UINT32_MAX, 0, 0}};
		esr_stream_id sid = {"Pair", ids[k], strlen(ids[k])};
		unsigned stored, acked = 0;
		assert_int_equal(esr_store_read(s, &sid, 1, keep_paired, got), ESR_OK);
		stored = (got[0].version != 0) + (got[1].version != 0);
		for (i = 2 * k; i < 2 * k + 2; i++) {
			const esr_append_result *r = &dc.results[i];
			int mine = (got[0].tag == i) + (got[1].tag == i);
			if (r->status == ESR_OK) {
				acked++;
				wrong += r->version < 1 || r->version > 2 ||
				         got[r->version - 1].tag != i ||
				         got[r->version - 1].position != r->position;
			} else {
				assert_int_equal(r->status, ESR_ECONFLICT);
				assert_int_equal(r->version, 1);
				wrong += mine != 0;
			}
		}
		wrong += acked != stored;
		wrong += expected == 0 ? stored != 1 : stored != 2;
		ok += acked;
	}
	printf("    expected %s: %u of %u acknowledged, %u wrong outcome(s), %llu settled in doubt\n",
	       expected == 0 ? "0" : "any", ok, 2 * PAIRS, wrong,
	       (unsigned long long)st.resolved);
	esr_store_close(s);
	assert_int_equal(esr_pg_drop(env.conninfo, schema, NULL, 0), ESR_OK);
	return wrong;
}

static void appends_to_one_stream_in_one_batch_settle_apart(void **state)
{
	unsigned wrong;

	(void)state;
	wrong = pairs_in_doubt(0, "t_pairs_0");
	wrong += pairs_in_doubt(ESR_VERSION_ANY, "t_pairs_any");
	assert_int_equal(wrong, 0);
}

/*
 * Command ids in one batch: the writer is held (hold_writer) while appends
 * queue, so that they all go in one statement. In it: an id the stream
 * recorded before (a duplicate), the same new id twice on one stream (the
 * first records it, the second is its duplicate), a conflict, and appends
 * with and without ids to other streams around them. Each gets its own
 * outcome; the duplicates and the conflict store nothing and fail nobody
 * else, and the versions after a duplicate follow on without a hole.
 */
static void duplicates_in_a_batch_fail_nobody_else(void **state)
{
	static struct done_count dc;
	static struct done_slot slots[9];
	esr_store *s = open_schema("t_batch_ids", 1, 256);
	esr_stream_id a = {"Account", "a", 1}, b = {"Account", "b", 1}, c = {"Account", "c", 1};
	esr_event ev[3];
	struct {
		const esr_stream_id *sid;
		uint64_t expected;
		const char *id; /* for every event; NULL: none */
		size_t n;
		esr_status want;
		uint64_t version, first;
		uint32_t at;
	} q[] = {
		{&a, ESR_VERSION_ANY, "old", 1, ESR_EDUPLICATE, 2, 1, 0}, /* recorded before */
		{&a, ESR_VERSION_ANY, "new", 2, ESR_OK, 4, 0, 0},
		{&b, 0, "x", 1, ESR_OK, 1, 0, 0},
		{&a, ESR_VERSION_ANY, "new", 1, ESR_EDUPLICATE, 4, 3, 0}, /* in this batch */
		{&a, 4, NULL, 1, ESR_OK, 5, 0, 0},
		{&c, 1, "y", 1, ESR_ECONFLICT, 0, 0, 0},
		{&b, 1, "x", 3, ESR_EDUPLICATE, 1, 1, 0},
		{&a, 5, "z", 1, ESR_OK, 6, 0, 0},
	};
	unsigned i, n = sizeof q / sizeof q[0], k;
	char ids[256] = "";
	PGconn *holder;

	(void)state;
	memset(&dc, 0, sizeof dc);
	pthread_mutex_init(&dc.lock, NULL);
	pthread_cond_init(&dc.cond, NULL);
	for (k = 0; k < 2; k++)
		ev[k] = (esr_event){.type = 1, .payload = "o", .payload_len = 1,
		                    .command_id = {"old", 3}};
	assert_int_equal(esr_store_append(s, &a, 0, ev, 2, NULL), ESR_OK);
	slots[n] = (struct done_slot){&dc, n};
	holder = hold_writer(s, "t_batch_ids", &slots[n]);
	for (i = 0; i < n; i++) {
		for (k = 0; k < q[i].n; k++)
			ev[k] = (esr_event){.type = 2, .payload = "q", .payload_len = 1,
			                    .command_id = {q[i].id, q[i].id ? strlen(q[i].id) : 0}};
		slots[i] = (struct done_slot){&dc, i};
		assert_int_equal(esr_store_append_async(s, q[i].sid, q[i].expected, ev, q[i].n,
		                                        counted, &slots[i]), ESR_OK);
	}
	sql_ok(holder, "COMMIT");
	PQfinish(holder);
	pthread_mutex_lock(&dc.lock);
	while (dc.calls < n + 1)
		pthread_cond_wait(&dc.cond, &dc.lock);
	pthread_mutex_unlock(&dc.lock);
	for (i = 0; i < n; i++) {
		const esr_append_result *r = &dc.results[i];
		if (r->status != q[i].want)
			fail_msg("append %u: %s, expected %s", i, esr_status_name(r->status),
			         esr_status_name(q[i].want));
		if (q[i].want == ESR_ECONFLICT)
			continue;
		assert_int_equal(r->version, q[i].version);
		if (q[i].want == ESR_EDUPLICATE) {
			assert_int_equal(r->recorded_first, q[i].first);
			assert_int_equal(r->duplicate_at, q[i].at);
			assert_int_equal(r->position, 0);
		}
	}
	assert_int_equal(esr_store_read(s, &a, 1, keep_ids_text, ids), ESR_OK);
	assert_string_equal(ids, "old old new new - z");
	ids[0] = '\0';
	assert_int_equal(esr_store_read(s, &b, 1, keep_ids_text, ids), ESR_OK);
	assert_string_equal(ids, "x");
	esr_store_close(s);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_batch_ids", NULL, 0), ESR_OK);
}

/*
 * A server whose append_batch answers with rows the writer cannot trust (a
 * foreign or broken function: one row too many) after it committed. The
 * events are stored; sending again would store them twice and say ESR_EIO.
 * The writer settles such a batch by its tokens instead: ESR_OK, once.
 */
static void a_malformed_answer_after_the_commit_is_settled_not_resent(void **state)
{
	esr_store *s = open_schema("t_malformed", 1, 256);
	esr_stream_id sid = {"Account", "m", 1};
	esr_event ev = {.type = 1, .payload = "p", .payload_len = 1};
	esr_append_result r;
	uint64_t next = 0;
	char out[8];

	(void)state;
	esr_store_close(s);
	sql_value("ALTER FUNCTION t_malformed.append_batch(bigint[], text[], bytea[], bigint[],"
	          " bigint[], bigint[], bytea[], uuid[], uuid[], bigint[], bytea[], bigint[],"
	          " bytea[], bigint[], bigint[])"
	          " RENAME TO append_batch_real;"
	          "CREATE FUNCTION t_malformed.append_batch(p_tokens bigint[],"
	          " p_stream_types text[], p_stream_ids bytea[], p_expected bigint[],"
	          " p_counts bigint[], p_types bigint[], p_payloads bytea[],"
	          " p_correlations uuid[], p_causations uuid[], p_timestamps bigint[],"
	          " p_command_ids bytea[], p_run_appends bigint[], p_run_ids bytea[],"
	          " p_run_firsts bigint[], p_run_lasts bigint[],"
	          " OUT r_status integer, OUT r_version bigint, OUT r_position bigint,"
	          " OUT r_first bigint, OUT r_at bigint)"
	          " RETURNS SETOF record LANGUAGE sql AS $$ SELECT * FROM"
	          " t_malformed.append_batch_real($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
	          " $12, $13, $14, $15)"
	          " UNION ALL SELECT 0, 0::bigint, 0::bigint, 0::bigint, 0::bigint $$",
	          out, sizeof out);
	s = open_schema_kept("t_malformed");
	assert_int_equal(esr_store_append(s, &sid, ESR_VERSION_ANY, &ev, 1, &r), ESR_OK);
	assert_int_equal(r.version, 1);
	assert_int_equal(esr_store_read(s, &sid, 1, count_versions, &next), ESR_OK);
	assert_int_equal(next, 1); /* stored once */
	esr_store_close(s);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_malformed", NULL, 0), ESR_OK);
}

/*
 * timeout_ms holds while the server answers every reconnect too. A trigger
 * fails one append's statement, so the batch is sent again append by append,
 * and every 2nd reply is lost: the one append whose resends all lose their
 * reply (a conflict leaves no token to find) used to be sent for ever.
 * Every append completes, each within about timeout_ms of being queued.
 */
static void a_timeout_holds_while_reconnects_succeed(void **state)
{
	static struct done_slot slots[8];
	static struct done_count dc = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {{0}}};
	esr_store *s = NULL;
	esr_pg_store_options o;
	esr_stream_id S = {"F", "s", 1}, T = {"F", "t", 1};
	esr_event good = {.type = 1, .payload = "ok", .payload_len = 2};
	esr_event bad = {.type = 1, .payload = "\xde\xad", .payload_len = 2};
	struct {
		const esr_stream_id *sid;
		uint64_t expected;
		const esr_event *ev;
	} q[] = {{&S, ESR_VERSION_ANY, &good}, {&S, 1, &good}, {&T, ESR_VERSION_ANY, &bad},
	         {&S, 0, &good}, {&S, ESR_VERSION_ANY, &good}, {&T, 0, &good}, {&S, 2, &good}};
	unsigned i, n = sizeof q / sizeof q[0];
	struct timespec until;
	char why[256], out[8];
	int rc = 0;

	(void)state;
	esr_store_close(open_schema("t_expire", 1, 256));
	sql_value("CREATE FUNCTION t_expire.boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
	          " IF NEW.payload = '\\xdead'::bytea THEN RAISE EXCEPTION 'boom'; END IF;"
	          " RETURN NEW; END $$;"
	          "CREATE TRIGGER boom BEFORE INSERT ON t_expire.events FOR EACH ROW"
	          " EXECUTE FUNCTION t_expire.boom()",
	          out, sizeof out);
	esr_pg_store_options_default(&o);
	o.schema = "t_expire";
	o.connections = 1;
	o.timeout_ms = 1000;
	o.why = why;
	o.why_size = sizeof why;
	if (esr_pg_store_open(env.conninfo, &o, &s) != ESR_OK)
		fail_msg("open t_expire: %s", why);
	ck_pr_store_uint(&esr__pg_lose_reply_every, 2);
	for (i = 0; i < n; i++) {
		slots[i] = (struct done_slot){&dc, i};
		assert_int_equal(esr_store_append_async(s, q[i].sid, q[i].expected, q[i].ev, 1,
		                                        counted, &slots[i]), ESR_OK);
	}
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 60;
	pthread_mutex_lock(&dc.lock);
	while (dc.calls < n && rc == 0)
		rc = pthread_cond_timedwait(&dc.cond, &dc.lock, &until);
	pthread_mutex_unlock(&dc.lock);
	ck_pr_store_uint(&esr__pg_lose_reply_every, 0);
	assert_int_equal(dc.calls, n);
	assert_true(dc.results[2].status != ESR_OK); /* the trigger refuses it */
	esr_store_close(s);
	assert_int_equal(esr_pg_drop(env.conninfo, "t_expire", NULL, 0), ESR_OK);
}

int main(void)
{
	const struct store_backend pg = {"postgres", open_fresh, NULL, reopen_last};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_connection_strings_and_servers_are_clear_errors),
		cmocka_unit_test(stores_open_by_selector),
		cmocka_unit_test(migrations_are_idempotent_and_safe_to_race),
		cmocka_unit_test(a_newer_schema_is_refused),
		cmocka_unit_test(one_streams_conflict_does_not_fail_another_in_its_batch),
		cmocka_unit_test(two_stores_racing_at_one_version_never_both_win),
		cmocka_unit_test(commits_in_doubt_are_settled_exactly_once),
		cmocka_unit_test(appends_to_one_stream_in_one_batch_settle_apart),
		cmocka_unit_test(schema_1_upgrades_keeping_events_and_positions),
		cmocka_unit_test(schema_2_upgrades_to_a_token_per_append),
		cmocka_unit_test(schema_4_upgrades_to_command_ids),
		cmocka_unit_test(duplicates_in_a_batch_fail_nobody_else),
		cmocka_unit_test(positions_follow_commits_without_gaps),
		cmocka_unit_test(appends_outside_a_batch_are_numbered_too),
		cmocka_unit_test(only_minus_one_is_any_version_in_sql),
		cmocka_unit_test(snapshot_and_checkpoint_rows),
		cmocka_unit_test(a_wait_wakes_when_this_store_commits),
		cmocka_unit_test(other_stores_commits_wake_waits_and_subscriptions),
		cmocka_unit_test(a_malformed_answer_after_the_commit_is_settled_not_resent),
		cmocka_unit_test(a_timeout_holds_while_reconnects_succeed),
	};
	char why[512], schema[32];
	int failed;
	unsigned k;

	if (pg_env_load(&env, why, sizeof why) != 0)
		return pg_env_unavailable(why);
	failed = esr_store_conformance_run(&pg);
	failed += cmocka_run_group_tests_name("postgres store", tests, NULL, NULL);
	for (k = 1; k <= schemas; k++) {
		schema_name(schema, sizeof schema, k);
		esr_pg_drop(env.conninfo, schema, NULL, 0);
	}
	return failed;
}
