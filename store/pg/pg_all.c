/*
 * store/pg/pg_all.c: the PostgreSQL store's global order: read_all, head, and
 * waiting at the head. docs/architecture.md has the map.
 *
 * From schema 2 on, positions are handed out under the head row's lock and
 * follow commits (pg_sql.c), so what a read sees is always every position up
 * to some point: reading `position >= from ORDER BY position` and going on
 * from one past the last row never skips one that commits later.
 *
 * Waiting. A caller at the head sleeps on a condition variable that this
 * store's writers broadcast after each batch they commit, only when someone
 * waits: the writer raises `written`, fences, and loads `waiters`; a waiter
 * raises `waiters`, fences, and loads `written`, so one of them sees the
 * other and no wake-up is lost. Appends by other processes reach the same
 * wake-up through the listener (pg_listen.c), which the first wait starts;
 * a wait they do not end ends at its timeout, and the caller's next read sees
 * them.
 */
#define _GNU_SOURCE
#include <ck_pr.h>
#include <pthread.h>
#include <time.h>

#include "core/internal.h"
#include "store/pg/pg_internal.h"
#include "store/store_internal.h"

struct all_read {
	esr_visit_fn visit;
	void *ctx;
	uint64_t *next;
};

static esr_status all_rows(const PGresult *r, void *ctx)
{
	struct all_read *a = ctx;
	uint64_t last = 0;
	esr_status st = esr__pg_visit_rows(r, NULL, a->visit, a->ctx, &last);

	if (last != 0)
		*a->next = last + 1;
	return st;
}

esr_status esr__pg_read_all(void *impl, uint64_t from, size_t max, esr_visit_fn visit, void *ctx,
                       uint64_t *next)
{
	char f[8], m[8];
	const char *values[2] = {f, m};
	int lengths[2] = {8, 8};
	struct all_read a = {visit, ctx, next};

	if (from == 0)
		from = 1;
	*next = from;
	if (from > INT64_MAX) /* no position gets there */
		return ESR_OK;
	esr__pg_put64(f, from);
	esr__pg_put64(m, max);
	return esr__pg_run_then(impl, ESR__PG_STMT_ALL, 2, values, lengths, all_rows, &a);
}

esr_status esr__pg_head(void *impl, uint64_t *position)
{
	return esr__pg_run_then(impl, ESR__PG_STMT_HEAD, 0, NULL, NULL, esr__pg_one_int8, position);
}

void esr__pg_all_committed(struct esr__pg_store *s, uint64_t last)
{
	uint64_t was;

	if (last == 0)
		return; /* nothing appended (all conflicts) */
	/* Two writer threads commit in either order: keep the larger. */
	while ((was = ck_pr_load_64(&s->written)) < last && !ck_pr_cas_64(&s->written, was, last))
		;
	ck_pr_fence_memory(); /* see the header comment */
	if (ck_pr_load_uint(&s->waiters) == 0)
		return;
	pthread_mutex_lock(&s->wait_lock);
	pthread_cond_broadcast(&s->committed);
	pthread_mutex_unlock(&s->wait_lock);
}

esr_status esr__pg_wait(void *impl, uint64_t after, unsigned timeout_ms)
{
	struct esr__pg_store *s = impl;

	esr__pg_listen_start(s);
	/* esr__pg_all_committed is the writer's side (see the header comment). */
	esr__store_wait_past(&s->wait_lock, &s->committed, &s->waiters, &s->written, after,
	                     timeout_ms);
	return ESR_OK;
}
