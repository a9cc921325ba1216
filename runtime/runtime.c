/*
 * runtime/runtime.c: the runtime handle: start, stop, register, stats, and
 * the host's warn hook. See docs/architecture.md for the map.
 *
 * Stop. `stopping` and `submitting` form a handshake (each side writes its own
 * flag, fences, then reads the other's): once stop has seen no submit in
 * progress, every later submit sees `stopping` and is refused, and every
 * earlier one has counted its command in `outstanding`. Stop then waits for
 * outstanding to reach 0, and only then stops the janitor and the workers.
 */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "runtime/actor.h"
#include "runtime/passivate.h"
#include "runtime/runtime_internal.h"
#include "runtime/scheduler.h"
#include "runtime/snapshot.h"

/* --- lifecycle ------------------------------------------------------------------ */

static void free_actor(struct esr__key *k)
{
	esr__actor_release((struct esr__actor *)k); /* references may hold it on */
}

/* What esr_runtime_start has set up so far (the `up` bits), for teardown. */
enum {
	UP_LOCKS = 1u << 0,   /* types, run queue, room, idle and spare locks */
	UP_EPOCH = 1u << 1,   /* epoch records and their key */
	UP_SNAPPER = 1u << 2, /* the snapshot queue's lock, maybe its thread */
	UP_WORKERS = 1u << 3, /* every worker thread */
	UP_JANITOR = 1u << 4  /* the janitor's lock, maybe its thread */
};

/*
 * Stop the threads start made and free everything it set up but the handle,
 * in reverse order, each part only if `up` says it is there: safe at any
 * point of a partial start, and the last step of a stop (once the runtime is
 * drained: workers leave when the run queue is empty).
 */
static void teardown(esr_runtime *rt)
{
	if (rt->up & UP_JANITOR)
		esr__janitor_stop(rt);
	if (rt->up & UP_WORKERS)
		esr__workers_stop(rt);
	if (rt->up & UP_SNAPPER)
		esr__snapper_stop(rt);
	esr__keyset_destroy(rt->actors, free_actor);
	rt->actors = NULL;
	esr__spares_free(rt);
	if (rt->up & UP_SNAPPER)
		esr__snapper_fini(rt);
	if (rt->up & UP_EPOCH)
		esr__epoch_fini(rt);
	if (rt->up & UP_LOCKS) {
		esr__types_destroy(&rt->types);
		esr__runqs_destroy(rt);
		pthread_mutex_destroy(&rt->room_lock);
		pthread_cond_destroy(&rt->room_cond);
		pthread_mutex_destroy(&rt->idle_lock);
		pthread_cond_destroy(&rt->idle_cond);
		pthread_mutex_destroy(&rt->spare_lock);
	}
	rt->up = 0;
	rt->stopped = 1;
}

/* Set up everything but the handle, recording each part in rt->up. */
static esr_status set_up(esr_runtime *rt)
{
	esr_status st;

	esr__types_init(&rt->types);
	esr__runqs_init(rt);
	pthread_mutex_init(&rt->room_lock, NULL);
	pthread_cond_init(&rt->room_cond, NULL);
	pthread_mutex_init(&rt->idle_lock, NULL);
	esr__cond_init_monotonic(&rt->idle_cond);
	pthread_mutex_init(&rt->spare_lock, NULL);
	rt->up |= UP_LOCKS;
	if ((st = esr__epoch_init(rt)) != ESR_OK) /* undoes itself on failure */
		return st;
	rt->up |= UP_EPOCH;
	/* The snapper's and the janitor's locks are set up even when their
	 * thread fails to start, so their stops are due either way. */
	st = esr__snapper_start(rt);
	rt->up |= UP_SNAPPER;
	if (st != ESR_OK || (st = esr__keyset_create(&rt->actors)) != ESR_OK)
		return st;
	if ((st = esr__workers_start(rt)) != ESR_OK) /* joins those it started */
		return st;
	rt->up |= UP_WORKERS;
	st = esr__janitor_start(rt);
	rt->up |= UP_JANITOR;
	return st;
}

esr_status esr_runtime_start(const esr_runtime_config *config, esr_store *store,
                             esr_runtime **out)
{
	esr_runtime_config defaults;
	esr_runtime *rt;
	esr_status st;

	if (store == NULL || out == NULL)
		return ESR_EINVAL;
	if (config == NULL) {
		esr_runtime_config_default(&defaults);
		config = &defaults;
	}
	if ((st = esr_runtime_config_check(config, NULL)) != ESR_OK)
		return st;
	if (posix_memalign((void **)&rt, CK_MD_CACHELINE,
	                   sizeof *rt + config->workers * sizeof(struct esr__worker)) != 0)
		return ESR_ENOMEM;
	memset(rt, 0, sizeof *rt + config->workers * sizeof(struct esr__worker));
	rt->cfg = *config;
	rt->store = store;
	rt->handles = 1; /* the caller's, dropped by destroy */
	if ((st = set_up(rt)) != ESR_OK) {
		teardown(rt);
		free(rt);
		return st;
	}
	*out = rt;
	return ESR_OK;
}

/* How often a stop waiting for the last commands looks again by itself. */
#define IDLE_RECHECK_MS 10

/*
 * Wait until every accepted command has completed. The worker that takes
 * `outstanding` to 0 wakes us if it sees `stopping` (actor.c,
 * settle_outstanding: the fenced pair there means it does, or we see 0
 * first). The timed wait is a backstop, so that a lost wake-up could cost a
 * stop IDLE_RECHECK_MS, never hang it.
 */
static void wait_idle(esr_runtime *rt)
{
	struct timespec until;

	pthread_mutex_lock(&rt->idle_lock);
	while (ck_pr_load_64(&rt->outstanding) != 0) {
		esr__deadline(&until, IDLE_RECHECK_MS);
		pthread_cond_timedwait(&rt->idle_cond, &rt->idle_lock, &until);
	}
	pthread_mutex_unlock(&rt->idle_lock);
}

esr_status esr_runtime_stop(esr_runtime *rt)
{
	if (rt == NULL || rt->stopped)
		return ESR_OK;
	/* Two store-buffering pairs start here, each fenced on both sides:
	 * with window_open (submit.c: it counts itself in `submitting`, fences,
	 * loads `stopping`) and with settle_outstanding (actor.c: it lowers
	 * `outstanding`, fences, loads `stopping`). This full fence orders our
	 * store of `stopping` before our loads of `submitting` and
	 * `outstanding`, so in each pair one side sees the other's store. */
	ck_pr_store_32(&rt->stopping, 1);
	ck_pr_fence_memory();
	pthread_mutex_lock(&rt->room_lock); /* blocked submitters: give up */
	pthread_cond_broadcast(&rt->room_cond);
	pthread_mutex_unlock(&rt->room_lock);
	while (ck_pr_load_32(&rt->submitting) != 0)
		sched_yield();
	/* Acquire: pairs with window_close's release, so every submit that got
	 * in has counted its commands in `outstanding` (and taken off those
	 * refused) before we read it. */
	ck_pr_fence_acquire();
	ESR_TSAN_ACQUIRE(&rt->submitting);
	wait_idle(rt);
	/* A store's thread may still be in the push that handed the last
	 * turn back (actor.c, appended). Acquire: pairs with its release. */
	while (ck_pr_load_32(&rt->handing) != 0)
		sched_yield();
	ck_pr_fence_acquire();
	ESR_TSAN_ACQUIRE(&rt->handing);
	teardown(rt);
	return ESR_OK;
}

esr_status esr_runtime_destroy(esr_runtime *rt)
{
	if (rt == NULL)
		return ESR_OK;
	esr_runtime_stop(rt);
	esr__runtime_put(rt);
	return ESR_OK;
}

void esr__runtime_put(esr_runtime *rt)
{
	/* The last of the caller's handle and the open references frees it. */
	if (esr__count_drop(&rt->handles))
		free(rt);
}

esr_status esr_runtime_register(esr_runtime *rt, const esr_aggregate_type *type)
{
	if (rt == NULL)
		return ESR_EINVAL;
	/* Not part of the stop handshake: it refuses a register made after
	 * stop has begun (or ended, when the types are gone); one made at the
	 * same time as stop is not made safe by it. */
	if (ck_pr_load_32(&rt->stopping))
		return ESR_ESHUTDOWN;
	return esr__types_add(&rt->types, type);
}

/* --- warnings ------------------------------------------------------------------ */

void esr__warn(struct esr_runtime *rt, const char *type, const void *id, size_t id_len,
               const char *what, const char *fmt, ...)
{
	char line[512];
	size_t at;
	va_list ap;
	int n;

	if (rt->cfg.warn == NULL)
		return;
	n = snprintf(line, sizeof line, "esr: %s: type=%s id=", what, type);
	at = n > 0 ? (size_t)n : 0;
	esr__put_id(line, sizeof line, &at, id, id_len);
	if (at + 2 < sizeof line) {
		line[at++] = ':';
		line[at++] = ' ';
		va_start(ap, fmt);
		vsnprintf(line + at, sizeof line - at, fmt, ap);
		va_end(ap);
	} else {
		line[sizeof line - 1] = '\0';
	}
	rt->cfg.warn(rt->cfg.warn_ctx, line);
}

/* --- stats ------------------------------------------------------------------------------ */

esr_status esr_runtime_stats_get(esr_runtime *rt, esr_runtime_stats *s)
{
	unsigned i;

	if (rt == NULL || s == NULL)
		return ESR_EINVAL;
	/* Counters live in the handle, so they stay readable after stop. */
	memset(s, 0, sizeof *s);
	for (i = 0; i < rt->nworkers; i++) {
		struct esr__worker_counters *c = &rt->workers[i].c;
		s->completed += ck_pr_load_64(&c->completed);
		s->rejected += ck_pr_load_64(&c->rejected);
		s->conflicts += ck_pr_load_64(&c->conflicts);
		s->retries += ck_pr_load_64(&c->retries);
		s->appends += ck_pr_load_64(&c->appends);
		s->exhausted += ck_pr_load_64(&c->exhausted);
		s->duplicates += ck_pr_load_64(&c->duplicates);
		s->queries += ck_pr_load_64(&c->queries);
		s->activations += ck_pr_load_64(&c->activations);
		s->snapshots_loaded += ck_pr_load_64(&c->snapshots_loaded);
		s->snapshots_ignored += ck_pr_load_64(&c->snapshots_ignored);
		s->events_replayed += ck_pr_load_64(&c->events_replayed);
	}
	s->snapshots_taken = ck_pr_load_64(&rt->snapper.taken);
	s->snapshots_dropped = ck_pr_load_64(&rt->snapper.dropped);
	for (i = 0; i < ESR__STRIPES; i++) {
		s->submitted += ck_pr_load_64(&rt->stripes[i].submitted);
		s->queries_submitted += ck_pr_load_64(&rt->stripes[i].queries);
		s->mailbox_full += ck_pr_load_64(&rt->stripes[i].mailbox_full);
		s->live_actors += ck_pr_load_64(&rt->stripes[i].created);
	}
	s->passivations = ck_pr_load_64(&rt->passivations);
	s->live_actors -= s->passivations;
	return ESR_OK;
}
