/*
 * store/pg/pg_writer.c: the PostgreSQL store's appends: the queue and the
 * connection threads that send it (include/esr/pg_store.h).
 * docs/architecture.md has the map.
 *
 * Batches. An append is copied into one block and queued. Each connection
 * has a thread that takes up to batch_max queued appends, sorts them by
 * stream and sends them as one statement, append_batch(), then a Sync: one
 * round trip, one transaction, one commit. append_batch passes each
 * append's stream row, then locks the schema's head row to number the
 * events, which orders positions by commit (pg_sql.c, migration 2). The sort
 * matters across processes: every batch locks its streams' rows in the same
 * order (and the head last), so two batches can wait for each other but
 * never deadlock. After a commit, callers waiting at the head are woken.
 *
 * Outcomes. Each row of the statement's result is an append's result (appended, a
 * conflict with the actual version, or a duplicate command id with the
 * versions its events got: pg_sql.c, migration 5); once the Sync returns they are all
 * final and the completions run, in batch order, on the connection's thread.
 * A statement error rolls the whole batch back: a deadlock or serialization
 * failure (class 40, from a foreign writer) retries it; anything else sends
 * each append alone, so only the append at fault fails (ESR_EIO).
 *
 * Faults. If the connection breaks before the Sync is queued, nothing was
 * committed and the batch is sent again after reconnecting. If it breaks
 * after, the commit is in doubt: after reconnecting, the thread fences the
 * lost session (esr__pg_fence_wait) and looks each append up by its own commit
 * token (every append of a batch has one of its own, so two appends to one
 * stream in one batch never find each other's events): found, it completes
 * ESR_OK with the versions and position its events have; not found, it is
 * sent again. Reconnects back off exponentially. An append that waits past
 * timeout_ms for a server that stays away fails: ESR_EUNKNOWN if in doubt,
 * else ESR_EIO.
 */
#define _GNU_SOURCE
#include <ck_pr.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "store/pg/pg_internal.h"

/* --- completing ------------------------------------------------------------- */

static void finish(struct esr__pg_store *s, struct esr__pg_append *a)
{
	switch (a->result.status) {
	case ESR_OK:
		esr__pg_count(&s->stats.appends, 1);
		esr__pg_count(&s->stats.events, a->n);
		break;
	case ESR_ECONFLICT:
		esr__pg_count(&s->stats.conflicts, 1);
		break;
	case ESR_EDUPLICATE: /* an outcome, not a failure: the versions stay */
		break;
	default:
		esr__pg_count(&s->stats.failed, 1);
		a->result.version = a->result.position = 0;
	}
	a->done(a->ctx, &a->result);
	free(a);
}

static void fail(struct esr__pg_store *s, struct esr__pg_append *a, esr_status st)
{
	a->result.status = st;
	finish(s, a);
}

/* Fail the appends of the batch that have waited past timeout_ms. */
static void expire_batch(struct esr__pg_worker *w)
{
	struct esr__pg_store *s = w->s;
	uint64_t now = esr__now_ms(), limit = s->o.timeout_ms;
	struct esr__pg_append *a;
	size_t i, kept = 0;
	int doubt = 0;

	for (i = 0; i < w->n; i++) {
		a = w->batch[i];
		if (now - a->queued_ms < limit) {
			doubt |= a->in_doubt;
			w->batch[kept++] = a;
		} else {
			fail(s, a, a->in_doubt ? ESR_EUNKNOWN : ESR_EIO);
		}
	}
	w->n = kept;
	if (!doubt)
		w->lost_fence = 0;
}

/* Fail the appends that have waited past timeout_ms: the batch's, and the
 * queue's (when every connection is down nobody else takes them). */
static void expire(struct esr__pg_worker *w)
{
	struct esr__pg_store *s = w->s;
	uint64_t now = esr__now_ms(), limit = s->o.timeout_ms;
	struct esr__pg_append *a, **link, *gone = NULL;

	expire_batch(w);
	pthread_mutex_lock(&s->lock);
	for (link = &s->head; (a = *link) != NULL;) {
		if (now - a->queued_ms < limit) {
			s->tail = a;
			link = &a->next;
			continue;
		}
		*link = a->next;
		a->next = gone;
		gone = a;
	}
	if (s->head == NULL)
		s->tail = NULL;
	pthread_mutex_unlock(&s->lock);
	while ((a = gone) != NULL) {
		gone = a->next;
		fail(s, a, ESR_EIO);
	}
}

/* --- taking a batch --------------------------------------------------------- */

/* Up to batch_max appends (and ESR__PG_BATCH_BYTES of payload, unless one append
 * has more) into w->batch; 0 when stopping with nothing left. */
static int take(struct esr__pg_worker *w)
{
	struct esr__pg_store *s = w->s;
	struct esr__pg_append *a;
	size_t bytes = 0;

	pthread_mutex_lock(&s->lock);
	while (s->head == NULL && !s->stopping)
		pthread_cond_wait(&s->work, &s->lock);
	while (w->n < s->o.batch_max && (a = s->head) != NULL &&
	       (w->n == 0 || bytes + a->bytes <= ESR__PG_BATCH_BYTES)) {
		s->head = a->next;
		bytes += a->bytes;
		w->batch[w->n++] = a;
	}
	if (s->head == NULL)
		s->tail = NULL;
	else
		pthread_cond_signal(&s->work); /* more than one batch: wake another */
	pthread_mutex_unlock(&s->lock);
	return w->n > 0;
}

static int key_cmp(const struct esr__pg_append *a, const struct esr__pg_append *b)
{
	int c;

	if (a->type_len != b->type_len)
		return a->type_len < b->type_len ? -1 : 1;
	if ((c = memcmp(a->type, b->type, a->type_len)) != 0)
		return c;
	if (a->id_len != b->id_len)
		return a->id_len < b->id_len ? -1 : 1;
	return memcmp(a->id, b->id, a->id_len);
}

/* Stable sort by stream (insertion into runs is fine at batch sizes, but a
 * batch can be thousands: merge sort, with the taken order as tie-break). */
static void sort_batch(struct esr__pg_append **v, size_t n, struct esr__pg_append **tmp)
{
	size_t width, i, l, r, end, mid, k;

	for (width = 1; width < n; width *= 2) {
		for (i = 0; i < n; i += 2 * width) {
			mid = i + width < n ? i + width : n;
			end = i + 2 * width < n ? i + 2 * width : n;
			for (l = i, r = mid, k = i; k < end; k++)
				tmp[k] = l < mid && (r >= end || key_cmp(v[l], v[r]) <= 0) ? v[l++] : v[r++];
		}
		memcpy(v, tmp, n * sizeof *v);
	}
}

/* --- one pipeline ----------------------------------------------------------- */

struct run {
	struct esr__pg_worker *w;
	struct esr__pg_append **list;
	size_t n;
	int malformed;
};

/* The whole batch is one append_batch statement (pg_sql.c, migration 2):
 * every path that sends appends comes here. */
static esr_status send_appends(void *ctx, PGconn *pg)
{
	struct run *r = ctx;
	struct esr__pg_params *p = &r->w->params;
	esr_status st;

	if ((st = esr__pg_params_build(p, r->list, r->n)) != ESR_OK)
		return st;
	return PQsendQueryPrepared(pg, ESR__PG_STMT_BATCH, ESR__PG_BATCH_PARAMS, p->values, p->lengths,
	                           p->formats, 1) ? ESR_OK : ESR_EIO;
}

/* Row k of the one result is list[k]'s outcome. */
static void take_result(void *ctx, size_t i, const PGresult *res)
{
	struct run *r = ctx;
	size_t k;

	if (i != 0 || PQresultStatus(res) != PGRES_TUPLES_OK || (size_t)PQntuples(res) != r->n) {
		r->malformed = 1;
		return;
	}
	for (k = 0; k < r->n; k++)
		if (esr__pg_append_result(res, (int)k, r->list[k]) != ESR_OK)
			r->malformed = 1;
}

/* The last position list[0..n) took, 0 if none appended. */
static uint64_t last_position(struct esr__pg_append **list, size_t n)
{
	uint64_t last = 0, end;
	size_t i;

	for (i = 0; i < n; i++) {
		if (list[i]->result.status != ESR_OK || list[i]->result.position == 0)
			continue;
		end = list[i]->result.position + list[i]->n - 1;
		last = end > last ? end : last;
	}
	return last;
}

static uint64_t next_token(struct esr__pg_store *s)
{
	uint64_t t;

	do /* only uniqueness matters: the atomic add gives each caller its own
	    * value; nothing is published with it, so no ordering is needed */
		t = s->token_base + ck_pr_faa_64(&s->token_seq, 1);
	while (t == 0 || t == (uint64_t)-1);
	return t & INT64_MAX; /* a positive bigint */
}

/*
 * Send list[0..n) as one transaction. ESR_OK: every append has its result.
 * Otherwise as esr__pg_pipeline (ESR_EIO, ESR_EUNKNOWN: the connection is gone;
 * ESR_ECANCELED: rolled back, sqlstate says why).
 */
static esr_status send_batch(struct esr__pg_worker *w, struct esr__pg_append **list, size_t n,
                             char sqlstate[6])
{
	struct run r = {w, list, n, 0};
	esr_status st;
	size_t i;

	for (i = 0; i < n; i++) /* fresh ones: a send that never landed leaves nothing behind */
		list[i]->token = next_token(w->s);
	esr__pg_count(&w->s->stats.round_trips, 1);
	st = esr__pg_pipeline(&w->conn, send_appends, take_result, &r, sqlstate);
	if (st == ESR_OK && r.malformed) {
		/* The Sync came back, so the transaction committed, but its rows
		 * cannot be trusted. Sending again could store the events twice:
		 * settle each append by its token, as after a lost reply. */
		snprintf(w->conn.why, sizeof w->conn.why, "postgres: malformed append result");
		esr__pg_conn_close(&w->conn);
		st = ESR_EUNKNOWN;
	}
	if (st == ESR_OK)
		esr__pg_all_committed(w->s, last_position(list, n));
	if (st == ESR_EUNKNOWN) {
		for (i = 0; i < n; i++)
			list[i]->in_doubt = 1;
		w->lost_fence = w->conn.fence;
	}
	return st;
}

/* Complete list[0..n) with the results they hold. */
static void finish_all(struct esr__pg_store *s, struct esr__pg_append **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		finish(s, list[i]);
}

/*
 * The batch was rolled back by an error that is not the connection's: send
 * each append alone, so that only the one at fault fails. Returns what broke
 * the connection, if something did (the rest stay in the batch).
 */
static esr_status one_by_one(struct esr__pg_worker *w)
{
	char sqlstate[6];
	esr_status st = ESR_OK;
	size_t i, kept = 0;

	for (i = 0; i < w->n; i++) {
		struct esr__pg_append *a = w->batch[i];
		if (st != ESR_OK || w->conn.pg == NULL) {
			w->batch[kept++] = a;
			continue;
		}
		st = send_batch(w, &a, 1, sqlstate);
		if (st == ESR_OK)
			finish(w->s, a);
		else if (st == ESR_ECANCELED)
			fail(w->s, a, ESR_EIO), st = ESR_OK;
		else
			w->batch[kept++] = a;
	}
	w->n = kept;
	return st;
}

static void run_batch(struct esr__pg_worker *w)
{
	struct esr__pg_append **tmp = w->batch + w->s->o.batch_max;
	char sqlstate[6];
	esr_status st;
	int tries;

	sort_batch(w->batch, w->n, tmp);
	for (tries = 0; tries < 3; tries++) {
		st = send_batch(w, w->batch, w->n, sqlstate);
		if (st == ESR_OK) {
			finish_all(w->s, w->batch, w->n);
			w->n = 0;
			return;
		}
		if (st != ESR_ECANCELED)
			return; /* the connection is gone: reconnect, then settle */
		if (sqlstate[0] != '4' || sqlstate[1] != '0')
			break; /* not a deadlock or serialization failure: find the culprit */
	}
	one_by_one(w);
}

/* --- reconnecting ------------------------------------------------------------- */

/* After reconnecting: settle each append whose commit was in doubt, by its
 * own token (the lost session is over first, so what it did is final). */
static esr_status settle_doubts(struct esr__pg_worker *w)
{
	struct esr__pg_store *s = w->s;
	const char *values[3];
	int lengths[3], formats[3] = {1, 1, 1};
	char token[8];
	esr_status st;
	size_t i, kept = 0;

	if (w->lost_fence != 0 && (st = esr__pg_fence_wait(&w->conn, w->lost_fence)) != ESR_OK)
		return st;
	w->lost_fence = 0;
	for (i = 0; i < w->n; i++) {
		struct esr__pg_append *a = w->batch[i];
		PGresult *r;
		if (!a->in_doubt) {
			w->batch[kept++] = a;
			continue;
		}
		esr__pg_put64(token, a->token);
		values[0] = a->type, lengths[0] = (int)a->type_len;
		values[1] = (const char *)a->id, lengths[1] = (int)a->id_len;
		values[2] = token, lengths[2] = 8;
		r = PQexecPrepared(w->conn.pg, ESR__PG_STMT_FIND, 3, values, lengths, formats, 1);
		if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
			esr__pg_why(w->conn.why, sizeof w->conn.why, "postgres",
			       r ? PQresultErrorMessage(r) : PQerrorMessage(w->conn.pg));
			PQclear(r);
			for (; i < w->n; i++)
				w->batch[kept++] = w->batch[i];
			w->n = kept;
			w->lost_fence = 0; /* the fence is passed: the outcome is final */
			esr__pg_conn_close(&w->conn);
			return ESR_EIO;
		}
		if (PQgetisnull(r, 0, 0)) { /* it never took effect: send it again */
			a->in_doubt = 0;
			esr__pg_count(&s->stats.resent, 1);
			w->batch[kept++] = a;
		} else {
			a->result.status = ESR_OK;
			a->result.version = esr__pg_get64(PQgetvalue(r, 0, 0));
			a->result.position = esr__pg_get64(PQgetvalue(r, 0, 1));
			esr__pg_count(&s->stats.resolved, 1);
			esr__pg_all_committed(s, last_position(&a, 1));
			finish(s, a);
		}
		PQclear(r);
	}
	w->n = kept;
	return ESR_OK;
}

static void backoff(struct esr__pg_worker *w)
{
	unsigned ms = w->backoff_ms;
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&t, NULL);
	ms *= 2;
	w->backoff_ms = ms > w->s->o.backoff_max_ms ? w->s->o.backoff_max_ms : ms;
}

static esr_status reconnect(struct esr__pg_worker *w)
{
	struct esr__pg_store *s = w->s;
	esr_status st;

	if (w->backoff_ms > 0)
		backoff(w);
	else
		w->backoff_ms = s->o.backoff_min_ms;
	if ((st = esr__pg_conn_open(&w->conn, s->conninfo, s->schema)) != ESR_OK)
		return st;
	esr__pg_count(&s->stats.reconnects, 1);
	if ((st = settle_doubts(w)) != ESR_OK)
		esr__pg_conn_close(&w->conn); /* settle again on the next connection */
	return st;
}

void *esr__pg_worker_main(void *arg)
{
	struct esr__pg_worker *w = arg;

	for (;;) {
		if (w->n == 0 && !take(w))
			break;
		if (w->conn.pg == NULL && reconnect(w) != ESR_OK) {
			expire(w);
			continue;
		}
		if (w->n > 0)
			run_batch(w);
		/* Left over: its send failed or was in doubt. A server that answers
		 * every reconnect yet never lets it through must not hold it
		 * past timeout_ms either. */
		if (w->n > 0)
			expire_batch(w);
		if (w->conn.pg != NULL)
			w->backoff_ms = 0;
	}
	esr__pg_conn_close(&w->conn);
	return NULL;
}
