/*
 * tests/test_store_pg.c: the PostgreSQL store: the whole conformance suite,
 * each test in a schema of its own; then what only this backend has: errors
 * at open, migrations (idempotent, concurrent, refusing a newer schema),
 * batching that keeps one stream's conflict from failing another's append,
 * and two stores (as two processes would be) racing at one expected version.
 *
 * Needs a server: scripts/pg-server.sh starts one for ctest (tests/pg_env.h).
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
#include <ck_pr.h>
#include <libpq-fe.h>

#include <esr/esr.h>

#include "pg_env.h"
#include "store/pg_internal.h" /* the lost-reply test hook */
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

/* A fresh schema for one test of this file, with options. */
static esr_store *open_schema(const char *schema, unsigned connections, unsigned batch_max)
{
	esr_pg_store_options o;
	esr_store *s = NULL;
	char why[256];

	assert_int_equal(esr_pg_drop(env.conninfo, schema, why, sizeof why), ESR_OK);
	esr_pg_store_options_default(&o);
	o.schema = schema;
	o.connections = connections;
	o.batch_max = batch_max;
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
	s = open_schema("t_doubt", 2, 256);
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

int main(void)
{
	const struct store_backend pg = {"postgres", open_fresh, NULL};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_connection_strings_and_servers_are_clear_errors),
		cmocka_unit_test(stores_open_by_selector),
		cmocka_unit_test(migrations_are_idempotent_and_safe_to_race),
		cmocka_unit_test(a_newer_schema_is_refused),
		cmocka_unit_test(one_streams_conflict_does_not_fail_another_in_its_batch),
		cmocka_unit_test(two_stores_racing_at_one_version_never_both_win),
		cmocka_unit_test(commits_in_doubt_are_settled_exactly_once),
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
