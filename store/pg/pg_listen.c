/*
 * store/pg/pg_listen.c: appends committed by other processes wake this
 * store's waiters at the head. docs/architecture.md has the map.
 *
 * Every transaction that takes positions updates the head row, and a trigger
 * on it (schema 4, pg_sql.c) sends NOTIFY on the channel "<schema>.appended"
 * with the head's new position; PostgreSQL delivers it at commit, after the
 * events are visible. The first wait at the head starts one thread with its
 * own connection that LISTENs on that channel and hands each position to
 * esr__pg_all_committed, as this store's own writers do, so a wait ends as
 * soon as any process commits past it. Notifications are a hint: a wait
 * still ends at its timeout, which is how a subscription's poll finds what a
 * lost notification or a dropped listener connection (reconnected after a
 * pause) did not announce.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <ck_pr.h>

#include "store/pg/pg_internal.h"

/* Between reconnects of a lost listener connection. */
#define RECONNECT_MS 1000

/* Sleep up to ms, or until close asks the thread to leave: returns 1 then. */
static int pause_or_stop(struct esr__pg_store *s, int ms)
{
	struct pollfd p = {s->listen_stop[0], POLLIN, 0};

	return poll(&p, 1, ms) > 0;
}

static PGconn *listen_connect(struct esr__pg_store *s)
{
	char sql[ESR__PG_SCHEMA_MAX + 32];
	PGconn *c;
	PGresult *r;
	int ok;

	if (esr__pg_connect(s->conninfo, &c, NULL, 0) != ESR_OK)
		return NULL;
	snprintf(sql, sizeof sql, "LISTEN \"%s.appended\"", s->schema);
	r = PQexec(c, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		PQfinish(c);
		return NULL;
	}
	return c;
}

static void *listen_main(void *arg)
{
	struct esr__pg_store *s = arg;
	PGnotify *n;
	PGconn *c = NULL;

	for (;;) {
		struct pollfd p[2];

		if (c == NULL && (c = listen_connect(s)) == NULL) {
			if (pause_or_stop(s, RECONNECT_MS))
				break;
			continue;
		}
		p[0] = (struct pollfd){PQsocket(c), POLLIN, 0};
		p[1] = (struct pollfd){s->listen_stop[0], POLLIN, 0};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents != 0)
			break;
		if (p[0].revents == 0)
			continue;
		if (!PQconsumeInput(c)) { /* the session is gone: a new one */
			PQfinish(c);
			c = NULL;
			continue;
		}
		while ((n = PQnotifies(c)) != NULL) {
			uint64_t last = strtoull(n->extra, NULL, 10);
			PQfreemem(n);
			esr__pg_all_committed(s, last);
		}
	}
	if (c != NULL)
		PQfinish(c);
	return NULL;
}

void esr__pg_listen_start(struct esr__pg_store *s)
{
	if (ck_pr_load_int(&s->listening))
		return;
	pthread_mutex_lock(&s->wait_lock);
	if (!s->listening && pipe(s->listen_stop) == 0) {
		if (pthread_create(&s->listener, NULL, listen_main, s) == 0) {
			ck_pr_store_int(&s->listening, 1);
		} else { /* waits end at their timeouts, as before */
			close(s->listen_stop[0]);
			close(s->listen_stop[1]);
		}
	}
	pthread_mutex_unlock(&s->wait_lock);
}

void esr__pg_listen_stop(struct esr__pg_store *s)
{
	if (!s->listening)
		return;
	while (write(s->listen_stop[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(s->listener, NULL);
	close(s->listen_stop[0]);
	close(s->listen_stop[1]);
	s->listening = 0;
}
