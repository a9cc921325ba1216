/*
 * runtime/scheduler.c: the run queue, the workers, and their spare emitters.
 * See docs/architecture.md for the map.
 *
 * The run queue is one FIFO of actors under a mutex. It is touched once per
 * actor turn (an actor's 0 -> 1 pending transition, or a batch used up), not
 * once per command, and the mailbox itself takes no lock. Idle workers spin
 * briefly on the queue's head, then sleep on a condition variable; a push
 * signals one sleeper only when there is one.
 *
 * Ordering: rq_head and rq_sleepers are written only under rq_lock, with
 * ck_pr stores so that the unlocked peeks (spinning, the batch check in
 * actor.c) read whole values. A peek only decides whether to spin or yield;
 * whatever it misses, the mutex decides, and the mutex orders everything an
 * actor carries from its last runner to its next.
 */
#include <sched.h>
#include <stdlib.h>

#include "runtime/actor.h"
#include "runtime/runtime_internal.h"
#include "runtime/scheduler.h"

/*
 * An idle worker spins before it sleeps (a wake costs the submitter a system
 * call), but spinning takes a core from threads that have work, such as the
 * submitter when workers and submitters outnumber cores. So each worker adapts
 * how long it spins: doubling the limit when spinning found work, halving it
 * when it did not. With many busy actors workers keep spinning; with one hot
 * actor the idle worker soon sleeps and leaves its core to the others. A
 * worker that has spun 1024 pauses also yields every 64: with more threads
 * than cores the submitter may be waiting for the very core it spins on. On
 * 2 cores (2 workers + the submitter) that took the p50 latency of
 * esr-stress --rate=700000 from 44-48 us to about 2 us, and cost about a
 * fifth of the closed-loop throughput at 64 aggregates and skew 0.99 (3.8
 * to 3.0 million commands/s); yielding from the first pauses cost a third.
 */
#define SPINS_MIN 16
#define SPINS_MAX 2048

void esr__runq_push_list(struct esr_runtime *rt, struct esr__actor *head,
                         struct esr__actor *tail, unsigned n)
{
	pthread_mutex_lock(&rt->rq_lock);
	tail->run_next = NULL;
	if (rt->rq_tail)
		rt->rq_tail->run_next = head;
	else
		ck_pr_store_ptr(&rt->rq_head, head);
	rt->rq_tail = tail;
	if (rt->rq_sleepers) { /* wake no more workers than there is work */
		if (n > 1 && rt->rq_sleepers > 1)
			pthread_cond_broadcast(&rt->rq_cond);
		else
			pthread_cond_signal(&rt->rq_cond);
	}
	pthread_mutex_unlock(&rt->rq_lock);
}

void esr__runq_push(struct esr_runtime *rt, struct esr__actor *a)
{
	esr__runq_push_list(rt, a, a, 1);
}

/* The next actor to run; NULL once the runtime stops and nothing is left. */
static struct esr__actor *runq_pop(struct esr__worker *w)
{
	struct esr_runtime *rt = w->rt;
	struct esr__actor *a;
	unsigned spins;

	/* The last worker awake spins in full whatever it learned, so that new
	 * work finds someone running rather than waiting for a wake. The count
	 * is read without the lock: it only tunes the spin. */
	unsigned limit = ck_pr_load_uint(&rt->rq_sleepers) + 1 >= rt->cfg.workers ? SPINS_MAX
	                                                                       : w->spin_limit;

	/* Unlocked peeks only decide whether to spin; the lock decides the rest. */
	for (spins = 0; spins < limit && ck_pr_load_ptr(&rt->rq_head) == NULL; spins++) {
		ck_pr_stall();
		if (spins >= 1024 && spins % 64 == 63) /* see SPINS_MAX */
			sched_yield();
	}
	if (spins == 0)
		; /* work was waiting: nothing learned */
	else if (spins < limit)
		w->spin_limit = w->spin_limit * 2 < SPINS_MAX ? w->spin_limit * 2 : SPINS_MAX;
	else
		w->spin_limit = w->spin_limit / 2 > SPINS_MIN ? w->spin_limit / 2 : SPINS_MIN;
	pthread_mutex_lock(&rt->rq_lock);
	while ((a = rt->rq_head) == NULL) {
		if (!rt->running) {
			pthread_mutex_unlock(&rt->rq_lock);
			return NULL;
		}
		ck_pr_store_uint(&rt->rq_sleepers, rt->rq_sleepers + 1);
		pthread_cond_wait(&rt->rq_cond, &rt->rq_lock);
		ck_pr_store_uint(&rt->rq_sleepers, rt->rq_sleepers - 1);
	}
	ck_pr_store_ptr(&rt->rq_head, a->run_next);
	if (rt->rq_head == NULL)
		rt->rq_tail = NULL;
	pthread_mutex_unlock(&rt->rq_lock);
	return a;
}

static void *worker_main(void *arg)
{
	struct esr__worker *w = arg;
	struct esr__actor *a;

	while ((a = runq_pop(w)) != NULL)
		esr__actor_run(w, a);
	return NULL;
}

esr_status esr__workers_start(struct esr_runtime *rt)
{
	unsigned i;

	rt->running = 1;
	for (i = 0; i < rt->cfg.workers; i++) {
		struct esr__worker *w = &rt->workers[i];
		w->rt = rt;
		w->spin_limit = SPINS_MAX;
		if ((w->em = esr__spare_get(rt)) == NULL ||
		    pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			esr__workers_stop(rt);
			return ESR_ENOMEM;
		}
		rt->nworkers = i + 1;
	}
	return ESR_OK;
}

/* Workers leave once the queue is empty; the caller has drained the runtime. */
void esr__workers_stop(struct esr_runtime *rt)
{
	unsigned i;

	pthread_mutex_lock(&rt->rq_lock);
	rt->running = 0;
	pthread_cond_broadcast(&rt->rq_cond);
	pthread_mutex_unlock(&rt->rq_lock);
	for (i = 0; i < rt->nworkers; i++) {
		pthread_join(rt->workers[i].thread, NULL);
		esr__spare_put(rt, rt->workers[i].em);
		rt->workers[i].em = NULL;
	}
	/* nworkers stays: the counters in workers[] remain readable. */
}

/* --- spare emitters ------------------------------------------------------------ */

struct spare {
	esr_emitter em; /* first: a spare is handed out as its emitter */
	struct spare *next;
};

esr_emitter *esr__spare_get(struct esr_runtime *rt)
{
	struct spare *s;

	pthread_mutex_lock(&rt->spare_lock);
	if ((s = rt->spares) != NULL)
		rt->spares = s->next;
	pthread_mutex_unlock(&rt->spare_lock);
	if (s == NULL && (s = malloc(sizeof *s)) != NULL)
		esr__emitter_init(&s->em);
	return s ? &s->em : NULL;
}

void esr__spare_put(struct esr_runtime *rt, esr_emitter *em)
{
	struct spare *s = (struct spare *)em;

	if (s == NULL)
		return;
	pthread_mutex_lock(&rt->spare_lock);
	s->next = rt->spares;
	rt->spares = s;
	pthread_mutex_unlock(&rt->spare_lock);
}

void esr__spares_free(struct esr_runtime *rt)
{
	struct spare *s;

	while ((s = rt->spares) != NULL) {
		rt->spares = s->next;
		esr__emitter_free(&s->em);
		free(s);
	}
}
