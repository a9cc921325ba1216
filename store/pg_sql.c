/*
 * store/pg_sql.c: everything the PostgreSQL store says in SQL: the schema
 * and its migrations, the prepared statements, and the binary form of
 * their parameters and results (docs/postgres.md describes the tables).
 *
 * Statements name their tables as "<schema>".streams and so on, never
 * through search_path, so a host's own search_path cannot redirect them. The
 * schema name is checked against a strict pattern before it is spliced in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg_internal.h"

/* Type OIDs (fixed in PostgreSQL's catalog). */
enum { OID_BYTEA = 17, OID_INT8 = 20, OID_INT4 = 23, OID_TEXT = 25, OID_UUID = 2950,
       OID_BYTEA_ARRAY = 1001, OID_INT8_ARRAY = 1016, OID_UUID_ARRAY = 2951 };

/* The advisory lock that serialises migrations, whatever the schema. */
#define MIGRATE_LOCK "7151936482"
/* A batch's state between its statements (migration 2); '~' is the bare
 * schema name (a setting's name takes no quotes). STAGED, transaction-local:
 * the number of events staged so far, '' or unset outside a batch. */
#define STAGED "esr_staged.~"
#define STAGING "pg_temp.esr_staged_~"

/*
 * Migration 1. `streams` holds one row per stream: its version is the gate
 * every append passes (see append() below). `events` holds the events; the
 * primary key on (stream, version) backs the gate up, and `position` is the
 * global order of insertion (gaps where a transaction rolled back). The
 * commit token identifies the transaction that wrote an event, so a client
 * that lost its connection during a commit can learn whether it happened.
 */
static const char migration_1[] =
	"CREATE TABLE @.streams ("
	" stream_type text NOT NULL,"
	" stream_id bytea NOT NULL,"
	" version bigint NOT NULL CHECK (version > 0),"
	" PRIMARY KEY (stream_type, stream_id));"
	"CREATE TABLE @.events ("
	" stream_type text NOT NULL,"
	" stream_id bytea NOT NULL,"
	" version bigint NOT NULL CHECK (version > 0),"
	" position bigint GENERATED ALWAYS AS IDENTITY UNIQUE,"
	" event_type bigint NOT NULL,"
	" payload bytea NOT NULL,"
	" correlation_id uuid NOT NULL,"
	" causation_id uuid NOT NULL,"
	" timestamp_ns bigint NOT NULL,"
	" commit_token bigint NOT NULL,"
	" PRIMARY KEY (stream_type, stream_id, version));"
	/*
	 * append: the gate, then the events, in one statement. p_expected -1
	 * means any version. A conflict is a result (status 1 and the actual
	 * version), not an error, so it never aborts the batch around it.
	 * Under READ COMMITTED an UPDATE that waited for another transaction's
	 * row lock re-checks its WHERE against the row that transaction left,
	 * so two appends at the same expected version cannot both pass.
	 */
	"CREATE FUNCTION @.append(p_type text, p_id bytea, p_expected bigint,"
	" p_token bigint, p_types bigint[], p_payloads bytea[], p_correlations uuid[],"
	" p_causations uuid[], p_timestamps bigint[],"
	" OUT r_status integer, OUT r_version bigint, OUT r_position bigint)"
	" LANGUAGE plpgsql AS $f$"
	" DECLARE n integer := cardinality(p_payloads);"
	" BEGIN"
	"  IF p_expected < 0 THEN"
	"   INSERT INTO @.streams AS s VALUES (p_type, p_id, n)"
	"    ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = s.version + n"
	"    RETURNING s.version INTO r_version;"
	"  ELSIF p_expected = 0 THEN"
	"   INSERT INTO @.streams AS s VALUES (p_type, p_id, n)"
	"    ON CONFLICT (stream_type, stream_id) DO NOTHING RETURNING s.version INTO r_version;"
	"  ELSE"
	"   UPDATE @.streams AS s SET version = s.version + n"
	"    WHERE s.stream_type = p_type AND s.stream_id = p_id AND s.version = p_expected"
	"    RETURNING s.version INTO r_version;"
	"  END IF;"
	"  IF r_version IS NULL THEN"
	"   r_status := 1;"
	"   SELECT s.version INTO r_version FROM @.streams AS s"
	"    WHERE s.stream_type = p_type AND s.stream_id = p_id;"
	"   r_version := coalesce(r_version, 0);"
	"   r_position := 0;"
	"   RETURN;"
	"  END IF;"
	"  r_status := 0;"
	"  WITH ins AS (INSERT INTO @.events (stream_type, stream_id, version, event_type,"
	"    payload, correlation_id, causation_id, timestamp_ns, commit_token)"
	"   SELECT p_type, p_id, r_version - n + e.i, e.t, e.p, e.c, e.k, e.ts, p_token"
	"   FROM unnest(p_types, p_payloads, p_correlations, p_causations, p_timestamps)"
	"    WITH ORDINALITY AS e(t, p, c, k, ts, i)"
	"   RETURNING position)"
	"  SELECT min(position) INTO r_position FROM ins;"
	" END $f$;";

/*
 * Migration 2: positions in commit order, without gaps; snapshots and
 * checkpoints. Identity values are taken at insert, so two transactions can
 * commit out of position order (and a rollback leaves a hole): a reader that
 * has seen position 12 from the second may never look back for 11, which the
 * first commits a moment later. Now `head` holds the last position handed
 * out, and a transaction takes positions only while it holds the lock on
 * head's one row, which it keeps to its commit: positions follow commits,
 * and a rollback takes its positions back.
 *
 * The lock is taken as late as possible, so that batches overlap in all
 * their other work. A batch is begin_batch(), its appends, end_batch(). In a
 * batch, an append passes its stream row's gate and stages its events in a
 * temporary table, numbered from 1 across the batch (its r_position counts
 * from there); end_batch() then locks the head once, moves the staged events
 * into `events` at head + their number, writes the head back and returns the
 * head it started from, which the client adds. An append outside a batch
 * locks the head itself, after its stream row. Either way a transaction
 * locks stream rows first and the head last, and holds no further lock
 * after the head, so none can wait for another in a cycle. Positions written
 * under schema 1 stay as they were; the head starts at their maximum.
 */
static const char migration_2[] =
	"ALTER TABLE @.events ALTER COLUMN position DROP IDENTITY;"
	"CREATE TABLE @.head (position bigint NOT NULL);"
	"INSERT INTO @.head SELECT coalesce(max(position), 0) FROM @.events;"
	"CREATE TABLE @.snapshots (stream_type text NOT NULL, stream_id bytea NOT NULL,"
	" version bigint NOT NULL, format integer NOT NULL, data bytea NOT NULL,"
	" PRIMARY KEY (stream_type, stream_id));"
	"CREATE TABLE @.checkpoints (name text PRIMARY KEY, position bigint NOT NULL);"
	/* The staging table is the session's own, emptied at every commit. */
	"CREATE FUNCTION @.begin_batch() RETURNS void LANGUAGE plpgsql AS $f$"
	" BEGIN"
	"  IF current_setting('" STAGED "', true) <> '' THEN"
	"   RAISE EXCEPTION 'esr: a batch is already open';"
	"  END IF;"
	"  IF to_regclass('" STAGING "') IS NULL THEN"
	"   CREATE TEMPORARY TABLE " STAGING " (number bigint NOT NULL, stream_type text NOT NULL,"
	"    stream_id bytea NOT NULL, version bigint NOT NULL, event_type bigint NOT NULL,"
	"    payload bytea NOT NULL, correlation_id uuid NOT NULL, causation_id uuid NOT NULL,"
	"    timestamp_ns bigint NOT NULL, commit_token bigint NOT NULL) ON COMMIT DELETE ROWS;"
	"  END IF;"
	"  PERFORM set_config('" STAGED "', '0', true);"
	" END $f$;"
	"CREATE FUNCTION @.end_batch() RETURNS bigint LANGUAGE plpgsql AS $f$"
	" DECLARE staged bigint := nullif(current_setting('" STAGED "', true), '')::bigint;"
	"  h bigint;"
	" BEGIN"
	"  PERFORM set_config('" STAGED "', '', true);"
	"  IF coalesce(staged, 0) = 0 THEN" /* nothing appended: no positions to take */
	"   RETURN 0;"
	"  END IF;"
	"  SELECT position INTO h FROM @.head FOR UPDATE;"
	"  WITH moved AS (DELETE FROM " STAGING " RETURNING *)"
	"   INSERT INTO @.events (stream_type, stream_id, version, position, event_type, payload,"
	"    correlation_id, causation_id, timestamp_ns, commit_token)"
	"   SELECT stream_type, stream_id, version, h + number, event_type, payload,"
	"    correlation_id, causation_id, timestamp_ns, commit_token FROM moved;"
	"  UPDATE @.head SET position = h + staged;"
	"  RETURN h;"
	" END $f$;"
	"CREATE OR REPLACE FUNCTION @.append(p_type text, p_id bytea, p_expected bigint,"
	" p_token bigint, p_types bigint[], p_payloads bytea[], p_correlations uuid[],"
	" p_causations uuid[], p_timestamps bigint[],"
	" OUT r_status integer, OUT r_version bigint, OUT r_position bigint)"
	" LANGUAGE plpgsql AS $f$"
	" DECLARE n integer := cardinality(p_payloads);"
	"  staged bigint := nullif(current_setting('" STAGED "', true), '')::bigint;"
	"  h bigint;"
	" BEGIN"
	"  IF p_expected < 0 THEN"
	"   INSERT INTO @.streams AS s VALUES (p_type, p_id, n)"
	"    ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = s.version + n"
	"    RETURNING s.version INTO r_version;"
	"  ELSIF p_expected = 0 THEN"
	"   INSERT INTO @.streams AS s VALUES (p_type, p_id, n)"
	"    ON CONFLICT (stream_type, stream_id) DO NOTHING RETURNING s.version INTO r_version;"
	"  ELSE"
	"   UPDATE @.streams AS s SET version = s.version + n"
	"    WHERE s.stream_type = p_type AND s.stream_id = p_id AND s.version = p_expected"
	"    RETURNING s.version INTO r_version;"
	"  END IF;"
	"  IF r_version IS NULL THEN"
	"   r_status := 1;"
	"   SELECT s.version INTO r_version FROM @.streams AS s"
	"    WHERE s.stream_type = p_type AND s.stream_id = p_id;"
	"   r_version := coalesce(r_version, 0);"
	"   r_position := 0;"
	"   RETURN;"
	"  END IF;"
	"  r_status := 0;"
	"  IF staged IS NOT NULL THEN" /* in a batch: end_batch numbers them */
	"   INSERT INTO " STAGING " SELECT staged + e.i, p_type, p_id, r_version - n + e.i,"
	"     e.t, e.p, e.c, e.k, e.ts, p_token"
	"    FROM unnest(p_types, p_payloads, p_correlations, p_causations, p_timestamps)"
	"     WITH ORDINALITY AS e(t, p, c, k, ts, i);"
	"   PERFORM set_config('" STAGED "', (staged + n)::text, true);"
	"   r_position := staged + 1;"
	"   RETURN;"
	"  END IF;"
	"  SELECT position INTO h FROM @.head FOR UPDATE;" /* alone: the head, last */
	"  INSERT INTO @.events (stream_type, stream_id, version, position, event_type,"
	"    payload, correlation_id, causation_id, timestamp_ns, commit_token)"
	"   SELECT p_type, p_id, r_version - n + e.i, h + e.i, e.t, e.p, e.c, e.k, e.ts, p_token"
	"   FROM unnest(p_types, p_payloads, p_correlations, p_causations, p_timestamps)"
	"    WITH ORDINALITY AS e(t, p, c, k, ts, i);"
	"  UPDATE @.head SET position = h + n;"
	"  r_position := h + 1;"
	" END $f$;";

static const char *const migrations[] = {migration_1, migration_2};
#define MIGRATIONS (sizeof migrations / sizeof migrations[0])
/* The version a build records is the number of migrations it knows. */
_Static_assert(MIGRATIONS == ESR_PG_SCHEMA_VERSION, "one migration per schema version");

static const char stmt_append[] =
	"SELECT r_status, r_version, r_position FROM @.append($1, $2, $3, $4, $5, $6, $7, $8, $9)";
static const char stmt_read[] =
	"SELECT version, event_type, payload, correlation_id, causation_id, timestamp_ns, position"
	" FROM @.events WHERE stream_type = $1 AND stream_id = $2 AND version >= $3"
	" ORDER BY version";
static const char stmt_version[] =
	"SELECT version FROM @.streams WHERE stream_type = $1 AND stream_id = $2";
/* An in-doubt append's events, by the token of the batch that carried it. */
static const char stmt_find[] =
	"SELECT max(version), min(position) FROM @.events"
	" WHERE stream_type = $1 AND stream_id = $2 AND commit_token = $3";

static const char stmt_all[] =
	"SELECT stream_type, stream_id, version, event_type, payload, correlation_id,"
	" causation_id, timestamp_ns, position FROM @.events WHERE position >= $1"
	" ORDER BY position LIMIT $2";
static const char stmt_head[] = "SELECT position FROM @.head";
/* A batch's first and last statements (see migration 2). */
static const char stmt_begin[] = "SELECT @.begin_batch()";
static const char stmt_end[] = "SELECT @.end_batch()";
static const char stmt_snap_save[] =
	"INSERT INTO @.snapshots VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_type, stream_id)"
	" DO UPDATE SET version = excluded.version, format = excluded.format, data = excluded.data";
static const char stmt_snap_load[] =
	"SELECT version, format, data FROM @.snapshots WHERE stream_type = $1 AND stream_id = $2";
static const char stmt_cp_save[] =
	"INSERT INTO @.checkpoints VALUES ($1, $2) ON CONFLICT (name)"
	" DO UPDATE SET position = excluded.position";
static const char stmt_cp_load[] = "SELECT position FROM @.checkpoints WHERE name = $1";

int pg_schema_valid(const char *schema)
{
	size_t i;

	if (schema == NULL || schema[0] == '\0' || (schema[0] >= '0' && schema[0] <= '9'))
		return 0;
	for (i = 0; schema[i] != '\0'; i++)
		if (i >= PG_SCHEMA_MAX || !((schema[i] >= 'a' && schema[i] <= 'z') ||
		                           (schema[i] >= '0' && schema[i] <= '9') || schema[i] == '_'))
			return 0;
	return 1;
}

/* The template with every '@' replaced by the quoted schema and every '~'
 * by the bare one (pg_schema_valid keeps it to [a-z0-9_]); NULL: no memory. */
static char *expand(const char *tmpl, const char *schema)
{
	size_t marks = 0, slen = strlen(schema), len = strlen(tmpl), i;
	char *out, *o;

	for (i = 0; i < len; i++)
		marks += tmpl[i] == '@' || tmpl[i] == '~';
	if ((out = malloc(len + marks * (slen + 2) + 1)) == NULL)
		return NULL;
	for (o = out, i = 0; i < len; i++) {
		if (tmpl[i] != '@' && tmpl[i] != '~') {
			*o++ = tmpl[i];
			continue;
		}
		if (tmpl[i] == '@')
			*o++ = '"';
		memcpy(o, schema, slen);
		o += slen;
		if (tmpl[i] == '@')
			*o++ = '"';
	}
	*o = '\0';
	return out;
}

void pg_why(char *why, size_t size, const char *what, const char *message)
{
	char *r, *w;

	if (why == NULL || size == 0)
		return;
	snprintf(why, size, "%s: %s", what, message != NULL && message[0] ? message : "no reason given");
	/* libpq's messages span lines ("...\n\tIs the server running...?\n"):
	 * one line, each run of white space one space, none at the end. */
	for (r = w = why; *r != '\0'; r++) {
		if (*r == '\n' || *r == '\t' || *r == ' ') {
			if (w > why && w[-1] != ' ')
				*w++ = ' ';
		} else {
			*w++ = *r;
		}
	}
	while (w > why && w[-1] == ' ')
		w--;
	*w = '\0';
}

/* Run one command (no parameters); ESR_EIO with the server's reason. */
static esr_status exec(PGconn *c, const char *sql, ExecStatusType want, PGresult **keep,
                       char *why, size_t why_size)
{
	PGresult *r = PQexec(c, sql);
	esr_status st = ESR_OK;

	if (r == NULL || PQresultStatus(r) != want) {
		pg_why(why, why_size, "postgres", r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c));
		st = ESR_EIO;
	}
	if (keep != NULL && st == ESR_OK)
		*keep = r;
	else
		PQclear(r);
	return st;
}

static esr_status exec_expanded(PGconn *c, const char *tmpl, const char *schema,
                                char *why, size_t why_size)
{
	char *sql = expand(tmpl, schema);
	esr_status st;

	if (sql == NULL)
		return ESR_ENOMEM;
	st = exec(c, sql, PGRES_COMMAND_OK, NULL, why, why_size);
	free(sql);
	return st;
}

/* The schema version recorded in the database (0: none yet), into *v. */
static esr_status schema_version(PGconn *c, const char *schema, int *v, char *why, size_t n)
{
	PGresult *r = NULL;
	char *sql = expand("SELECT coalesce(max(version), 0) FROM @.esr_schema", schema);
	esr_status st;

	if (sql == NULL)
		return ESR_ENOMEM;
	st = exec(c, sql, PGRES_TUPLES_OK, &r, why, n);
	free(sql);
	if (st == ESR_OK) {
		*v = PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : -1;
		PQclear(r);
	}
	return st;
}

static esr_status migrate_locked(PGconn *c, const char *schema, char *why, size_t n)
{
	esr_status st;
	int v = 0;

	if ((st = exec_expanded(c, "CREATE SCHEMA IF NOT EXISTS @", schema, why, n)) != ESR_OK ||
	    (st = exec_expanded(c, "CREATE TABLE IF NOT EXISTS @.esr_schema (version integer"
	                           " NOT NULL, migrated_at timestamptz NOT NULL DEFAULT now())",
	                        schema, why, n)) != ESR_OK ||
	    (st = schema_version(c, schema, &v, why, n)) != ESR_OK)
		return st;
	if (v < 0 || v > ESR_PG_SCHEMA_VERSION) {
		if (why != NULL && n > 0)
			snprintf(why, n, "postgres: schema \"%s\" is at version %d, newer than this"
			         " build's %d", schema, v, ESR_PG_SCHEMA_VERSION);
		return ESR_ENOTSUP;
	}
	for (; v < (int)MIGRATIONS; v++) {
		char record[64];
		if ((st = exec_expanded(c, migrations[v], schema, why, n)) != ESR_OK)
			return st;
		snprintf(record, sizeof record, "INSERT INTO @.esr_schema (version) VALUES (%d)", v + 1);
		if ((st = exec_expanded(c, record, schema, why, n)) != ESR_OK)
			return st;
	}
	return ESR_OK;
}

esr_status pg_migrate_conn(PGconn *c, const char *schema, char *why, size_t n)
{
	esr_status st;

	if ((st = exec(c, "BEGIN", PGRES_COMMAND_OK, NULL, why, n)) != ESR_OK)
		return st;
	if ((st = exec(c, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", PGRES_TUPLES_OK, NULL,
	               why, n)) == ESR_OK)
		st = migrate_locked(c, schema, why, n);
	if (st == ESR_OK)
		return exec(c, "COMMIT", PGRES_COMMAND_OK, NULL, why, n);
	exec(c, "ROLLBACK", PGRES_COMMAND_OK, NULL, NULL, 0);
	return st;
}

int pg_session_lost(PGconn *c, const PGresult *r)
{
	const char *code = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	if (c == NULL || PQstatus(c) != CONNECTION_OK)
		return 1;
	return code != NULL && (strncmp(code, "08", 2) == 0 || strncmp(code, "57P", 3) == 0);
}

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

void pg_quiet(PGconn *c)
{
	PQsetNoticeProcessor(c, quiet, NULL);
}

esr_status pg_drop_conn(PGconn *c, const char *schema, char *why, size_t n)
{
	return exec_expanded(c, "DROP SCHEMA IF EXISTS @ CASCADE", schema, why, n);
}

static esr_status prepare(PGconn *c, const char *name, const char *tmpl, const char *schema,
                          int nparams, const Oid *types, char *why, size_t n)
{
	char *sql = expand(tmpl, schema);
	PGresult *r;
	esr_status st = ESR_OK;

	if (sql == NULL)
		return ESR_ENOMEM;
	r = PQprepare(c, name, sql, nparams, types);
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
		pg_why(why, n, "postgres: prepare", r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c));
		st = ESR_EIO;
	}
	PQclear(r);
	free(sql);
	return st;
}

esr_status pg_prepare(PGconn *c, const char *schema, char *why, size_t n)
{
	static const Oid append[] = {OID_TEXT, OID_BYTEA, OID_INT8, OID_INT8, OID_INT8_ARRAY,
	                             OID_BYTEA_ARRAY, OID_UUID_ARRAY, OID_UUID_ARRAY, OID_INT8_ARRAY};
	static const Oid read[] = {OID_TEXT, OID_BYTEA, OID_INT8};
	static const Oid find[] = {OID_TEXT, OID_BYTEA, OID_INT8};

	static const Oid all[] = {OID_INT8, OID_INT8};
	static const Oid snap[] = {OID_TEXT, OID_BYTEA, OID_INT8, OID_INT4, OID_BYTEA};
	static const Oid cp[] = {OID_TEXT, OID_INT8};
	esr_status st;

	if ((st = prepare(c, PG_STMT_APPEND, stmt_append, schema, 9, append, why, n)) != ESR_OK ||
	    (st = prepare(c, PG_STMT_READ, stmt_read, schema, 3, read, why, n)) != ESR_OK ||
	    (st = prepare(c, PG_STMT_VERSION, stmt_version, schema, 2, read, why, n)) != ESR_OK ||
	    (st = prepare(c, PG_STMT_ALL, stmt_all, schema, 2, all, why, n)) != ESR_OK ||
	    (st = prepare(c, PG_STMT_HEAD, stmt_head, schema, 0, NULL, why, n)) != ESR_OK ||
	    (st = prepare(c, PG_STMT_BEGIN, stmt_begin, schema, 0, NULL, why, n)) != ESR_OK ||
	    (st = prepare(c, PG_STMT_END, stmt_end, schema, 0, NULL, why, n)) != ESR_OK ||
	    (st = prepare(c, PG_STMT_SNAP_SAVE, stmt_snap_save, schema, 5, snap, why, n)) != ESR_OK ||
	    (st = prepare(c, PG_STMT_SNAP_LOAD, stmt_snap_load, schema, 2, snap, why, n)) != ESR_OK ||
	    (st = prepare(c, PG_STMT_CP_SAVE, stmt_cp_save, schema, 2, cp, why, n)) != ESR_OK ||
	    (st = prepare(c, PG_STMT_CP_LOAD, stmt_cp_load, schema, 1, cp, why, n)) != ESR_OK)
		return st;
	return prepare(c, PG_STMT_FIND, stmt_find, schema, 3, find, why, n);
}

/* --- binary parameters and results ------------------------------------------ */

uint64_t pg_get64(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | u[i];
	return v;
}

uint32_t pg_get32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

void pg_put64(char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (char)(v & 0xff);
}

void pg_put32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

/*
 * A one-dimensional array in PostgreSQL's binary form: dimensions 1, no
 * nulls, the element type, n elements from index 1; then per element its
 * length and bytes. Returns the bytes written.
 */
static size_t array_header(char *p, uint32_t elem_oid, uint32_t n)
{
	pg_put32(p, 1);
	pg_put32(p + 4, 0);
	pg_put32(p + 8, elem_oid);
	pg_put32(p + 12, n);
	pg_put32(p + 16, 1);
	return 20;
}

static size_t array_elem(char *p, const void *bytes, uint32_t len)
{
	pg_put32(p, len);
	if (len > 0)
		memcpy(p + 4, bytes, len);
	return 4 + (size_t)len;
}

static size_t array_elem64(char *p, uint64_t v)
{
	pg_put32(p, 8);
	pg_put64(p + 4, v);
	return 12;
}

esr_status pg_params_build(struct pg_params *p, const struct pg_append *a, uint64_t token)
{
	size_t need = 64 + 5 * 20 + (size_t)a->n * (12 + 4 + 20 + 20 + 12), off = 0, start;
	const int scalar[4] = {(int)a->type_len, (int)a->id_len, 8, 8};
	uint32_t i;
	int k;

	for (i = 0; i < a->n; i++)
		need += a->events[i].payload_len;
	if (need > p->cap) {
		char *b = realloc(p->buf, need);
		if (b == NULL)
			return ESR_ENOMEM;
		p->buf = b;
		p->cap = need;
	}
	p->values[0] = a->type;
	p->values[1] = (const char *)a->id;
	pg_put64(p->buf, a->expected == ESR_VERSION_ANY ? (uint64_t)-1 : a->expected);
	pg_put64(p->buf + 8, token);
	p->values[2] = p->buf;
	p->values[3] = p->buf + 8;
	off = 16;
	for (k = 0; k < 4; k++)
		p->lengths[k] = scalar[k];
	for (k = 4; k < 9; k++) {
		start = off;
		off += array_header(p->buf + off, k == 4 || k == 8 ? OID_INT8 : k == 5 ? OID_BYTEA : OID_UUID,
		                    a->n);
		for (i = 0; i < a->n; i++) {
			const esr_event *e = &a->events[i];
			switch (k) {
			case 4: off += array_elem64(p->buf + off, e->type); break;
			case 5: off += array_elem(p->buf + off, e->payload, e->payload_len); break;
			case 6: off += array_elem(p->buf + off, e->meta.correlation_id.bytes, 16); break;
			case 7: off += array_elem(p->buf + off, e->meta.causation_id.bytes, 16); break;
			default: off += array_elem64(p->buf + off, e->meta.timestamp_ns); break;
			}
		}
		p->values[k] = p->buf + start;
		p->lengths[k] = (int)(off - start);
	}
	for (k = 0; k < 9; k++)
		p->formats[k] = 1;
	return ESR_OK;
}

void pg_params_free(struct pg_params *p)
{
	free(p->buf);
	p->buf = NULL;
	p->cap = 0;
}

esr_status pg_append_result(const PGresult *r, struct pg_append *a)
{
	uint32_t status;

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) != 3 ||
	    PQgetlength(r, 0, 0) != 4 || PQgetlength(r, 0, 1) != 8 || PQgetlength(r, 0, 2) != 8)
		return ESR_EIO;
	status = pg_get32(PQgetvalue(r, 0, 0));
	a->result.version = pg_get64(PQgetvalue(r, 0, 1));
	a->result.position = pg_get64(PQgetvalue(r, 0, 2));
	if (status == PG_APPENDED)
		a->result.status = ESR_OK;
	else if (status == PG_CONFLICT)
		a->result.status = ESR_ECONFLICT, a->result.position = 0;
	else
		return ESR_EIO;
	return ESR_OK;
}
