/*
 * store/pg/pg.c: the PostgreSQL store (include/esr/pg_store.h): open and close,
 * the vtable's append (it queues; store/pg/pg_writer.c sends), and reads and
 * versions, which run on the caller's thread over a pool of connections
 * (global reads in pg_all.c and snapshots in pg_snapshot.c use it too).
 * A read that finds its connection broken reconnects and tries once more: a
 * read changes nothing, so retrying it is safe.
 * docs/architecture.md has the map.
 */
#define _GNU_SOURCE
#include <ck_pr.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "core/internal.h"
#include "store/pg/pg_internal.h"
#include "store/store_internal.h"

static const esr_store_vtable pg_vtable;

void esr__pg_count(uint64_t *field, uint64_t by)
{
	ck_pr_faa_64(field, by);
}

/* --- appends -------------------------------------------------------------- */

/* Event i's command id into *p, where the copy's id now points: one copy
 * per run, shared by the run's events. */
static void copy_command_id(esr_event *ev, size_t i, char **p)
{
	esr_command_id *id = &ev[i].command_id;

	if (id->len == 0) {
		*id = (esr_command_id){NULL, 0};
		return;
	}
	if (!esr__command_run_starts(ev, i)) { /* the run goes on: share its copy */
		id->bytes = ev[i - 1].command_id.bytes;
		return;
	}
	memcpy(*p, id->bytes, id->len);
	id->bytes = *p;
	*p += id->len;
}

/* One block: the append, its events, their payloads and command ids, the
 * type and the id. */
static struct esr__pg_append *copy_append(const esr_stream_id *stream, uint64_t expected,
                                     const esr_event *events, size_t n)
{
	size_t type_len = strlen(stream->type), bytes = sizeof(struct esr__pg_append) + n * sizeof *events;
	struct esr__pg_append *a;
	esr_event *ev;
	char *p;
	size_t i;

	for (i = 0; i < n; i++)
		bytes += events[i].payload_len + events[i].command_id.len;
	if ((a = malloc(bytes + type_len + stream->id_len)) == NULL)
		return NULL;
	memset(a, 0, sizeof *a);
	ev = (esr_event *)(a + 1);
	p = (char *)(ev + n);
	for (i = 0; i < n; i++) {
		ev[i] = events[i];
		if (events[i].payload_len > 0)
			memcpy(p, events[i].payload, events[i].payload_len);
		ev[i].payload = p;
		p += events[i].payload_len;
		copy_command_id(ev, i, &p);
	}
	memcpy(p, stream->type, type_len);
	a->type = p;
	p += type_len;
	memcpy(p, stream->id, stream->id_len);
	a->id = (const uint8_t *)p;
	a->type_len = (uint32_t)type_len;
	a->id_len = (uint32_t)stream->id_len;
	a->events = ev;
	a->bytes = bytes - sizeof(struct esr__pg_append) - n * sizeof *events;
	a->n = (uint32_t)n;
	a->runs = esr__pg_runs(ev, a->n);
	a->expected = expected;
	return a;
}

static esr_status pg_append(void *impl, const esr_stream_id *stream, uint64_t expected,
                            const esr_event *events, size_t n, esr_append_cb done, void *ctx)
{
	struct esr__pg_store *s = impl;
	struct esr__pg_append *a = copy_append(stream, expected, events, n);

	if (a == NULL)
		return ESR_ENOMEM;
	a->done = done;
	a->ctx = ctx;
	a->queued_ms = esr__now_ms();
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		free(a);
		return ESR_ESHUTDOWN;
	}
	if (s->tail != NULL)
		s->tail->next = a;
	else
		s->head = a;
	s->tail = a;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
	return ESR_OK;
}

/* --- the read pool ------------------------------------------------------------ */

static esr_status pool_get(struct esr__pg_store *s, struct esr__pooled **out)
{
	struct esr__pooled *p;
	esr_status st;

	pthread_mutex_lock(&s->pool_lock);
	if ((p = s->pool) != NULL)
		s->pool = p->next;
	pthread_mutex_unlock(&s->pool_lock);
	if (p == NULL) {
		if ((p = calloc(1, sizeof *p)) == NULL)
			return ESR_ENOMEM;
		if ((st = esr__pg_conn_open(&p->conn, s->conninfo, s->schema)) != ESR_OK) {
			free(p);
			return st;
		}
	}
	*out = p;
	return ESR_OK;
}

static void pool_put(struct esr__pg_store *s, struct esr__pooled *p)
{
	if (p->conn.pg == NULL || PQstatus(p->conn.pg) != CONNECTION_OK) {
		esr__pg_conn_close(&p->conn);
		free(p);
		return;
	}
	pthread_mutex_lock(&s->pool_lock);
	p->next = s->pool;
	s->pool = p;
	pthread_mutex_unlock(&s->pool_lock);
}

/* Close every idle connection. */
static void pool_flush(struct esr__pg_store *s)
{
	struct esr__pooled *p, *list;

	pthread_mutex_lock(&s->pool_lock);
	list = s->pool;
	s->pool = NULL;
	pthread_mutex_unlock(&s->pool_lock);
	while ((p = list) != NULL) {
		list = p->next;
		esr__pg_conn_close(&p->conn);
		free(p);
	}
}

/*
 * Run a prepared statement, binary in and out, on a pooled connection. A
 * broken one is replaced and the statement tried once more.
 */
static esr_status run(struct esr__pg_store *s, const char *stmt, int nparams,
                      const char *const *values, const int *lengths, struct esr__pooled **conn,
                      PGresult **out)
{
	static const int formats[5] = {1, 1, 1, 1, 1};
	esr_status st;
	int round;

	for (round = 0; round < 2; round++) {
		PGresult *r;
		ExecStatusType want;
		if ((st = pool_get(s, conn)) != ESR_OK)
			return st;
		r = PQexecPrepared((*conn)->conn.pg, stmt, nparams, values, lengths, formats, 1);
		want = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
		if (want == PGRES_TUPLES_OK || want == PGRES_COMMAND_OK) {
			*out = r;
			return ESR_OK;
		}
		esr__pg_why((*conn)->conn.why, sizeof (*conn)->conn.why, "postgres",
		       r ? PQresultErrorMessage(r) : PQerrorMessage((*conn)->conn.pg));
		if (!esr__pg_session_lost((*conn)->conn.pg, r)) {
			PQclear(r);
			return ESR_EIO; /* the server refused it: trying again will not help */
		}
		PQclear(r);
		esr__pg_conn_close(&(*conn)->conn);
		pool_put(s, *conn); /* frees it */
		*conn = NULL;
		pool_flush(s); /* a restart took the idle ones too: try afresh */
	}
	return ESR_EIO;
}

/* run() with the stream as the first two parameters (and `from` third when
 * nparams is 3). */
static esr_status query(struct esr__pg_store *s, const char *stmt, const esr_stream_id *stream,
                        int nparams, uint64_t from, struct esr__pooled **conn, PGresult **out)
{
	char v[8];
	const char *values[3] = {stream->type, stream->id, v};
	int lengths[3] = {(int)strlen(stream->type), (int)stream->id_len, 8};

	esr__pg_put64(v, from);
	return run(s, stmt, nparams, values, lengths, conn, out);
}

esr_status esr__pg_visit_rows(const PGresult *r, const esr_stream_id *stream,
                         esr_visit_fn visit, void *ctx, uint64_t *last)
{
	int rows = PQntuples(r), i, c = stream ? 0 : 2;
	char type[ESR_TYPE_NAME_MAX + 1];
	esr_status st;

	if (PQnfields(r) != 8 + c)
		return ESR_EIO;
	for (i = 0; i < rows; i++) {
		esr_recorded_event e;
		int id_len = PQgetisnull(r, i, c + 7) ? 0 : PQgetlength(r, i, c + 7);
		if (PQgetlength(r, i, c) != 8 || PQgetlength(r, i, c + 1) != 8 ||
		    PQgetlength(r, i, c + 3) != 16 || PQgetlength(r, i, c + 4) != 16 ||
		    PQgetlength(r, i, c + 5) != 8 || PQgetlength(r, i, c + 6) != 8 ||
		    id_len > ESR_COMMAND_ID_MAX ||
		    (c && (PQgetlength(r, i, 0) > ESR_TYPE_NAME_MAX || PQgetlength(r, i, 1) == 0)))
			return ESR_ECORRUPT;
		memset(&e, 0, sizeof e);
		if (stream != NULL) {
			e.stream = *stream;
		} else {
			memcpy(type, PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
			type[PQgetlength(r, i, 0)] = '\0';
			e.stream = (esr_stream_id){type, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1)};
		}
		e.version = esr__pg_get64(PQgetvalue(r, i, c));
		e.event.type = (uint32_t)esr__pg_get64(PQgetvalue(r, i, c + 1));
		e.event.payload_len = (uint32_t)PQgetlength(r, i, c + 2);
		e.event.payload = PQgetvalue(r, i, c + 2);
		memcpy(e.event.meta.correlation_id.bytes, PQgetvalue(r, i, c + 3), 16);
		memcpy(e.event.meta.causation_id.bytes, PQgetvalue(r, i, c + 4), 16);
		e.event.meta.timestamp_ns = esr__pg_get64(PQgetvalue(r, i, c + 5));
		e.position = esr__pg_get64(PQgetvalue(r, i, c + 6));
		if (id_len > 0) /* an empty id is none, as the events' NULL is */
			e.event.command_id = (esr_command_id){PQgetvalue(r, i, c + 7), (size_t)id_len};
		if ((st = visit(ctx, &e)) != ESR_OK)
			return st;
		*last = e.position;
	}
	return ESR_OK;
}

static esr_status pg_read(void *impl, const esr_stream_id *stream, uint64_t from,
                          esr_visit_fn visit, void *ctx)
{
	struct esr__pg_store *s = impl;
	struct esr__pooled *conn = NULL;
	PGresult *r;
	esr_status st;

	if (from == 0)
		from = 1;
	if (from > INT64_MAX) /* no stream gets there */
		return ESR_OK;
	if ((st = query(s, ESR__PG_STMT_READ, stream, 3, from, &conn, &r)) == ESR_OK) {
		uint64_t last;
		pool_put(s, conn); /* before visiting: a visitor may read again */
		conn = NULL;
		st = esr__pg_visit_rows(r, stream, visit, ctx, &last);
		PQclear(r);
	}
	if (conn != NULL)
		pool_put(s, conn);
	return st;
}

static esr_status pg_version(void *impl, const esr_stream_id *stream, uint64_t *version)
{
	struct esr__pg_store *s = impl;
	struct esr__pooled *conn = NULL;
	PGresult *r;
	esr_status st;

	if ((st = query(s, ESR__PG_STMT_VERSION, stream, 2, 0, &conn, &r)) == ESR_OK) {
		if (PQntuples(r) == 0)
			*version = 0;
		else if (PQgetlength(r, 0, 0) == 8)
			*version = esr__pg_get64(PQgetvalue(r, 0, 0));
		else
			st = ESR_EIO;
		PQclear(r);
	}
	if (conn != NULL)
		pool_put(s, conn);
	return st;
}

/* The versions (stream, id) got, from `commands` (0, 0: none). */
static esr_status pg_command(void *impl, const esr_stream_id *stream, const void *id,
                             size_t len, uint64_t *first, uint64_t *last)
{
	struct esr__pg_store *s = impl;
	struct esr__pooled *conn = NULL;
	const char *values[3] = {stream->type, stream->id, id};
	int lengths[3] = {(int)strlen(stream->type), (int)stream->id_len, (int)len};
	PGresult *r;
	esr_status st;

	if ((st = run(s, ESR__PG_STMT_COMMAND, 3, values, lengths, &conn, &r)) == ESR_OK) {
		*first = *last = 0;
		if (PQntuples(r) == 1 && PQgetlength(r, 0, 0) == 8 && PQgetlength(r, 0, 1) == 8) {
			*first = esr__pg_get64(PQgetvalue(r, 0, 0));
			*last = esr__pg_get64(PQgetvalue(r, 0, 1));
		} else if (PQntuples(r) != 0) {
			st = ESR_EIO;
		}
		PQclear(r);
	}
	if (conn != NULL)
		pool_put(s, conn);
	return st;
}

/* --- shared with pg_all.c and pg_snapshot.c ------------------------------------ */

esr_status esr__pg_run_then(struct esr__pg_store *s, const char *stmt, int nparams,
                       const char *const *values, const int *lengths,
                       esr_status (*fn)(const PGresult *r, void *ctx), void *ctx)
{
	struct esr__pooled *conn = NULL;
	PGresult *r;
	esr_status st;

	if ((st = run(s, stmt, nparams, values, lengths, &conn, &r)) == ESR_OK) {
		pool_put(s, conn); /* before fn: it may read again */
		conn = NULL;
		st = fn ? fn(r, ctx) : ESR_OK;
		PQclear(r);
	}
	if (conn != NULL)
		pool_put(s, conn);
	return st;
}

esr_status esr__pg_one_int8(const PGresult *r, void *ctx)
{
	*(uint64_t *)ctx = 0;
	if (PQntuples(r) == 0)
		return ESR_OK;
	if (PQgetlength(r, 0, 0) != 8)
		return ESR_EIO;
	*(uint64_t *)ctx = esr__pg_get64(PQgetvalue(r, 0, 0));
	return ESR_OK;
}

/* --- open and close ---------------------------------------------------------- */

static void pg_destroy(void *impl)
{
	struct esr__pg_store *s = impl;
	unsigned i;

	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < s->nworkers; i++) {
		struct esr__pg_worker *w = &s->workers[i];
		if (w->started)
			pthread_join(w->thread, NULL);
		esr__pg_conn_close(&w->conn);
		esr__pg_params_free(&w->params);
		free(w->batch);
	}
	pool_flush(s);
	esr__pg_listen_stop(s);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->work);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_mutex_destroy(&s->wait_lock);
	pthread_cond_destroy(&s->committed);
	free(s->workers);
	free(s->conninfo);
	free(s);
}

static const esr_store_vtable pg_vtable = {
	.vtable_version = ESR_STORE_VTABLE_VERSION,
	.name = "postgres",
	.append = pg_append,
	.read = pg_read,
	.version = pg_version,
	.destroy = pg_destroy,
	.read_all = esr__pg_read_all,
	.head = esr__pg_head,
	.wait = esr__pg_wait,
	.snapshot_save = esr__pg_snapshot_save,
	.snapshot_load = esr__pg_snapshot_load,
	.checkpoint_save = esr__pg_checkpoint_save,
	.checkpoint_load = esr__pg_checkpoint_load,
	.command = pg_command,
};

static esr_status check_options(const esr_pg_store_options *o)
{
	const char *bad = NULL;

	if (!esr__pg_schema_valid(o->schema))
		bad = "schema: expected 1..48 of [a-z0-9_], not starting with a digit";
	else if (o->connections < 1 || o->connections > 64)
		bad = "connections: expected 1..64";
	else if (o->batch_max < 1 || o->batch_max > 4096)
		bad = "batch_max: expected 1..4096";
	else if (o->backoff_min_ms < 1 || o->backoff_max_ms < o->backoff_min_ms)
		bad = "backoff: expected 1 <= backoff_min_ms <= backoff_max_ms";
	if (bad != NULL)
		esr__why(o->why, o->why_size, "%s", bad);
	return bad ? ESR_EINVAL : ESR_OK;
}

static esr_status one_off(const char *conninfo, const char *schema, char *why, size_t n,
                          esr_status (*work)(PGconn *, const char *, char *, size_t))
{
	PGconn *c;
	esr_status st;

	if (conninfo == NULL)
		return ESR_EINVAL;
	if (schema == NULL)
		schema = "esr";
	if (!esr__pg_schema_valid(schema)) {
		if (why != NULL && n > 0)
			snprintf(why, n, "schema: expected 1..48 of [a-z0-9_], not starting with a digit");
		return ESR_EINVAL;
	}
	if ((st = esr__pg_connect(conninfo, &c, why, n)) != ESR_OK)
		return st;
	st = work(c, schema, why, n);
	PQfinish(c);
	return st;
}

esr_status esr_pg_migrate(const char *conninfo, const char *schema, char *why, size_t n)
{
	return one_off(conninfo, schema, why, n, esr__pg_migrate_conn);
}

esr_status esr_pg_drop(const char *conninfo, const char *schema, char *why, size_t n)
{
	return one_off(conninfo, schema, why, n, esr__pg_drop_conn);
}

static esr_status start_workers(struct esr__pg_store *s)
{
	esr_status st;
	unsigned i;

	if ((s->workers = calloc(s->o.connections, sizeof *s->workers)) == NULL)
		return ESR_ENOMEM;
	s->nworkers = s->o.connections;
	for (i = 0; i < s->nworkers; i++) {
		struct esr__pg_worker *w = &s->workers[i];
		w->s = s;
		if ((w->batch = calloc(2 * (size_t)s->o.batch_max, sizeof *w->batch)) == NULL)
			return ESR_ENOMEM;
		/* Connect here, so that a server that cannot be reached fails the open. */
		if ((st = esr__pg_conn_open(&w->conn, s->conninfo, s->schema)) != ESR_OK) {
			esr__why(s->o.why, s->o.why_size, "%s", w->conn.why);
			return st;
		}
		if (pthread_create(&w->thread, NULL, esr__pg_worker_main, w) != 0)
			return ESR_ENOMEM;
		w->started = 1;
	}
	return ESR_OK;
}

static struct esr__pg_store *store_new(const char *conninfo, const esr_pg_store_options *o)
{
	struct esr__pg_store *s = calloc(1, sizeof *s);

	if (s == NULL || (s->conninfo = strdup(conninfo)) == NULL) {
		free(s);
		return NULL;
	}
	s->o = *o;
	snprintf(s->schema, sizeof s->schema, "%s", o->schema);
	s->o.schema = s->schema;
	if (getrandom(&s->token_base, sizeof s->token_base, 0) != (ssize_t)sizeof s->token_base)
		s->token_base = esr__now_ns() * 0x9e3779b97f4a7c15u;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_mutex_init(&s->pool_lock, NULL);
	pthread_mutex_init(&s->wait_lock, NULL);
	esr__cond_init_monotonic(&s->committed);
	return s;
}

esr_status esr_pg_store_open(const char *conninfo, const esr_pg_store_options *opt,
                             esr_store **out)
{
	esr_pg_store_options o;
	struct esr__pg_store *s;
	esr_status st;

	if (opt != NULL)
		o = *opt;
	else
		esr_pg_store_options_default(&o);
	if (o.why != NULL && o.why_size > 0)
		o.why[0] = '\0';
	if (conninfo == NULL || out == NULL) {
		esr__why(o.why, o.why_size, "%s", "conninfo and out must not be NULL");
		return ESR_EINVAL;
	}
	if ((st = check_options(&o)) != ESR_OK)
		return st;
	if (o.migrate && (st = esr_pg_migrate(conninfo, o.schema, o.why, o.why_size)) != ESR_OK)
		return st;
	if ((s = store_new(conninfo, &o)) == NULL)
		return ESR_ENOMEM;
	if ((st = start_workers(s)) == ESR_OK && (st = esr_store_create(&pg_vtable, s, out)) == ESR_OK)
		return ESR_OK;
	pg_destroy(s);
	return st;
}

esr_status esr_pg_store_stats_get(esr_store *store, esr_pg_store_stats *out)
{
	struct esr__pg_store *s;

	if (store == NULL || out == NULL || esr__store_impl(store, &pg_vtable, (void **)&s) != ESR_OK)
		return ESR_EINVAL;
	out->appends = ck_pr_load_64(&s->stats.appends);
	out->events = ck_pr_load_64(&s->stats.events);
	out->conflicts = ck_pr_load_64(&s->stats.conflicts);
	out->round_trips = ck_pr_load_64(&s->stats.round_trips);
	out->reconnects = ck_pr_load_64(&s->stats.reconnects);
	out->resolved = ck_pr_load_64(&s->stats.resolved);
	out->resent = ck_pr_load_64(&s->stats.resent);
	out->failed = ck_pr_load_64(&s->stats.failed);
	return ESR_OK;
}
