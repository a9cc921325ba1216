/*
 * subscription/subscribe.c: subscriptions (esr/subscription.h).
 * docs/architecture.md has the map.
 *
 * One thread per subscription runs one loop: read up to `batch` events from
 * the next position (esr_store_read_all), hand each to the handler, and when
 * a read returns nothing, save the checkpoint if it moved and wait at the
 * head (esr_store_wait). Catch-up and live delivery are that same loop, so
 * there is no hand-over to get wrong: every position comes from the store's
 * own global read, which never passes a position that may still commit.
 *
 * Who touches what: `next`, `since_save` and the handler belong to the
 * thread. `position`, `handled`, `checkpoint`, `reads`, `waits`, `errors`
 * and `status` are written by the thread and read by anyone with ck_pr.
 * `stop` is written by esr_subscription_stop. A status out of the read is
 * the handler's when `refused` is set (it stops the subscription, whatever
 * it is), else the store's (ESR_EIO is retried). The mutex and condition only
 * serve esr_subscription_wait callers, woken after each batch.
 */
#define _POSIX_C_SOURCE 200809L
#include <ck_pr.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "core/sync.h"
#include "store/store_internal.h"

#define DEFAULT_CHECKPOINT_EVERY 1024
#define DEFAULT_BATCH 256
#define DEFAULT_POLL_MS 50
/* A store read that fails with ESR_EIO is tried again after this long. */
#define RETRY_MS 100


struct esr_subscription {
	esr_store *store;
	esr_event_handler handler;
	void *ctx;
	esr_subscription_options opt;
	esr_checkpoint_store cp; /* the caller's, or the store's (see use_store) */
	int has_cp;
	char name[ESR_CHECKPOINT_NAME_MAX + 1];

	uint64_t next;       /* the position to read next (thread only) */
	uint64_t since_save; /* handled since the last checkpoint save (thread only) */

	uint64_t position, handled, checkpoint, reads, waits, errors;
	int status; /* an esr_status */
	int stop;
	int halted; /* the thread saw `stop` between two events (thread only) */
	int refused; /* the handler returned the status that ended the read (thread only) */
	int waiters;

	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

esr_status esr_subscription_options_default(esr_subscription_options *o)
{
	if (o == NULL)
		return ESR_EINVAL;
	memset(o, 0, sizeof *o);
	o->checkpoint_every = DEFAULT_CHECKPOINT_EVERY;
	o->batch = DEFAULT_BATCH;
	o->poll_ms = DEFAULT_POLL_MS;
	return ESR_OK;
}

/* --- checkpoints in the store ------------------------------------------------------- */

static esr_status store_cp_load(void *ctx, uint64_t *position)
{
	esr_subscription *sub = ctx;

	return esr_store_checkpoint_load(sub->store, sub->name, position);
}

static esr_status store_cp_save(void *ctx, uint64_t position)
{
	esr_subscription *sub = ctx;

	return esr_store_checkpoint_save(sub->store, sub->name, position);
}

/* Save the checkpoint if it moved. A failed save stops nothing: events are
 * only delivered again after a restart, which at-least-once allows. */
static esr_status save_checkpoint(esr_subscription *sub)
{
	uint64_t pos = ck_pr_load_64(&sub->position);
	esr_status st;

	if (!sub->has_cp || pos == ck_pr_load_64(&sub->checkpoint))
		return ESR_OK;
	if ((st = sub->cp.save(sub->cp.ctx, pos)) != ESR_OK) {
		ck_pr_inc_64(&sub->errors);
		return st;
	}
	ck_pr_store_64(&sub->checkpoint, pos);
	sub->since_save = 0;
	return ESR_OK;
}

/* --- the loop ---------------------------------------------------------------------- */

static esr_status deliver(void *ctx, const esr_recorded_event *event)
{
	esr_subscription *sub = ctx;
	esr_status st;

	if (ck_pr_load_int(&sub->stop)) {
		sub->halted = 1; /* tells run() this ECANCELED is ours, not the handler's */
		return ESR_ECANCELED;
	}
	if ((st = sub->handler(sub->ctx, event)) != ESR_OK) {
		sub->refused = 1; /* tells run() this status is the handler's, not the store's */
		return st;
	}
	ck_pr_store_64(&sub->position, event->position);
	ck_pr_store_64(&sub->handled, sub->handled + 1);
	if (++sub->since_save >= sub->opt.checkpoint_every)
		save_checkpoint(sub);
	return ESR_OK;
}

static void wake_waiters(esr_subscription *sub)
{
	pthread_mutex_lock(&sub->lock);
	if (sub->waiters)
		pthread_cond_broadcast(&sub->cond);
	pthread_mutex_unlock(&sub->lock);
}

static void *run(void *arg)
{
	esr_subscription *sub = arg;
	esr_status st = ESR_OK;
	uint64_t from;

	while (!ck_pr_load_int(&sub->stop)) {
		from = sub->next;
		st = esr_store_read_all(sub->store, from, sub->opt.batch, deliver, sub,
		                        &sub->next);
		if (st == ESR_EIO && !sub->refused) { /* a store that lost its server: try again */
			ck_pr_inc_64(&sub->errors);
			esr__sleep_ms(RETRY_MS);
			continue;
		}
		if (st != ESR_OK)
			break;
		if (sub->next != from) {
			ck_pr_inc_64(&sub->reads);
			wake_waiters(sub);
			continue;
		}
		save_checkpoint(sub); /* caught up: a good moment */
		ck_pr_inc_64(&sub->waits);
		esr_store_wait(sub->store, from - 1, sub->opt.poll_ms);
	}
	if (st != ESR_OK && !sub->halted) {
		save_checkpoint(sub); /* everything before the failure was handled */
		ck_pr_store_int(&sub->status, (int)st);
	}
	wake_waiters(sub);
	return NULL;
}

/* --- public ---------------------------------------------------------------------- */

static esr_status check_options(const esr_store *store, const esr_subscription_options *o)
{
	if (o->checkpoint_name != NULL && o->checkpoint != NULL)
		return ESR_EINVAL;
	if (o->checkpoint != NULL && (o->checkpoint->load == NULL || o->checkpoint->save == NULL))
		return ESR_EINVAL;
	if (o->checkpoint_name != NULL && esr__check_checkpoint_name(o->checkpoint_name) != ESR_OK)
		return ESR_EINVAL;
	if (o->batch == 0 || o->batch > ESR_READ_ALL_MAX || o->checkpoint_every == 0)
		return ESR_EINVAL;
	if (o->checkpoint_name != NULL && !esr__store_has_checkpoints(store))
		return ESR_ENOTSUP;
	return ESR_OK;
}

/* Where delivery starts: after the saved checkpoint, if there is one. */
static esr_status start_position(esr_subscription *sub, uint64_t from)
{
	uint64_t saved = 0;
	esr_status st;

	if (sub->has_cp && (st = sub->cp.load(sub->cp.ctx, &saved)) != ESR_OK)
		return st;
	if (saved == UINT64_MAX) /* no position is that high: nothing would follow it */
		return ESR_ECORRUPT;
	sub->checkpoint = saved;
	sub->position = saved;
	sub->next = saved ? saved + 1 : (from ? from : 1);
	return ESR_OK;
}

static void sub_free(esr_subscription *sub)
{
	pthread_cond_destroy(&sub->cond);
	pthread_mutex_destroy(&sub->lock);
	free(sub);
}

esr_status esr_subscribe(esr_store *store, uint64_t from, esr_event_handler handler,
                         void *ctx, const esr_subscription_options *options,
                         esr_subscription **out)
{
	esr_subscription_options o;
	esr_subscription *sub;
	uint64_t ignored;
	esr_status st;

	if (store == NULL || handler == NULL || out == NULL)
		return ESR_EINVAL;
	if (options == NULL)
		esr_subscription_options_default(&o);
	else
		o = *options;
	if (o.poll_ms == 0)
		o.poll_ms = DEFAULT_POLL_MS;
	if ((st = check_options(store, &o)) != ESR_OK)
		return st;
	if ((st = esr_store_head(store, &ignored)) != ESR_OK) /* global reads at all? */
		return st;
	if ((sub = calloc(1, sizeof *sub)) == NULL)
		return ESR_ENOMEM;
	sub->store = store;
	sub->handler = handler;
	sub->ctx = ctx;
	sub->opt = o;
	if (o.checkpoint != NULL) {
		sub->cp = *o.checkpoint;
		sub->has_cp = 1;
	} else if (o.checkpoint_name != NULL) {
		strcpy(sub->name, o.checkpoint_name);
		sub->cp = (esr_checkpoint_store){store_cp_load, store_cp_save, sub};
		sub->has_cp = 1;
	}
	sub->opt.checkpoint_name = NULL; /* the caller's strings need not outlive this call */
	sub->opt.checkpoint = NULL;
	pthread_mutex_init(&sub->lock, NULL);
	esr__cond_init_monotonic(&sub->cond);
	if ((st = start_position(sub, from)) != ESR_OK) {
		sub_free(sub);
		return st;
	}
	if (pthread_create(&sub->thread, NULL, run, sub) != 0) {
		sub_free(sub);
		return ESR_ENOMEM;
	}
	*out = sub;
	return ESR_OK;
}

esr_status esr_subscription_wait(esr_subscription *sub, uint64_t position, long timeout_ms)
{
	struct timespec until;
	esr_status st = ESR_OK;

	if (sub == NULL)
		return ESR_EINVAL;
	if (timeout_ms >= 0)
		esr__deadline(&until, (uint64_t)timeout_ms);
	pthread_mutex_lock(&sub->lock);
	sub->waiters++;
	while (ck_pr_load_64(&sub->position) < position &&
	       (st = (esr_status)ck_pr_load_int(&sub->status)) == ESR_OK) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&sub->cond, &sub->lock);
		} else if (pthread_cond_timedwait(&sub->cond, &sub->lock, &until) != 0) {
			st = ck_pr_load_64(&sub->position) >= position ? ESR_OK : ESR_ETIMEDOUT;
			break;
		}
	}
	sub->waiters--;
	pthread_mutex_unlock(&sub->lock);
	return st;
}

esr_status esr_subscription_stats_get(esr_subscription *sub, esr_subscription_stats *s)
{
	if (sub == NULL || s == NULL)
		return ESR_EINVAL;
	s->handled = ck_pr_load_64(&sub->handled);
	s->position = ck_pr_load_64(&sub->position);
	s->checkpoint = ck_pr_load_64(&sub->checkpoint);
	s->reads = ck_pr_load_64(&sub->reads);
	s->waits = ck_pr_load_64(&sub->waits);
	s->errors = ck_pr_load_64(&sub->errors);
	s->status = (esr_status)ck_pr_load_int(&sub->status);
	return ESR_OK;
}

esr_status esr_subscription_stop(esr_subscription *sub)
{
	esr_status st, saved;

	if (sub == NULL)
		return ESR_OK;
	ck_pr_store_int(&sub->stop, 1);
	pthread_join(sub->thread, NULL);
	st = (esr_status)sub->status;
	saved = save_checkpoint(sub);
	sub_free(sub);
	return st != ESR_OK ? st : saved;
}
