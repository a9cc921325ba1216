/*
 * runtime/passivate.c: evicting idle actors, safely against submits. See
 * docs/architecture.md for the map.
 *
 * A submitter finds an actor and claims a slot in its `pending` count inside
 * a ck_epoch read section. The janitor evicts an actor only by moving pending
 * from 0 to ESR__ACTOR_DEAD with a CAS (so no slot is claimed and none can be
 * later), removes it from the registry, waits with ck_epoch_synchronize until
 * every section that might have found it has ended, and only then frees it. A
 * submitter that finds a DEAD actor leaves its section and looks again; it
 * then finds nothing and activates a fresh actor, which replays the stream.
 *
 * Epoch records are per thread and per runtime (a pthread key). A thread that
 * exits gives its record back for reuse; all records are freed at stop.
 */
#include <stdlib.h>

#include "runtime/actor.h"
#include "runtime/passivate.h"
#include "runtime/runtime_internal.h"

struct record {
	ck_epoch_record_t rec; /* first: handed out as the record */
	struct record *next;   /* every record this runtime allocated */
};

/* A thread's record goes back for reuse when the thread exits. The pair of
 * annotations covers the hand-over inside ck_epoch_recycle. */
static void give_back(void *rec)
{
	ESR_TSAN_RELEASE(rec);
	ck_epoch_unregister(rec);
}

esr_status esr__epoch_init(struct esr_runtime *rt)
{
	ck_epoch_init(&rt->epoch);
	pthread_mutex_init(&rt->records_lock, NULL);
	rt->records = NULL;
	if (pthread_key_create(&rt->epoch_key, give_back) != 0) {
		pthread_mutex_destroy(&rt->records_lock);
		return ESR_ENOMEM;
	}
	return ESR_OK;
}

ck_epoch_record_t *esr__epoch_record(struct esr_runtime *rt)
{
	ck_epoch_record_t *rec = pthread_getspecific(rt->epoch_key);
	struct record *r;

	if (rec != NULL)
		return rec;
	rec = ck_epoch_recycle(&rt->epoch, NULL);
	if (rec != NULL)
		ESR_TSAN_ACQUIRE(rec);
	if (rec == NULL) {
		if ((r = calloc(1, sizeof *r)) == NULL)
			return NULL;
		ck_epoch_register(&rt->epoch, &r->rec, NULL);
		pthread_mutex_lock(&rt->records_lock);
		r->next = rt->records;
		rt->records = r;
		pthread_mutex_unlock(&rt->records_lock);
		rec = &r->rec;
	}
	if (pthread_setspecific(rt->epoch_key, rec) != 0) {
		ck_epoch_unregister(rec);
		return NULL;
	}
	return rec;
}

void esr__epoch_fini(struct esr_runtime *rt)
{
	struct record *r;

	/* Deleting the key first: no destructor may run on a freed record. */
	pthread_key_delete(rt->epoch_key);
	while ((r = rt->records) != NULL) {
		rt->records = r->next;
		free(r);
	}
	pthread_mutex_destroy(&rt->records_lock);
}

/* --- the janitor --------------------------------------------------------- */

struct sweep {
	uint64_t now;
	uint64_t idle_ms;
	struct esr__actor *victims;
};

/*
 * Idle for the whole passivation time as of the sweep's start. An actor that
 * went idle after the sweep began has a stamp later than `now`: it has been
 * idle for no time at all, not for the 2^64 ms the subtraction would wrap to.
 */
static int idle_long_enough(const struct sweep *s, const struct esr__actor *a)
{
	uint64_t since = ck_pr_load_64(&a->idle_since_ms);

	return since <= s->now && s->now - since >= s->idle_ms;
}

static void consider(void *ctx, struct esr__keyset *ks, struct esr__key *obj)
{
	struct sweep *s = ctx;
	struct esr__actor *a = (struct esr__actor *)obj;

	if (ck_pr_load_32(&a->pending) != 0)
		return;
	/* Acquire: finish() stamps idle_since_ms, fences (release), then takes
	 * pending to 0; having read that 0 we read a stamp at least that new. */
	ck_pr_fence_acquire();
	if (!idle_long_enough(s, a) || !ck_pr_cas_32(&a->pending, 0, ESR__ACTOR_DEAD))
		return;
	ck_pr_fence_acquire(); /* the CAS read the last decrement's 0 */
	ESR_TSAN_ACQUIRE(&a->pending); /* the last worker's writes to it */
	/* pending may have gone 0 -> 1 -> 0 between the load and the CAS, with
	 * a newer stamp: look again now that no submit can claim a slot. If
	 * it is too new, give the actor back (a submitter that saw DEAD looks
	 * it up again). Release: the submit that claims it from 0 acquires, and
	 * through us the last worker's writes we acquired above. */
	if (!idle_long_enough(s, a)) {
		ck_pr_fence_release();
		ESR_TSAN_RELEASE(&a->pending);
		ck_pr_store_32(&a->pending, 0);
		return;
	}
	esr__keyset_remove_locked(ks, obj);
	a->run_next = s->victims;
	s->victims = a;
}

static void sweep(struct esr_runtime *rt, ck_epoch_record_t *rec)
{
	struct sweep s = {esr__coarse_ms(), rt->cfg.passivate_ms, NULL};
	struct esr__actor *a;
	uint64_t n = 0;

	esr__keyset_scan(rt->actors, consider, &s);
	if (s.victims == NULL)
		return;
	ck_epoch_synchronize(rec);
	ESR_TSAN_ACQUIRE(&rt->epoch); /* every section that could see them ended */
	while ((a = s.victims) != NULL) {
		s.victims = a->run_next;
		esr__actor_release(a); /* the registry's hold */
		n++;
	}
	ck_pr_add_64(&rt->passivations, n);
}

static void *janitor_main(void *arg)
{
	struct esr_runtime *rt = arg;
	ck_epoch_record_t *rec = esr__epoch_record(rt);
	uint64_t period = rt->cfg.passivate_ms / 4;
	struct timespec until;

	if (period < 1)
		period = 1;
	if (period > 1000)
		period = 1000;
	pthread_mutex_lock(&rt->janitor_lock);
	while (!rt->janitor_stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (long)(period % 1000) * 1000000L;
		until.tv_sec += (time_t)(period / 1000) + until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&rt->janitor_cond, &rt->janitor_lock, &until);
		if (rt->janitor_stop || rec == NULL)
			continue;
		pthread_mutex_unlock(&rt->janitor_lock);
		sweep(rt, rec);
		pthread_mutex_lock(&rt->janitor_lock);
	}
	pthread_mutex_unlock(&rt->janitor_lock);
	return NULL;
}

esr_status esr__janitor_start(struct esr_runtime *rt)
{
	pthread_mutex_init(&rt->janitor_lock, NULL);
	pthread_cond_init(&rt->janitor_cond, NULL);
	rt->janitor_stop = 0;
	rt->janitor_started = 0;
	if (rt->cfg.passivate_ms == 0)
		return ESR_OK;
	if (pthread_create(&rt->janitor, NULL, janitor_main, rt) != 0)
		return ESR_ENOMEM;
	rt->janitor_started = 1;
	return ESR_OK;
}

void esr__janitor_stop(struct esr_runtime *rt)
{
	pthread_mutex_lock(&rt->janitor_lock);
	rt->janitor_stop = 1;
	pthread_cond_signal(&rt->janitor_cond);
	pthread_mutex_unlock(&rt->janitor_lock);
	if (rt->janitor_started)
		pthread_join(rt->janitor, NULL);
	rt->janitor_started = 0;
	pthread_cond_destroy(&rt->janitor_cond);
	pthread_mutex_destroy(&rt->janitor_lock);
}
