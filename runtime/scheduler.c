/*
 * runtime/scheduler.c: the run queues, the workers, and their spare emitters.
 * See docs/architecture.md for the map.
 *
 * Each worker has its own run queue, a FIFO of actors that pushers join
 * without a lock and takers leave under the queue's mutex (struct esr__runq,
 * and "the queues" below). An actor made ready by a submit or by a
 * completion goes to its home worker (esr__home_of: its key's hash), so its
 * state tends to stay in one core's cache, and a worker's queue is touched
 * by its owner and the threads that feed it rather than by every thread in
 * the process. An actor that used up its batch goes back on the queue of the
 * worker that ran it. A queue is touched once per actor turn, not once per
 * command, and a submitter hands over all the actors one submit call made
 * ready in one trip per worker. A worker whose queue is empty steals half of
 * another's, oldest first, so a hot home does not keep the others idle
 * under skew.
 *
 * Waiting. An idle worker spins briefly, peeking at its queue and the
 * others' counts, then sleeps on its queue's condition variable. A push to
 * a worker that sleeps signals it, under the queue's lock, so no push to a
 * queue is ever missed by its owner, unless another worker is awake and
 * idle: then that one steals them (its last look before it sleeps sees
 * them). Both follow from the fenced pair of step 4 below, and progress
 * rests on them. A push to a worker that is running actors (`busy`), or
 * that leaves more than one actor on its queue, also wakes one other
 * sleeping worker, to steal: without it an actor would wait behind its
 * owner's turn, however long a handler or a synchronous append takes, while
 * another worker sleeps. That wake is a hint: a sleeper it misses costs
 * parallelism until the next push or until the owner is free, never
 * progress. Before it sleeps, a worker sets its flag, fences, and peeks at
 * the queues once, so only a push racing that peek goes unnoticed. What no
 * thief can take are the (at most GRAB + AHEAD) actors an owner already took
 * from its queue to run next: they wait for its current turn.
 *
 * Ordering: everything an actor carries from its last runner to its next
 * passes through its queue's push and take (steps 2 and 3 below). The peeks
 * at `count`, `busy` and `sleeping` only decide whether to spin, steal, wake
 * or yield; whatever they miss, the queue's links decide.
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
 * than cores the submitter may be waiting for the very core it spins on.
 */
#define SPINS_MIN 16
#define SPINS_MAX 2048

/* Actors a worker takes from its queue in one trip: enough to overlap their
 * cache misses (esr__actor_prefetch), few enough that thieves find the rest. */
#define GRAB 8
/* Positions after the running actor whose misses are being hinted. */
#define AHEAD 5

/* Completions a worker counts before it takes them off `outstanding`: one
 * atomic on that shared line per this many commands, and always before the
 * worker goes idle. */
#define SETTLE_EVERY 64

/* --- the queues ------------------------------------------------------------------ */

/*
 * The queue is a linked list from `out` (the oldest) to `in` (the newest)
 * through run_next, with a stub actor that keeps it from ever being empty, so
 * a push needs no lock and no compare-and-swap: it swaps the last actor of
 * its chain into `in`, then links the actor it displaced to its first.
 * Between the two steps the list is cut at that link; a taker finds the end
 * early and takes less (or nothing) this time, and `count` says more is
 * coming.
 *
 * Memory ordering, the hand-over of an actor from its last runner (or its
 * submitter) to its next:
 *  1. The pusher adds its actors to `count` first, so that `count` never
 *     lags the actors a taker can reach (it may lead them: see above).
 *  2. Release fence, then the swap on `in`: everything the pusher read and
 *     wrote of the actors, and their run_next links, is ordered before the
 *     swap and so before the link store that makes them reachable.
 *  3. The link: the displaced actor's run_next. The taker loads it, and
 *     fences (acquire) once at the end of its take: its reads and writes of
 *     the actors afterwards come after the pusher's release in step 2.
 *  4. Full fence, then the owner's `sleeping`: the store-buffering pair
 *     with sleep_for_work, which stores `sleeping`, fences and loads
 *     `count`. With a fence on each side one of them sees the other's
 *     store: the owner sees the count and does not sleep, or the pusher
 *     sees it sleep and signals it under the lock.
 * Takers are one at a time under the lock, so `out` and the stub's
 * re-push are the lock holder's alone.
 */

void esr__runqs_init(struct esr_runtime *rt)
{
	unsigned i;

	for (i = 0; i < rt->cfg.workers; i++) {
		struct esr__runq *q = &rt->workers[i].q;
		pthread_mutex_init(&q->lock, NULL);
		pthread_cond_init(&q->cond, NULL);
		q->stub.run_next = NULL;
		q->in = q->out = &q->stub;
		q->count = 0;
	}
}

void esr__runqs_destroy(struct esr_runtime *rt)
{
	unsigned i;

	for (i = 0; i < rt->cfg.workers; i++) {
		pthread_mutex_destroy(&rt->workers[i].q.lock);
		pthread_cond_destroy(&rt->workers[i].q.cond);
	}
}

/* Steps 2 and 3: append the chain head..tail (linked by the caller). */
static void link_in(struct esr__runq *q, struct esr__actor *head, struct esr__actor *tail)
{
	struct esr__actor *prev, *a, *next;

	tail->run_next = NULL;
	ck_pr_fence_release();
	/* Each link is read before its actor's release: once released, an
	 * actor is the taker's, which relinks it. */
	for (a = head; a != NULL; a = next) {
		next = a->run_next;
		ESR_TSAN_RELEASE(a);
	}
	prev = ck_pr_fas_ptr(&q->in, tail);
	ck_pr_store_ptr(&prev->run_next, head);
}

static struct esr__actor *next_of(struct esr__actor *a)
{
	struct esr__actor *next = ck_pr_load_ptr(&a->run_next);

	if (next != NULL)
		ESR_TSAN_ACQUIRE(next);
	return next;
}

/* The oldest actor, or NULL if none is linked yet (under q->lock). */
static struct esr__actor *take_one(struct esr__runq *q)
{
	struct esr__actor *a = q->out, *next = next_of(a);

	if (a == &q->stub) {
		if (next == NULL)
			return NULL;
		q->out = a = next;
		next = next_of(a);
	}
	if (next == NULL) {
		/* a is the last linked: it may leave only with something behind
		 * it, so put the stub there, unless a push is mid-link. */
		if (a != ck_pr_load_ptr(&q->in))
			return NULL;
		link_in(q, &q->stub, &q->stub);
		if ((next = next_of(a)) == NULL)
			return NULL;
	}
	q->out = next;
	return a;
}

/* Wake one sleeping worker other than `busy` to steal from it (a hint). */
static void wake_thief(struct esr_runtime *rt, unsigned busy)
{
	unsigned i;

	for (i = 0; i < rt->cfg.workers; i++) {
		struct esr__runq *q = &rt->workers[i].q;
		if (i == busy || !ck_pr_load_32(&q->sleeping))
			continue;
		pthread_mutex_lock(&q->lock);
		if (q->sleeping)
			pthread_cond_signal(&q->cond);
		pthread_mutex_unlock(&q->lock);
		return;
	}
}

/*
 * Whether a worker other than `to` is awake and idle (spinning for work):
 * it will steal what is pushed to a sleeping `to` sooner than `to` wakes.
 * Called after the push and a full fence: see esr__runq_push_list.
 */
static int spinner_awake(struct esr_runtime *rt, unsigned to)
{
	unsigned i;

	for (i = 0; i < rt->cfg.workers; i++) {
		struct esr__runq *q = &rt->workers[i].q;
		if (i != to && !ck_pr_load_32(&q->sleeping) && !ck_pr_load_32(&q->busy))
			return 1;
	}
	return 0;
}

void esr__runq_push_list(struct esr_runtime *rt, unsigned to, struct esr__actor *head,
                         struct esr__actor *tail, unsigned n)
{
	struct esr__runq *q = &rt->workers[to].q;
	uint32_t before;

	before = ck_pr_faa_32(&q->count, n); /* step 1 */
	link_in(q, head, tail);              /* steps 2 and 3 */
	ck_pr_fence_memory();                /* step 4 */
	if (ck_pr_load_32(&q->sleeping)) {
		/* Waking a thread costs this one a system call and the woken
		 * one its scheduling delay; a worker already spinning steals
		 * the actors sooner. */
		if (!spinner_awake(rt, to)) {
			pthread_mutex_lock(&q->lock);
			if (q->sleeping)
				pthread_cond_signal(&q->cond);
			pthread_mutex_unlock(&q->lock);
		}
		return;
	}
	/* The owner cannot take them now, and another worker idles: a thief. */
	if ((before + n > 1 || ck_pr_load_32(&q->busy)) && ck_pr_load_32(&rt->sleepers) != 0)
		wake_thief(rt, to);
}

void esr__runq_push(struct esr_runtime *rt, unsigned to, struct esr__actor *a)
{
	esr__runq_push_list(rt, to, a, a, 1);
}

/* Take up to `max` actors from q's front (under q->lock); returns the first,
 * linked to the rest through run_next, and the last in *last. */
static struct esr__actor *take(struct esr__runq *q, uint32_t max, struct esr__actor **last,
                               uint32_t *taken)
{
	struct esr__actor *first, *a, *b;
	uint32_t k;

	if ((first = take_one(q)) == NULL)
		return NULL;
	for (a = first, k = 1; k < max && (b = take_one(q)) != NULL; a = b, k++)
		a->run_next = b;
	a->run_next = NULL;
	ck_pr_sub_32(&q->count, k);
	ck_pr_fence_acquire(); /* step 3 */
	*last = a;
	*taken = k;
	return first;
}

/*
 * Take up to GRAB actors from w's queue onto the end of its local list and
 * hint their first stage. The events of the turns after it get a new stamp:
 * one clock read per trip. Returns how many it took.
 */
static uint32_t refill(struct esr__worker *w)
{
	struct esr__actor *a, *last, *x;
	uint32_t k;

	if (ck_pr_load_32(&w->q.count) == 0) /* a peek: the loop looks again */
		return 0;
	pthread_mutex_lock(&w->q.lock);
	a = take(&w->q, GRAB, &last, &k);
	pthread_mutex_unlock(&w->q.lock);
	if (a == NULL)
		return 0;
	for (x = a; x != NULL; x = x->run_next)
		esr__actor_prefetch(w, x, 0);
	if (w->local == NULL)
		w->local = a;
	else
		w->local_last->run_next = a;
	w->local_last = last;
	w->nlocal += k;
	if (w->em != NULL)
		esr__emitter_restamp(w->em);
	return k;
}

/*
 * The next actor w runs: the first of its local list, which it fills from
 * its queue GRAB at a time. Before it returns an actor it hints the misses
 * of those after it (esr__actor_prefetch), each stage a turn or two before
 * the next one reads what it fetched: with AHEAD or more left, stage 1 at
 * position 5, stage 2 at 3 and stage 3 at 1; with fewer, stages 3, 2 and 1
 * at positions 1, 2 and 3. While its queue holds two trips it takes the next
 * before its list runs down below AHEAD, so that the pipeline does not run
 * dry at each trip's start, where each stage would wait for the one before
 * it. NULL if both are empty.
 */
static struct esr__actor *pop_own(struct esr__worker *w)
{
	struct esr__actor *a, *x;
	uint32_t k;

	if (w->local == NULL) {
		if (refill(w) == 0)
			return NULL;
		/* The first runs at once; give the next two a head start. */
		if ((x = w->local->run_next) != NULL) {
			esr__actor_prefetch(w, x, 1);
			if (x->run_next != NULL)
				esr__actor_prefetch(w, x->run_next, 1);
		}
	}
	a = w->local;
	w->local = a->run_next;
	a->run_next = NULL;
	/* Only while the queue keeps a full trip for a thief after ours: what
	 * an owner takes early, no idle worker can run. */
	if (--w->nlocal <= AHEAD && ck_pr_load_32(&w->q.count) >= 2 * GRAB)
		(void)refill(w);
	if (w->nlocal >= AHEAD) { /* a long list: each stage two turns apart */
		for (x = w->local, k = 1; x != NULL && k <= AHEAD; x = x->run_next, k++)
			if (k & 1)
				esr__actor_prefetch(w, x, (int)(3 - k / 2));
	} else { /* a short one: one turn apart, so that each gets all three */
		for (x = w->local, k = 3; x != NULL && k >= 1; x = x->run_next, k--)
			esr__actor_prefetch(w, x, (int)k);
	}
	return a;
}

/*
 * Half of the first non-empty queue after w's (rounded up), oldest first:
 * the first of them to run now, the rest onto w's own queue. NULL if every
 * other queue is empty.
 */
static struct esr__actor *steal(struct esr__worker *w)
{
	struct esr_runtime *rt = w->rt;
	struct esr__actor *a = NULL, *last = NULL;
	unsigned i, n = rt->cfg.workers;
	uint32_t k = 0;

	for (i = 1; i < n && a == NULL; i++) {
		struct esr__runq *v = &rt->workers[(w->index + i) % n].q;
		uint32_t c = ck_pr_load_32(&v->count);
		if (c == 0)
			continue;
		pthread_mutex_lock(&v->lock);
		a = take(v, (ck_pr_load_32(&v->count) + 1) / 2, &last, &k);
		pthread_mutex_unlock(&v->lock);
	}
	if (a != NULL && k > 1)
		esr__runq_push_list(rt, w->index, a->run_next, last, k - 1);
	return a;
}

/* Whether any queue but w's looks non-empty (a peek). */
static int others_have_work(struct esr__worker *w)
{
	unsigned i;

	for (i = 0; i < w->rt->cfg.workers; i++)
		if (i != w->index && ck_pr_load_32(&w->rt->workers[i].q.count) != 0)
			return 1;
	return 0;
}

/* --- the workers ---------------------------------------------------------------------- */

/* Pay w's ticket debt, then take the completions it counted off
 * `outstanding`; the last of a stopping runtime wakes esr_runtime_stop. */
static void settle(struct esr__worker *w)
{
	struct esr_runtime *rt = w->rt;
	uint64_t k = w->unsettled;
	uint64_t before;

	esr__ticket_debt_pay(&w->debt); /* before stop may see the count at 0 */
	if (k == 0)
		return;
	w->unsettled = 0;
	/* Store-buffering pair with esr_runtime_stop, which stores `stopping`,
	 * fences, then loads `outstanding`. Here: fetch-and-add on outstanding,
	 * fence, load stopping. With a fence on each side at least one of the
	 * two loads sees the other's store: either we see stopping and wake
	 * stop, or stop sees outstanding at 0 and does not sleep. The
	 * fetch-and-add alone does not order the later load on every CPU
	 * (aarch64's ldadd does not), so the fence is needed, not decoration.
	 * fence_atomic_load is the one that orders an atomic before a load: a
	 * barrier on aarch64, nothing on x86, where the locked add already is
	 * one (a full fence there would add an mfence to every settlement). */
	before = ck_pr_faa_64(&rt->outstanding, -k);
	ck_pr_fence_atomic_load();
	if (before == k && ck_pr_load_32(&rt->stopping)) {
		pthread_mutex_lock(&rt->idle_lock);
		pthread_cond_broadcast(&rt->idle_cond);
		pthread_mutex_unlock(&rt->idle_lock);
	}
}

/* Sleep until w's queue has an actor (returned), another queue may have one
 * to steal (NULL, *retry set), or the runtime stops (NULL). */
static struct esr__actor *sleep_for_work(struct esr__worker *w, int *retry)
{
	struct esr_runtime *rt = w->rt;
	struct esr__actor *a = NULL, *last;
	uint32_t k;

	*retry = 0;
	pthread_mutex_lock(&w->q.lock);
	while ((a = take(&w->q, 1, &last, &k)) == NULL && ck_pr_load_int(&rt->running)) {
		ck_pr_store_32(&w->q.sleeping, 1);
		ck_pr_inc_32(&rt->sleepers);
		/* Store-buffering with a pusher (step 4 in esr__runq_push_list),
		 * to us or to another queue it leaves to us because we looked
		 * awake: our flag, full fence, then its count; it does the
		 * mirror image. A count ahead of the links (a push between its
		 * swap and its link) is work coming: spin, do not sleep. */
		ck_pr_fence_memory();
		if (ck_pr_load_32(&w->q.count) == 0 && !others_have_work(w))
			pthread_cond_wait(&w->q.cond, &w->q.lock);
		else
			*retry = 1;
		ck_pr_dec_32(&rt->sleepers);
		ck_pr_store_32(&w->q.sleeping, 0);
		if (*retry)
			break;
	}
	pthread_mutex_unlock(&w->q.lock);
	return a;
}

/* The next actor to run, once w's own queue and stealing came up empty;
 * NULL once the runtime stops and w's queue is empty. */
static struct esr__actor *idle(struct esr__worker *w)
{
	struct esr_runtime *rt = w->rt;
	struct esr__actor *a;
	unsigned spins, limit;
	int retry;

	ck_pr_store_32(&w->q.busy, 0); /* pushes to w need no thief now */
	for (;;) {
		/* The last worker awake spins in full whatever it learned, so
		 * that new work finds someone running rather than waiting for
		 * a wake. The count is read without a lock: it only tunes the
		 * spin. */
		limit = ck_pr_load_32(&rt->sleepers) + 1 >= rt->cfg.workers ? SPINS_MAX
		                                                            : w->spin_limit;
		for (spins = 0; spins < limit; spins++) {
			if ((a = pop_own(w)) != NULL || (a = steal(w)) != NULL)
				break;
			ck_pr_stall();
			if (spins >= 1024 && spins % 64 == 63) /* see SPINS_MAX */
				sched_yield();
		}
		if (spins < limit) {
			w->spin_limit = w->spin_limit * 2 < SPINS_MAX ? w->spin_limit * 2 : SPINS_MAX;
			return a;
		}
		w->spin_limit = w->spin_limit / 2 > SPINS_MIN ? w->spin_limit / 2 : SPINS_MIN;
		if ((a = sleep_for_work(w, &retry)) != NULL || !retry)
			return a;
		if ((a = steal(w)) != NULL)
			return a;
	}
}

static void *worker_main(void *arg)
{
	struct esr__worker *w = arg;
	struct esr__actor *a;

	ck_pr_store_32(&w->q.busy, 1);
	for (;;) {
		if ((a = pop_own(w)) == NULL && (a = steal(w)) == NULL) {
			settle(w); /* before idling: stop may be waiting for them */
			if ((a = idle(w)) == NULL)
				break;
			ck_pr_store_32(&w->q.busy, 1);
		}
		esr__actor_run(w, a);
		if (w->unsettled >= SETTLE_EVERY)
			settle(w);
	}
	settle(w);
	return NULL;
}

esr_status esr__workers_start(struct esr_runtime *rt)
{
	unsigned i;

	rt->running = 1;
	for (i = 0; i < rt->cfg.workers; i++) {
		struct esr__worker *w = &rt->workers[i];
		w->rt = rt;
		w->index = i;
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

/* Workers leave once their queues are empty; the caller has drained the
 * runtime. A worker reads `running` under its queue's lock, and we store it
 * before taking each lock to wake the owner: it either sees 0 or is woken. */
void esr__workers_stop(struct esr_runtime *rt)
{
	unsigned i;

	ck_pr_store_int(&rt->running, 0);
	for (i = 0; i < rt->cfg.workers; i++) {
		pthread_mutex_lock(&rt->workers[i].q.lock);
		pthread_cond_signal(&rt->workers[i].q.cond);
		pthread_mutex_unlock(&rt->workers[i].q.lock);
	}
	for (i = 0; i < rt->nworkers; i++) {
		pthread_join(rt->workers[i].thread, NULL);
		esr__spare_put(rt, rt->workers[i].em);
		rt->workers[i].em = NULL;
		free(rt->workers[i].scratch);
		rt->workers[i].scratch = NULL;
		rt->workers[i].scratch_cap = 0;
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
	if (s != NULL) /* it may have idled long since its last stamp */
		esr__emitter_restamp(&s->em);
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
