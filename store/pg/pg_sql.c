/*
 * store/pg/pg_sql.c: everything the PostgreSQL store says in SQL: the schema
 * and its migrations, the prepared statements, and the binary form of
 * their parameters and results (docs/postgres.md describes the tables).
 * docs/architecture.md has the map.
 *
 * Statements name their tables as "<schema>".streams and so on, never
 * through search_path, so a host's own search_path cannot redirect them. The
 * schema name is checked against a strict pattern before it is spliced in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "store/pg/pg_internal.h"

/* Type OIDs (fixed in PostgreSQL's catalog). */
enum { OID_BYTEA = 17, OID_INT8 = 20, OID_INT4 = 23, OID_TEXT = 25, OID_UUID = 2950,
       OID_BYTEA_ARRAY = 1001, OID_TEXT_ARRAY = 1009, OID_INT8_ARRAY = 1016,
       OID_UUID_ARRAY = 2951 };

/* The advisory lock that serialises migrations, whatever the schema. */
#define MIGRATE_LOCK "7151936482"

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
 * The lock is taken as late as possible, so that concurrent transactions
 * overlap in all their other work. The writer sends a whole batch as one
 * call of append_batch(): it passes every append's stream row gate (in the
 * order given, which the writer sorts), then moves the head past all its
 * events in one UPDATE (which locks the row) and inserts them at the
 * positions it skipped. `append`,
 * for one append called on its own (an older build, a script), does the
 * same for its one stream. Either way a transaction locks stream rows first
 * and the head last, and waits for nothing once it holds the head, so no two
 * can wait for each other in a cycle. Positions written under schema 1 stay
 * as they were; the head starts at their maximum.
 */
static const char migration_2[] =
	"ALTER TABLE @.events ALTER COLUMN position DROP IDENTITY;"
	"CREATE TABLE @.head (position bigint NOT NULL);"
	"INSERT INTO @.head SELECT coalesce(max(position), 0) FROM @.events;"
	"CREATE TABLE @.snapshots (stream_type text NOT NULL, stream_id bytea NOT NULL,"
	" version bigint NOT NULL, format integer NOT NULL, data bytea NOT NULL,"
	" PRIMARY KEY (stream_type, stream_id));"
	"CREATE TABLE @.checkpoints (name text PRIMARY KEY, position bigint NOT NULL);"
	/*
	 * One row per append, in order: (status, version, first position) as
	 * `append` returns them. p_counts[i] is append i's number of events,
	 * which follow one another in the event arrays.
	 */
	"CREATE FUNCTION @.append_batch(p_token bigint, p_stream_types text[],"
	" p_stream_ids bytea[], p_expected bigint[], p_counts bigint[], p_types bigint[],"
	" p_payloads bytea[], p_correlations uuid[], p_causations uuid[], p_timestamps bigint[],"
	" OUT r_status integer, OUT r_version bigint, OUT r_position bigint)"
	" RETURNS SETOF record LANGUAGE plpgsql AS $f$"
	" DECLARE a record; v bigint; h bigint := 0; taken bigint := 0; before bigint := 0;"
	"  sts integer[] := '{}'; vers bigint[] := '{}'; rels bigint[] := '{}';"
	"  offs bigint[] := '{}';"
	" BEGIN"
	"  FOR a IN SELECT * FROM unnest(p_stream_types, p_stream_ids, p_expected, p_counts)"
	"    WITH ORDINALITY AS u(t, id, x, n, i) ORDER BY u.i LOOP"
	"   v := NULL;"
	"   IF a.x < 0 THEN"
	"    INSERT INTO @.streams AS s VALUES (a.t, a.id, a.n)"
	"     ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = s.version + a.n"
	"     RETURNING s.version INTO v;"
	"   ELSIF a.x = 0 THEN"
	"    INSERT INTO @.streams AS s VALUES (a.t, a.id, a.n)"
	"     ON CONFLICT (stream_type, stream_id) DO NOTHING RETURNING s.version INTO v;"
	"   ELSE"
	"    UPDATE @.streams AS s SET version = s.version + a.n"
	"     WHERE s.stream_type = a.t AND s.stream_id = a.id AND s.version = a.x"
	"     RETURNING s.version INTO v;"
	"   END IF;"
	"   IF v IS NULL THEN" /* a conflict: the actual version, no positions */
	"    SELECT s.version INTO v FROM @.streams AS s"
	"     WHERE s.stream_type = a.t AND s.stream_id = a.id;"
	"    sts := sts || 1; vers := vers || coalesce(v, 0); rels := rels || 0::bigint;"
	"   ELSE"
	"    sts := sts || 0; vers := vers || v; rels := rels || taken + 1;"
	"    taken := taken + a.n;"
	"   END IF;"
	"   offs := offs || before;"
	"   before := before + a.n;"
	"  END LOOP;"
	"  IF taken > 0 THEN" /* the head, last */
	"   UPDATE @.head SET position = position + taken RETURNING position - taken INTO h;"
	"   INSERT INTO @.events (stream_type, stream_id, version, position, event_type, payload,"
	"     correlation_id, causation_id, timestamp_ns, commit_token)"
	"    SELECT b.t, b.id, b.v - b.n + g.q, h + b.r - 1 + g.q, e.et, e.ep, e.ec, e.ek, e.ets,"
	"     p_token"
	"    FROM unnest(p_stream_types, p_stream_ids, p_counts, sts, vers, rels, offs)"
	"      AS b(t, id, n, s, v, r, o)"
	"     CROSS JOIN LATERAL generate_series(1::bigint, b.n) AS g(q)"
	"     JOIN unnest(p_types, p_payloads, p_correlations, p_causations, p_timestamps)"
	"      WITH ORDINALITY AS e(et, ep, ec, ek, ets, j) ON e.j = b.o + g.q"
	"    WHERE b.s = 0;"
	"  END IF;"
	"  RETURN QUERY SELECT u.s, u.v, CASE WHEN u.s = 0 THEN h + u.r ELSE 0 END"
	"   FROM unnest(sts, vers, rels) WITH ORDINALITY AS u(s, v, r, i) ORDER BY u.i;"
	" END $f$;"
	"CREATE OR REPLACE FUNCTION @.append(p_type text, p_id bytea, p_expected bigint,"
	" p_token bigint, p_types bigint[], p_payloads bytea[], p_correlations uuid[],"
	" p_causations uuid[], p_timestamps bigint[],"
	" OUT r_status integer, OUT r_version bigint, OUT r_position bigint)"
	" LANGUAGE plpgsql AS $f$"
	" DECLARE n integer := cardinality(p_payloads);"
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
	"  UPDATE @.head SET position = position + n RETURNING position - n INTO h;" /* last */
	"  INSERT INTO @.events (stream_type, stream_id, version, position, event_type,"
	"    payload, correlation_id, causation_id, timestamp_ns, commit_token)"
	"   SELECT p_type, p_id, r_version - n + e.i, h + e.i, e.t, e.p, e.c, e.k, e.ts, p_token"
	"   FROM unnest(p_types, p_payloads, p_correlations, p_causations, p_timestamps)"
	"    WITH ORDINALITY AS e(t, p, c, k, ts, i);"
	"  r_position := h + 1;"
	" END $f$;";

/*
 * Migration 3: a commit token per append, not per batch; only -1 is "any". A client that lost
 * a reply looks each append up by (stream, token); with one token for the
 * whole batch, two appends to one stream in one batch found each other's
 * events (a loser of a conflict took the winner's for its own). Now
 * append_batch takes one token per append and writes each append's events
 * with its own. The old signature (one token) stays, as a wrapper, for an
 * older build's process or a script; `append` becomes a one-append batch.
 * Tables and rows are unchanged: an event written before keeps the token it
 * has, which only a process that lost that commit's reply ever looks for.
 * And only -1 means any version now: an expected version above INT64_MAX
 * arrives as another negative number, which schema 2 took for "any" too,
 * and is a conflict, as in every other store.
 */
static const char migration_3[] =
	"CREATE FUNCTION @.append_batch(p_tokens bigint[], p_stream_types text[],"
	" p_stream_ids bytea[], p_expected bigint[], p_counts bigint[], p_types bigint[],"
	" p_payloads bytea[], p_correlations uuid[], p_causations uuid[], p_timestamps bigint[],"
	" OUT r_status integer, OUT r_version bigint, OUT r_position bigint)"
	" RETURNS SETOF record LANGUAGE plpgsql AS $f$"
	" DECLARE a record; v bigint; h bigint := 0; taken bigint := 0; before bigint := 0;"
	"  sts integer[] := '{}'; vers bigint[] := '{}'; rels bigint[] := '{}';"
	"  offs bigint[] := '{}';"
	" BEGIN"
	"  FOR a IN SELECT * FROM unnest(p_stream_types, p_stream_ids, p_expected, p_counts)"
	"    WITH ORDINALITY AS u(t, id, x, n, i) ORDER BY u.i LOOP"
	"   v := NULL;"
	"   IF a.x = -1 THEN" /* ESR_VERSION_ANY, and nothing else */
	"    INSERT INTO @.streams AS s VALUES (a.t, a.id, a.n)"
	"     ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = s.version + a.n"
	"     RETURNING s.version INTO v;"
	"   ELSIF a.x = 0 THEN"
	"    INSERT INTO @.streams AS s VALUES (a.t, a.id, a.n)"
	"     ON CONFLICT (stream_type, stream_id) DO NOTHING RETURNING s.version INTO v;"
	"   ELSE" /* a version beyond any stream's (x < -1) matches no row: a conflict */
	"    UPDATE @.streams AS s SET version = s.version + a.n"
	"     WHERE s.stream_type = a.t AND s.stream_id = a.id AND s.version = a.x"
	"     RETURNING s.version INTO v;"
	"   END IF;"
	"   IF v IS NULL THEN" /* a conflict: the actual version, no positions */
	"    SELECT s.version INTO v FROM @.streams AS s"
	"     WHERE s.stream_type = a.t AND s.stream_id = a.id;"
	"    sts := sts || 1; vers := vers || coalesce(v, 0); rels := rels || 0::bigint;"
	"   ELSE"
	"    sts := sts || 0; vers := vers || v; rels := rels || taken + 1;"
	"    taken := taken + a.n;"
	"   END IF;"
	"   offs := offs || before;"
	"   before := before + a.n;"
	"  END LOOP;"
	"  IF taken > 0 THEN" /* the head, last */
	"   UPDATE @.head SET position = position + taken RETURNING position - taken INTO h;"
	"   INSERT INTO @.events (stream_type, stream_id, version, position, event_type, payload,"
	"     correlation_id, causation_id, timestamp_ns, commit_token)"
	"    SELECT b.t, b.id, b.v - b.n + g.q, h + b.r - 1 + g.q, e.et, e.ep, e.ec, e.ek, e.ets,"
	"     b.k"
	"    FROM unnest(p_tokens, p_stream_types, p_stream_ids, p_counts, sts, vers, rels, offs)"
	"      AS b(k, t, id, n, s, v, r, o)"
	"     CROSS JOIN LATERAL generate_series(1::bigint, b.n) AS g(q)"
	"     JOIN unnest(p_types, p_payloads, p_correlations, p_causations, p_timestamps)"
	"      WITH ORDINALITY AS e(et, ep, ec, ek, ets, j) ON e.j = b.o + g.q"
	"    WHERE b.s = 0;"
	"  END IF;"
	"  RETURN QUERY SELECT u.s, u.v, CASE WHEN u.s = 0 THEN h + u.r ELSE 0 END"
	"   FROM unnest(sts, vers, rels) WITH ORDINALITY AS u(s, v, r, i) ORDER BY u.i;"
	" END $f$;"
	"CREATE OR REPLACE FUNCTION @.append_batch(p_token bigint, p_stream_types text[],"
	" p_stream_ids bytea[], p_expected bigint[], p_counts bigint[], p_types bigint[],"
	" p_payloads bytea[], p_correlations uuid[], p_causations uuid[], p_timestamps bigint[],"
	" OUT r_status integer, OUT r_version bigint, OUT r_position bigint)"
	" RETURNS SETOF record LANGUAGE sql AS $f$"
	" SELECT * FROM @.append_batch(array_fill(p_token, ARRAY[cardinality(p_stream_types)]),"
	"  p_stream_types, p_stream_ids, p_expected, p_counts, p_types, p_payloads,"
	"  p_correlations, p_causations, p_timestamps) $f$;"
	"CREATE OR REPLACE FUNCTION @.append(p_type text, p_id bytea, p_expected bigint,"
	" p_token bigint, p_types bigint[], p_payloads bytea[], p_correlations uuid[],"
	" p_causations uuid[], p_timestamps bigint[],"
	" OUT r_status integer, OUT r_version bigint, OUT r_position bigint)"
	" LANGUAGE sql AS $f$"
	" SELECT b.r_status, b.r_version, b.r_position FROM @.append_batch(ARRAY[p_token],"
	"  ARRAY[p_type], ARRAY[p_id], ARRAY[p_expected], ARRAY[cardinality(p_payloads)::bigint],"
	"  p_types, p_payloads, p_correlations, p_causations, p_timestamps) AS b $f$;";

/*
 * Migration 4: a commit that takes positions tells listeners (pg_listen.c).
 * Every such transaction, of any build, updates the head row once, so a
 * trigger on it sends one NOTIFY per transaction, with the head's new
 * position, which PostgreSQL delivers at commit. Tables are unchanged.
 */
static const char migration_4[] =
	"CREATE FUNCTION @.notify_appended() RETURNS trigger LANGUAGE plpgsql AS $f$"
	" BEGIN PERFORM pg_notify(TG_TABLE_SCHEMA || '.appended', NEW.position::text);"
	" RETURN NULL; END $f$;"
	"CREATE TRIGGER appended AFTER UPDATE ON @.head"
	" FOR EACH ROW EXECUTE FUNCTION @.notify_appended();";

/*
 * Migration 5: command ids. Each event keeps the id of the command that
 * decided it (NULL: none), and `commands` records, per stream and id, the
 * versions that id's events got: the store refuses a second append of an id
 * a stream has recorded (ESR_EDUPLICATE, a result like a conflict) and
 * answers esr_store_command from it. Both are written by append_batch in the
 * transaction that writes the events, so a reader that finds an id finds
 * its events. Rows are kept as long as their stream's events. Events written
 * before have no id; older builds' functions stay and write none.
 */
static const char migration_5[] =
	"ALTER TABLE @.events ADD COLUMN command_id bytea;"
	"CREATE TABLE @.commands ("
	" stream_type text NOT NULL,"
	" stream_id bytea NOT NULL,"
	" command_id bytea NOT NULL,"
	" first_version bigint NOT NULL,"
	" last_version bigint NOT NULL,"
	" PRIMARY KEY (stream_type, stream_id, command_id));"
	/*
	 * append_batch as in migration 3, with each event's command id
	 * (p_command_ids, NULL elements for none) and the appends' runs of one
	 * id: run k is append p_run_appends[k]'s events p_run_firsts[k] ..
	 * p_run_lasts[k] (from 1), all with id p_run_ids[k]. Two more result
	 * columns: on a duplicate (status 2), r_version and r_first are the
	 * versions the recorded id's events got and r_at the index (from 0) of
	 * the append's first event of that id; 0 otherwise.
	 *
	 * An append with ids passes its stream row's gate first (a conflict
	 * comes before a duplicate), then looks its ids up in `commands` and,
	 * if none is there, records them, in one statement (the look-up sees
	 * the table as the statement began, before its own insert). A duplicate
	 * gives its versions back (the row is still locked by this transaction,
	 * so nobody has seen them) and stores nothing.
	 *
	 * Why two transactions racing with one id cannot both insert events:
	 * `commands` is only written by a transaction that holds the stream's
	 * row lock, taken by the gate and kept to the commit. The second waits
	 * for that lock until the first ends; under READ COMMITTED each
	 * statement of the function then takes a fresh snapshot, so its look-up,
	 * which comes after the gate, sees the first's committed row and reports
	 * a duplicate. (Under REPEATABLE READ or SERIALIZABLE its gate fails
	 * with a serialization error instead, and the batch is sent again.) An
	 * earlier append of the same batch is seen as the transaction's own
	 * write. The primary key backs this up: even a writer that bypassed the
	 * function could not record one id twice. The look-up and the insert
	 * wait for nothing beyond the stream row already held, so the lock
	 * order of migration 2 (stream rows, then the head) stays as it was.
	 */
	"CREATE FUNCTION @.append_batch(p_tokens bigint[], p_stream_types text[],"
	" p_stream_ids bytea[], p_expected bigint[], p_counts bigint[], p_types bigint[],"
	" p_payloads bytea[], p_correlations uuid[], p_causations uuid[], p_timestamps bigint[],"
	" p_command_ids bytea[], p_run_appends bigint[], p_run_ids bytea[],"
	" p_run_firsts bigint[], p_run_lasts bigint[],"
	" OUT r_status integer, OUT r_version bigint, OUT r_position bigint,"
	" OUT r_first bigint, OUT r_at bigint)"
	" RETURNS SETOF record LANGUAGE plpgsql AS $f$"
	" DECLARE a record; v bigint; h bigint := 0; taken bigint := 0; before bigint := 0;"
	"  d_at bigint; d_first bigint; d_last bigint;"
	"  sts integer[] := '{}'; vers bigint[] := '{}'; rels bigint[] := '{}';"
	"  offs bigint[] := '{}'; firsts bigint[] := '{}'; ats bigint[] := '{}';"
	" BEGIN"
	"  FOR a IN SELECT u.t, u.id, u.x, u.n, u.i, r.ids, r.fs, r.ls"
	"    FROM unnest(p_stream_types, p_stream_ids, p_expected, p_counts)"
	"     WITH ORDINALITY AS u(t, id, x, n, i)"
	"    LEFT JOIN (SELECT k.a, array_agg(k.c) AS ids, array_agg(k.f) AS fs,"
	"      array_agg(k.l) AS ls"
	"     FROM unnest(p_run_appends, p_run_ids, p_run_firsts, p_run_lasts) AS k(a, c, f, l)"
	"     GROUP BY k.a) AS r ON r.a = u.i"
	"    ORDER BY u.i LOOP"
	"   v := NULL; d_at := NULL;"
	"   IF a.x = -1 THEN" /* ESR_VERSION_ANY, and nothing else */
	"    INSERT INTO @.streams AS s VALUES (a.t, a.id, a.n)"
	"     ON CONFLICT (stream_type, stream_id) DO UPDATE SET version = s.version + a.n"
	"     RETURNING s.version INTO v;"
	"   ELSIF a.x = 0 THEN"
	"    INSERT INTO @.streams AS s VALUES (a.t, a.id, a.n)"
	"     ON CONFLICT (stream_type, stream_id) DO NOTHING RETURNING s.version INTO v;"
	"   ELSE" /* a version beyond any stream's (x < -1) matches no row: a conflict */
	"    UPDATE @.streams AS s SET version = s.version + a.n"
	"     WHERE s.stream_type = a.t AND s.stream_id = a.id AND s.version = a.x"
	"     RETURNING s.version INTO v;"
	"   END IF;"
	"   IF v IS NOT NULL AND a.ids IS NOT NULL THEN" /* the row is ours: the ids */
	"    WITH run AS (SELECT * FROM unnest(a.ids, a.fs, a.ls) AS q(c, f, l)),"
	"     dup AS (SELECT run.f, m.first_version, m.last_version FROM run"
	"      JOIN @.commands AS m ON m.stream_type = a.t AND m.stream_id = a.id"
	"       AND m.command_id = run.c ORDER BY run.f LIMIT 1),"
	"     ins AS (INSERT INTO @.commands"
	"      SELECT a.t, a.id, run.c, v - a.n + run.f, v - a.n + run.l FROM run"
	"      WHERE NOT EXISTS (SELECT FROM dup))"
	"    SELECT dup.f, dup.first_version, dup.last_version INTO d_at, d_first, d_last"
	"     FROM dup;"
	"   END IF;"
	"   IF v IS NULL THEN" /* a conflict: the actual version, no positions */
	"    SELECT s.version INTO v FROM @.streams AS s"
	"     WHERE s.stream_type = a.t AND s.stream_id = a.id;"
	"    sts := sts || 1; vers := vers || coalesce(v, 0); rels := rels || 0::bigint;"
	"    firsts := firsts || 0::bigint; ats := ats || 0::bigint;"
	"   ELSIF d_at IS NOT NULL THEN" /* a duplicate: give the versions back */
	"    UPDATE @.streams AS s SET version = s.version - a.n"
	"     WHERE s.stream_type = a.t AND s.stream_id = a.id;"
	"    sts := sts || 2; vers := vers || d_last; rels := rels || 0::bigint;"
	"    firsts := firsts || d_first; ats := ats || d_at - 1;"
	"   ELSE"
	"    sts := sts || 0; vers := vers || v; rels := rels || taken + 1;"
	"    firsts := firsts || 0::bigint; ats := ats || 0::bigint;"
	"    taken := taken + a.n;"
	"   END IF;"
	"   offs := offs || before;"
	"   before := before + a.n;"
	"  END LOOP;"
	"  IF taken > 0 THEN" /* the head, last */
	"   UPDATE @.head SET position = position + taken RETURNING position - taken INTO h;"
	"   INSERT INTO @.events (stream_type, stream_id, version, position, event_type, payload,"
	"     correlation_id, causation_id, timestamp_ns, commit_token, command_id)"
	"    SELECT b.t, b.id, b.v - b.n + g.q, h + b.r - 1 + g.q, e.et, e.ep, e.ec, e.ek, e.ets,"
	"     b.k, e.eid"
	"    FROM unnest(p_tokens, p_stream_types, p_stream_ids, p_counts, sts, vers, rels, offs)"
	"      AS b(k, t, id, n, s, v, r, o)"
	"     CROSS JOIN LATERAL generate_series(1::bigint, b.n) AS g(q)"
	"     JOIN unnest(p_types, p_payloads, p_correlations, p_causations, p_timestamps,"
	"       p_command_ids) WITH ORDINALITY AS e(et, ep, ec, ek, ets, eid, j) ON e.j = b.o + g.q"
	"    WHERE b.s = 0;"
	"  END IF;"
	"  RETURN QUERY SELECT u.s, u.v, CASE WHEN u.s = 0 THEN h + u.r ELSE 0 END, u.f, u.d"
	"   FROM unnest(sts, vers, rels, firsts, ats) WITH ORDINALITY AS u(s, v, r, f, d, i)"
	"   ORDER BY u.i;"
	" END $f$;";

static const char *const migrations[] = {migration_1, migration_2, migration_3, migration_4,
                                         migration_5};
#define MIGRATIONS (sizeof migrations / sizeof migrations[0])
/* The version a build records is the number of migrations it knows. */
_Static_assert(MIGRATIONS == ESR_PG_SCHEMA_VERSION, "one migration per schema version");

static const char stmt_batch[] =
	"SELECT r_status, r_version, r_position, r_first, r_at"
	" FROM @.append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
static const char stmt_read[] =
	"SELECT version, event_type, payload, correlation_id, causation_id, timestamp_ns, position,"
	" command_id FROM @.events WHERE stream_type = $1 AND stream_id = $2 AND version >= $3"
	" ORDER BY version";
static const char stmt_version[] =
	"SELECT version FROM @.streams WHERE stream_type = $1 AND stream_id = $2";
/* An in-doubt append's events, by its own commit token (migration 3). */
static const char stmt_find[] =
	"SELECT max(version), min(position) FROM @.events"
	" WHERE stream_type = $1 AND stream_id = $2 AND commit_token = $3";

/* A command id's versions (migration 5): one primary key look-up, no lock. */
static const char stmt_command[] =
	"SELECT first_version, last_version FROM @.commands"
	" WHERE stream_type = $1 AND stream_id = $2 AND command_id = $3";

static const char stmt_all[] =
	"SELECT stream_type, stream_id, version, event_type, payload, correlation_id,"
	" causation_id, timestamp_ns, position, command_id FROM @.events WHERE position >= $1"
	" ORDER BY position LIMIT $2";
static const char stmt_head[] = "SELECT position FROM @.head";
static const char stmt_snap_save[] =
	"INSERT INTO @.snapshots VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_type, stream_id)"
	" DO UPDATE SET version = excluded.version, format = excluded.format, data = excluded.data";
static const char stmt_snap_load[] =
	"SELECT version, format, data FROM @.snapshots WHERE stream_type = $1 AND stream_id = $2";
static const char stmt_cp_save[] =
	"INSERT INTO @.checkpoints VALUES ($1, $2) ON CONFLICT (name)"
	" DO UPDATE SET position = excluded.position";
static const char stmt_cp_load[] = "SELECT position FROM @.checkpoints WHERE name = $1";

int esr__pg_schema_valid(const char *schema)
{
	size_t i;

	if (schema == NULL || schema[0] == '\0' || (schema[0] >= '0' && schema[0] <= '9'))
		return 0;
	for (i = 0; schema[i] != '\0'; i++)
		if (i >= ESR__PG_SCHEMA_MAX || !((schema[i] >= 'a' && schema[i] <= 'z') ||
		                           (schema[i] >= '0' && schema[i] <= '9') || schema[i] == '_'))
			return 0;
	return 1;
}

/* The template with every '@' replaced by the quoted schema; NULL: no memory. */
static char *expand(const char *tmpl, const char *schema)
{
	size_t ats = 0, slen = strlen(schema), len = strlen(tmpl), i;
	char *out, *o;

	for (i = 0; i < len; i++)
		ats += tmpl[i] == '@';
	if ((out = malloc(len + ats * (slen + 2) + 1)) == NULL)
		return NULL;
	for (o = out, i = 0; i < len; i++) {
		if (tmpl[i] != '@') {
			*o++ = tmpl[i];
			continue;
		}
		*o++ = '"';
		memcpy(o, schema, slen);
		o += slen;
		*o++ = '"';
	}
	*o = '\0';
	return out;
}

void esr__pg_why(char *why, size_t size, const char *what, const char *message)
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
		esr__pg_why(why, why_size, "postgres", r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c));
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

static esr_status migrate_locked(PGconn *c, const char *schema, int upto, char *why, size_t n)
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
	for (; v < upto; v++) {
		char record[64];
		if ((st = exec_expanded(c, migrations[v], schema, why, n)) != ESR_OK)
			return st;
		snprintf(record, sizeof record, "INSERT INTO @.esr_schema (version) VALUES (%d)", v + 1);
		if ((st = exec_expanded(c, record, schema, why, n)) != ESR_OK)
			return st;
	}
	return ESR_OK;
}

esr_status esr__pg_migrate_conn_to(PGconn *c, const char *schema, int upto, char *why, size_t n)
{
	esr_status st;

	if (upto < 1 || upto > (int)MIGRATIONS)
		return ESR_EINVAL;
	if ((st = exec(c, "BEGIN", PGRES_COMMAND_OK, NULL, why, n)) != ESR_OK)
		return st;
	if ((st = exec(c, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", PGRES_TUPLES_OK, NULL,
	               why, n)) == ESR_OK)
		st = migrate_locked(c, schema, upto, why, n);
	if (st == ESR_OK)
		return exec(c, "COMMIT", PGRES_COMMAND_OK, NULL, why, n);
	exec(c, "ROLLBACK", PGRES_COMMAND_OK, NULL, NULL, 0);
	return st;
}

esr_status esr__pg_migrate_conn(PGconn *c, const char *schema, char *why, size_t n)
{
	return esr__pg_migrate_conn_to(c, schema, (int)MIGRATIONS, why, n);
}

int esr__pg_session_lost(PGconn *c, const PGresult *r)
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

void esr__pg_quiet(PGconn *c)
{
	PQsetNoticeProcessor(c, quiet, NULL);
}

esr_status esr__pg_drop_conn(PGconn *c, const char *schema, char *why, size_t n)
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
		esr__pg_why(why, n, "postgres: prepare", r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c));
		st = ESR_EIO;
	}
	PQclear(r);
	free(sql);
	return st;
}

esr_status esr__pg_prepare(PGconn *c, const char *schema, char *why, size_t n)
{
	static const Oid batch[] = {OID_INT8_ARRAY, OID_TEXT_ARRAY, OID_BYTEA_ARRAY, OID_INT8_ARRAY,
	                            OID_INT8_ARRAY, OID_INT8_ARRAY, OID_BYTEA_ARRAY,
	                            OID_UUID_ARRAY, OID_UUID_ARRAY, OID_INT8_ARRAY,
	                            OID_BYTEA_ARRAY, OID_INT8_ARRAY, OID_BYTEA_ARRAY,
	                            OID_INT8_ARRAY, OID_INT8_ARRAY};
	static const Oid read[] = {OID_TEXT, OID_BYTEA, OID_INT8};
	static const Oid find[] = {OID_TEXT, OID_BYTEA, OID_INT8};
	static const Oid command[] = {OID_TEXT, OID_BYTEA, OID_BYTEA};

	static const Oid all[] = {OID_INT8, OID_INT8};
	static const Oid snap[] = {OID_TEXT, OID_BYTEA, OID_INT8, OID_INT4, OID_BYTEA};
	static const Oid cp[] = {OID_TEXT, OID_INT8};
	esr_status st;

	if ((st = prepare(c, ESR__PG_STMT_BATCH, stmt_batch, schema, ESR__PG_BATCH_PARAMS, batch, why,
	                  n)) != ESR_OK ||
	    (st = prepare(c, ESR__PG_STMT_READ, stmt_read, schema, 3, read, why, n)) != ESR_OK ||
	    (st = prepare(c, ESR__PG_STMT_VERSION, stmt_version, schema, 2, read, why, n)) != ESR_OK ||
	    (st = prepare(c, ESR__PG_STMT_ALL, stmt_all, schema, 2, all, why, n)) != ESR_OK ||
	    (st = prepare(c, ESR__PG_STMT_HEAD, stmt_head, schema, 0, NULL, why, n)) != ESR_OK ||
	    (st = prepare(c, ESR__PG_STMT_SNAP_SAVE, stmt_snap_save, schema, 5, snap, why, n)) != ESR_OK ||
	    (st = prepare(c, ESR__PG_STMT_SNAP_LOAD, stmt_snap_load, schema, 2, snap, why, n)) != ESR_OK ||
	    (st = prepare(c, ESR__PG_STMT_CP_SAVE, stmt_cp_save, schema, 2, cp, why, n)) != ESR_OK ||
	    (st = prepare(c, ESR__PG_STMT_CP_LOAD, stmt_cp_load, schema, 1, cp, why, n)) != ESR_OK ||
	    (st = prepare(c, ESR__PG_STMT_COMMAND, stmt_command, schema, 3, command, why, n)) != ESR_OK)
		return st;
	return prepare(c, ESR__PG_STMT_FIND, stmt_find, schema, 3, find, why, n);
}

/* --- binary parameters and results ------------------------------------------ */

uint64_t esr__pg_get64(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | u[i];
	return v;
}

uint32_t esr__pg_get32(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

void esr__pg_put64(char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (char)(v & 0xff);
}

void esr__pg_put32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

/*
 * A one-dimensional array in PostgreSQL's binary form: dimensions 1, whether
 * it may hold NULLs, the element type, n elements from index 1; then per
 * element its length (-1: NULL) and bytes. Returns the bytes written.
 */
static size_t array_header(char *p, uint32_t elem_oid, uint32_t n, int nulls)
{
	esr__pg_put32(p, 1);
	esr__pg_put32(p + 4, nulls ? 1 : 0);
	esr__pg_put32(p + 8, elem_oid);
	esr__pg_put32(p + 12, n);
	esr__pg_put32(p + 16, 1);
	return 20;
}

static size_t array_elem(char *p, const void *bytes, uint32_t len)
{
	esr__pg_put32(p, len);
	if (len > 0)
		memcpy(p + 4, bytes, len);
	return 4 + (size_t)len;
}

static size_t array_elem64(char *p, uint64_t v)
{
	esr__pg_put32(p, 8);
	esr__pg_put64(p + 4, v);
	return 12;
}

/* An event's command id, or NULL for none. */
static size_t array_elem_id(char *p, const esr_command_id *id)
{
	if (id->len == 0) {
		esr__pg_put32(p, UINT32_MAX); /* -1 */
		return 4;
	}
	return array_elem(p, id->bytes, (uint32_t)id->len);
}

uint32_t esr__pg_runs(const esr_event *events, uint32_t n)
{
	uint32_t runs = 0, e;

	for (e = 0; e < n; e++)
		runs += esr__command_run_starts(events, e);
	return runs;
}

/* The bytes one batch's parameters take, with room for the array headers. */
static size_t params_size(struct esr__pg_append *const *list, size_t n)
{
	size_t need = ESR__PG_BATCH_PARAMS * 20, i;
	uint32_t k;

	for (i = 0; i < n; i++) {
		const struct esr__pg_append *a = list[i];
		need += 4 + a->type_len + 4 + a->id_len + 3 * 12 +
		        (size_t)a->n * (12 + 4 + 20 + 20 + 12 + 4) + (size_t)a->runs * (12 + 4 + 12 + 12);
		for (k = 0; k < a->n; k++)
			need += a->events[k].payload_len + 2 * a->events[k].command_id.len;
	}
	return need;
}

/* Parameters 11..14 of append_batch: the element of append i's runs for
 * parameter k, each run's first and last event counted from 1. */
static void run_elems(char *buf, size_t *off, int k, const struct esr__pg_append *a, size_t i)
{
	uint32_t e, end;

	for (e = 0; e < a->n; e = end) {
		const esr_command_id *id = &a->events[e].command_id;
		for (end = e + 1; end < a->n && esr__command_id_equal(&a->events[end].command_id, id); end++)
			;
		if (id->len == 0)
			continue;
		switch (k) {
		case 11: *off += array_elem64(buf + *off, i + 1); break;
		case 12: *off += array_elem(buf + *off, id->bytes, (uint32_t)id->len); break;
		case 13: *off += array_elem64(buf + *off, e + 1); break;
		default: *off += array_elem64(buf + *off, end); break;
		}
	}
}

/* Parameter k (0..14) of append_batch: its elements from every append of
 * the list, as one binary array at *off: 0..4 one per append, 5..10 one per
 * event, 11..14 one per run of a command id. */
static void batch_array(char *buf, size_t *off, int k, struct esr__pg_append *const *list, size_t n)
{
	static const uint32_t oid[] = {OID_INT8, OID_TEXT, OID_BYTEA, OID_INT8, OID_INT8, OID_INT8,
	                               OID_BYTEA, OID_UUID, OID_UUID, OID_INT8, OID_BYTEA,
	                               OID_INT8, OID_BYTEA, OID_INT8, OID_INT8};
	size_t count = 0, i;
	uint32_t e;

	for (i = 0; i < n; i++)
		count += k <= 4 ? 1 : k <= 10 ? list[i]->n : list[i]->runs;
	*off += array_header(buf + *off, oid[k], (uint32_t)count, k == 10);
	for (i = 0; i < n; i++) {
		const struct esr__pg_append *a = list[i];
		switch (k) {
		case 0: *off += array_elem64(buf + *off, a->token); continue;
		case 1: *off += array_elem(buf + *off, a->type, a->type_len); continue;
		case 2: *off += array_elem(buf + *off, a->id, a->id_len); continue;
		case 3: /* as a bigint: ESR_VERSION_ANY is -1, the one value that skips
		         * the check; one above INT64_MAX is negative and conflicts */
			*off += array_elem64(buf + *off, a->expected == ESR_VERSION_ANY ?
			                                 (uint64_t)-1 : a->expected);
			continue;
		case 4: *off += array_elem64(buf + *off, a->n); continue;
		}
		if (k > 10) {
			if (a->runs > 0)
				run_elems(buf, off, k, a, i);
			continue;
		}
		for (e = 0; e < a->n; e++) {
			const esr_event *ev = &a->events[e];
			switch (k) {
			case 5: *off += array_elem64(buf + *off, ev->type); break;
			case 6: *off += array_elem(buf + *off, ev->payload, ev->payload_len); break;
			case 7: *off += array_elem(buf + *off, ev->meta.correlation_id.bytes, 16); break;
			case 8: *off += array_elem(buf + *off, ev->meta.causation_id.bytes, 16); break;
			case 9: *off += array_elem64(buf + *off, ev->meta.timestamp_ns); break;
			default: *off += array_elem_id(buf + *off, &ev->command_id); break;
			}
		}
	}
}

esr_status esr__pg_params_build(struct esr__pg_params *p, struct esr__pg_append *const *list, size_t n)
{
	size_t need = params_size(list, n), off = 0, start;
	int k;

	if (need > INT32_MAX)
		return ESR_ETOOBIG; /* libpq's lengths are ints */
	if (need > p->cap) {
		char *b = realloc(p->buf, need);
		if (b == NULL)
			return ESR_ENOMEM;
		p->buf = b;
		p->cap = need;
	}
	for (k = 0; k < ESR__PG_BATCH_PARAMS; k++) {
		start = off;
		batch_array(p->buf, &off, k, list, n);
		p->values[k] = p->buf + start;
		p->lengths[k] = (int)(off - start);
	}
	for (k = 0; k < ESR__PG_BATCH_PARAMS; k++)
		p->formats[k] = 1;
	return ESR_OK;
}

void esr__pg_params_free(struct esr__pg_params *p)
{
	free(p->buf);
	p->buf = NULL;
	p->cap = 0;
}

esr_status esr__pg_append_result(const PGresult *r, int row, struct esr__pg_append *a)
{
	uint32_t status;
	int col;

	if (PQnfields(r) != 5 || PQgetlength(r, row, 0) != 4)
		return ESR_EIO;
	for (col = 1; col < 5; col++)
		if (PQgetlength(r, row, col) != 8)
			return ESR_EIO;
	status = esr__pg_get32(PQgetvalue(r, row, 0));
	a->result.version = esr__pg_get64(PQgetvalue(r, row, 1));
	a->result.position = esr__pg_get64(PQgetvalue(r, row, 2));
	a->result.recorded_first = 0;
	a->result.duplicate_at = 0;
	if (status == ESR__PG_APPENDED) {
		a->result.status = ESR_OK;
	} else if (status == ESR__PG_CONFLICT) {
		a->result.status = ESR_ECONFLICT, a->result.position = 0;
	} else if (status == ESR__PG_DUPLICATE) {
		uint64_t at = esr__pg_get64(PQgetvalue(r, row, 4));
		a->result.recorded_first = esr__pg_get64(PQgetvalue(r, row, 3));
		if (at >= a->n || a->result.recorded_first == 0 ||
		    a->result.recorded_first > a->result.version)
			return ESR_EIO;
		a->result.status = ESR_EDUPLICATE, a->result.position = 0;
		a->result.duplicate_at = (uint32_t)at;
	} else {
		return ESR_EIO;
	}
	return ESR_OK;
}
