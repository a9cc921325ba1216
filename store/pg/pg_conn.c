/*
 * store/pg/pg_conn.c: one connection to the server: open it, fence it, and run
 * a pipeline through it without ever blocking on a full socket.
 * docs/architecture.md has the map.
 *
 * The fence. A client whose connection broke cannot tell from its side
 * whether the server committed the transaction it had sent: the backend may
 * not even have noticed yet, and may commit after the client has asked. So
 * every session holds a session-level advisory lock on a random key for its
 * whole life. To settle what a lost session did, a new session waits for
 * that lock (terminating the old backend if it lingers): once it has it, the
 * old backend is gone and its transaction is final, committed or not, and a
 * query by commit token gives the true answer.
 */
#define _POSIX_C_SOURCE 200809L
#include <ck_pr.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "store/pg/pg_internal.h"

/* How long a pipeline may wait for the server before the connection is
 * given up for broken (a stuck network; the server's own work is far shorter). */
#define PIPELINE_WAIT_MS 30000

unsigned esr__pg_lose_reply_every;
static unsigned pipelines_sent;

/*
 * The test hook above. 0: not this pipeline; 1: cut the connection before
 * the Sync is queued (the server never commits, but the store cannot know
 * what reached it); 2: cut it after everything is out (the server commits,
 * unless it notices first: on loopback it often does, every time); 3: cut it
 * after the whole answer came (the commit surely happened) and throw the
 * answer away. The three take turns, so a test that loses every reply still
 * sees a commit in doubt at least every third round trip.
 */
static int reply_to_lose(void)
{
	unsigned every = ck_pr_load_uint(&esr__pg_lose_reply_every), n;

	if (every == 0 || (n = ck_pr_faa_32(&pipelines_sent, 1) + 1) % every != 0)
		return 0;
	return (int)((n / every) % 3) + 1;
}

static int cut(PGconn *pg)
{
	shutdown(PQsocket(pg), SHUT_RDWR);
	return 1;
}

static int64_t random_key(void)
{
	uint64_t k = 0;

	if (getrandom(&k, sizeof k, 0) != (ssize_t)sizeof k) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		k = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)ts.tv_sec;
	}
	return (int64_t)(k >> 1); /* positive: easier to read in pg_locks */
}

/* One statement with one int8 parameter, its result discarded. */
static esr_status exec_key(struct esr__pg_conn *c, const char *sql, int64_t key, int *got)
{
	char text[24];
	const char *values[1] = {text};
	PGresult *r;
	esr_status st = ESR_OK;

	snprintf(text, sizeof text, "%lld", (long long)key);
	r = PQexecParams(c->pg, sql, 1, NULL, values, NULL, NULL, 0);
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK) {
		esr__pg_why(c->why, sizeof c->why, "postgres", r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg));
		st = ESR_EIO;
	} else if (got != NULL) {
		*got = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	}
	PQclear(r);
	return st;
}

esr_status esr__pg_connect(const char *conninfo, PGconn **out, char *why, size_t n)
{
	char *err = NULL;
	PQconninfoOption *parsed = PQconninfoParse(conninfo, &err);

	*out = NULL;
	if (parsed == NULL) {
		esr__pg_why(why, n, "postgres: bad connection string", err ? err : "out of memory");
		PQfreemem(err);
		return err ? ESR_EINVAL : ESR_ENOMEM;
	}
	PQconninfoFree(parsed);
	if ((*out = PQconnectdb(conninfo)) == NULL)
		return ESR_ENOMEM;
	if (PQstatus(*out) != CONNECTION_OK) {
		esr__pg_why(why, n, "postgres: cannot connect", PQerrorMessage(*out));
		PQfinish(*out);
		*out = NULL;
		return ESR_EIO;
	}
	esr__pg_quiet(*out);
	return ESR_OK;
}

esr_status esr__pg_conn_open(struct esr__pg_conn *c, const char *conninfo, const char *schema)
{
	esr_status st;

	c->why[0] = '\0';
	if ((st = esr__pg_connect(conninfo, &c->pg, c->why, sizeof c->why)) != ESR_OK)
		return st;
	c->fence = random_key();
	if ((st = exec_key(c, "SELECT pg_advisory_lock($1::bigint)", c->fence, NULL)) != ESR_OK ||
	    (st = esr__pg_prepare(c->pg, schema, c->why, sizeof c->why)) != ESR_OK) {
		esr__pg_conn_close(c);
		return st;
	}
	return ESR_OK;
}

void esr__pg_conn_close(struct esr__pg_conn *c)
{
	if (c->pg != NULL)
		PQfinish(c->pg);
	c->pg = NULL;
}

esr_status esr__pg_fence_wait(struct esr__pg_conn *c, int64_t key)
{
	static const char terminate[] =
		"SELECT bool_and(pg_terminate_backend(pid)) FROM pg_locks"
		" WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
		" AND ((classid::bigint << 32) | objid::bigint) = $1::bigint";
	esr_status st;
	int got = 0, round;

	for (round = 0; round < 50; round++) {
		if ((st = exec_key(c, "SELECT pg_try_advisory_lock($1::bigint)", key, &got)) != ESR_OK)
			return st;
		if (got)
			return exec_key(c, "SELECT pg_advisory_unlock($1::bigint)", key, NULL);
		/* The old backend lives on: end it. Its transaction then either
		 * committed already or never will. */
		if ((st = exec_key(c, terminate, key, NULL)) != ESR_OK)
			return st;
		nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
	}
	esr__pg_why(c->why, sizeof c->why, "postgres", "a lost session would not end");
	return ESR_EIO;
}

/* Wait for the socket; 0 when ready, -1 on error or after PIPELINE_WAIT_MS. */
static int wait_socket(PGconn *pg, short events)
{
	struct pollfd p = {PQsocket(pg), events, 0};
	int n;

	if (p.fd < 0)
		return -1;
	while ((n = poll(&p, 1, PIPELINE_WAIT_MS)) < 0)
		;
	return n == 1 && !(p.revents & POLLNVAL) ? 0 : -1;
}

/* Push the output buffer out, reading meanwhile so the server never stalls
 * on its own full socket. 0 when all is sent. */
static int flush_all(PGconn *pg)
{
	int r;

	while ((r = PQflush(pg)) == 1) {
		if (wait_socket(pg, POLLIN | POLLOUT) != 0 || !PQconsumeInput(pg))
			return -1;
	}
	return r;
}

/* The next result, waiting for it without blocking in libpq. */
static int next_result(PGconn *pg, PGresult **out)
{
	while (PQisBusy(pg)) {
		if (wait_socket(pg, POLLIN) != 0 || !PQconsumeInput(pg))
			return -1;
	}
	*out = PQgetResult(pg);
	return 0;
}

static esr_status broken(struct esr__pg_conn *c, esr_status st)
{
	esr__pg_why(c->why, sizeof c->why, "postgres: connection lost", PQerrorMessage(c->pg));
	esr__pg_conn_close(c);
	return st;
}

esr_status esr__pg_pipeline(struct esr__pg_conn *c, pg_send_fn send, pg_take_fn take, void *ctx,
                       char sqlstate[6])
{
	esr_status st = ESR_OK;
	int lose = reply_to_lose();
	PGresult *r;
	size_t i = 0;

	sqlstate[0] = '\0';
	if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg))
		return broken(c, ESR_EIO);
	if (send(ctx, c->pg) != ESR_OK)
		return broken(c, ESR_EIO); /* no Sync reached the server: no commit */
	if ((lose == 1 && cut(c->pg)) || !PQpipelineSync(c->pg) || flush_all(c->pg) != 0 ||
	    (lose == 2 && cut(c->pg)))
		return broken(c, ESR_EUNKNOWN);
	for (;;) {
		if (next_result(c->pg, &r) != 0)
			return broken(c, ESR_EUNKNOWN);
		if (r == NULL) { /* the end of one statement's results */
			i++;
			continue;
		}
		switch (PQresultStatus(r)) {
		case PGRES_PIPELINE_SYNC:
			PQclear(r);
			if (lose == 3 && cut(c->pg))
				return broken(c, ESR_EUNKNOWN);
			if (!PQexitPipelineMode(c->pg) || PQsetnonblocking(c->pg, 0) != 0)
				return broken(c, st == ESR_OK ? ESR_OK : st);
			return st;
		case PGRES_PIPELINE_ABORTED:
			break;
		case PGRES_FATAL_ERROR:
			if (esr__pg_session_lost(c->pg, r)) {
				PQclear(r);
				return broken(c, ESR_EUNKNOWN);
			}
			if (st == ESR_OK) {
				const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
				esr__pg_why(c->why, sizeof c->why, "postgres", PQresultErrorMessage(r));
				snprintf(sqlstate, 6, "%s", code ? code : "");
				st = ESR_ECANCELED; /* the transaction rolls back at the Sync */
			}
			break;
		default:
			if (st == ESR_OK)
				take(ctx, i, r);
		}
		PQclear(r);
	}
}
