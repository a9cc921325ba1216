/*
 * runtime/actor.c: what a worker does with an actor it popped from the run
 * queue: run up to `batch` commands, one at a time, each through
 * decide -> append -> commit (or catch up and retry). See
 * docs/architecture.md for the map.
 *
 * Single runner. Only the submit that moves `pending` from 0 to 1 puts the
 * actor on the run queue, and a worker only gives the actor up by (a)
 * decrementing pending to 0 (a later submit schedules it again), (b) pushing
 * it back on the run queue itself, or (c) suspending it on an append in
 * flight, whose completion pushes it back. Each hands the actor to exactly one
 * next runner, so no two workers ever run it at once; the run queue's push
 * and take (a release and an acquire, scheduler.c) or the `phase` exchange
 * order one runner's writes before the next's reads.
 *
 * Appends that complete later. Before calling the store the worker records
 * everything the continuation needs in the actor (current ticket, attempts,
 * expected version, the emitter holding the events) and sets phase IN_CALL.
 * The completion stores the result and tries IN_CALL -> COMPLETED; the worker,
 * once the call returns, tries IN_CALL -> SUSPENDED. Whichever CAS wins
 * decides: if the completion came first the worker settles the command at
 * once; otherwise the worker leaves, and the completion marks the actor
 * COMPLETED and puts it back on the run queue, where the next worker to pop it
 * settles the command before anything else. A completion that comes inline,
 * on the worker's own thread inside the call (the memory store's, always),
 * needs no hand-over: a thread-local `calling` recognises it, and the worker
 * settles without either CAS. Those two locked instructions were a tenth of
 * a command's time: each drains the store buffer, still full of the event's
 * stores to a cold slot.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/actor.h"
#include "runtime/runtime_internal.h"
#include "runtime/scheduler.h"
#include "runtime/snapshot.h"
#include "runtime/ticket.h"
#include "store/store_internal.h"

/*
 * Where a command stands after a step: decided (DONE), its append in flight
 * with the actor handed to the completion (SUSPENDED), or due another step
 * by this worker: settle the completed append (SETTLE) or run the handler
 * again (ATTEMPT). proceed() loops over the last two, so that a command
 * retried max_retries times takes no more stack than one that is not.
 */
enum step { DONE, SUSPENDED, SETTLE, ATTEMPT };

/*
 * An idle actor costs sizeof(struct esr__actor) + its names + its state + the
 * allocator's header. The target is 256 bytes beyond the state for a typical
 * id: keep the struct well under it.
 */
_Static_assert(sizeof(struct esr__actor) <= 192, "an idle actor must stay small");
_Static_assert(offsetof(struct esr__actor, mailbox.tail) <= 64,
               "what a submitter touches comes first (actor.h)");

static size_t state_offset(const struct esr__key *k)
{
	size_t at = sizeof(struct esr__actor) + esr__key_storage(k);
	size_t align = _Alignof(max_align_t);

	return (at + align - 1) / align * align;
}

struct esr__actor *esr__actor_new(struct esr_runtime *rt, const esr_aggregate_type *type,
                                  const struct esr__key *k)
{
	size_t offset = state_offset(k);
	struct esr__actor *a = malloc(offset + type->state_size);

	if (a == NULL)
		return NULL;
	memset(a, 0, sizeof *a);
	esr__key_copy(&a->key, k, a + 1);
	esr__mpsc_init(&a->mailbox);
	a->rt = rt;
	esr__exec_bind(&a->x, type, rt->store, a->key.id, a->key.id_len, (char *)a + offset);
	a->idle_since_ms = esr__coarse_ms();
	a->holds = 1; /* the registry's, once inserted */
	return a;
}

void esr__actor_free(struct esr__actor *a)
{
	free(a);
}

void esr__actor_hold(struct esr__actor *a)
{
	/* No ordering: the caller already holds a (or is in the epoch section
	 * that keeps the registry's hold from being dropped under it). */
	ck_pr_inc_32(&a->holds);
}

void esr__actor_release(struct esr__actor *a)
{
	if (esr__count_drop(&a->holds))
		free(a);
}

/* --- completing a command --------------------------------------------------- */

/*
 * Decide the current command's outcome. The ticket is not completed here but
 * by finish(), after the command's mailbox slot is given back: a host that
 * sees the completion and submits again must find the room it left. So that
 * a hot actor's slots cost one atomic per run of commands rather than one
 * each, finish() waits for up to ESR__FINISH_MAX outcomes (see finish_due).
 */
static int finish(struct esr__worker *w, struct esr__actor *a);

/* Record ticket t's outcome for finish(). A full array is finished first: t
 * still holds its mailbox slot then, so the actor cannot go idle there.
 * Counted by the caller: complete() for commands, ask() for queries. */
static void record(struct esr__worker *w, struct esr__actor *a, esr_ticket *t,
                   esr_status st, const esr_result *r)
{
	struct esr_runtime *rt = w->rt;
	struct esr__decided *d;

	if (w->ndecided == ESR__FINISH_MAX)
		finish(w, a);
	d = &w->decided[w->ndecided++];
	d->ticket = t;
	d->status = st;
	d->rejection = r->rejection;
	d->appended = r->appended;
	d->attempts = a->attempts;
	d->version = r->version;
	d->duplicate = r->duplicate;
	if (st == ESR_ECONFLICT) { /* the same report for every command of the turn */
		esr__exec_conflict(&a->x, esr__exec_expected(&a->x, rt->cfg.strategy),
		                   a->appended_version, a->attempts, &w->conflict);
		w->conflicted = 1;
	}
	w->unsettled++; /* taken off `outstanding` by the scheduler, in bulk */
}

/* A command's outcome: recorded, and counted. */
static void complete(struct esr__worker *w, struct esr__actor *a, esr_ticket *t,
                     esr_status st, const esr_result *r)
{
	record(w, a, t, st, r);
	w->c.completed++;
	w->c.rejected += st == ESR_EREJECTED;
	w->c.exhausted += st == ESR_ECONFLICT;
	w->c.duplicates += r->duplicate != 0;
}

/* Complete a ticket that never reached a turn's decision (a failed load, no
 * emitter): a command, or a query (counted apart). */
static void refuse(struct esr__worker *w, struct esr__actor *a, esr_ticket *t, esr_status st)
{
	esr_result r;

	memset(&r, 0, sizeof r);
	r.version = a->x.version;
	if (t->query != NULL) {
		record(w, a, t, st, &r);
		w->c.queries++;
	} else {
		complete(w, a, t, st, &r);
	}
}

/* Whether the decided outcomes must be finished before the next turn: the
 * array is full, a conflict report would be overwritten by the next turn's,
 * or every command queued is decided (pending counts the ones not finished). */
static int finish_due(struct esr__worker *w, struct esr__actor *a)
{
	unsigned k = w->ndecided;

	return k != 0 && (k == ESR__FINISH_MAX || w->conflicted || ck_pr_load_32(&a->pending) == k);
}

/* The emitter a decision used goes back to the worker, or to the spares. */
static void return_emitter(struct esr__worker *w, struct esr__actor *a)
{
	esr_emitter *em = a->em;

	a->em = NULL;
	if (em == NULL || em == w->em)
		return;
	if (w->em == NULL) {
		w->em = em;
	} else {
		esr__spare_put(w->rt, em);
	}
}

/*
 * Account for the decided commands: give back their mailbox slots with one
 * atomic, then complete their tickets in the order they were decided.
 * Returns 1 if the actor went idle: the worker must not touch it again (a
 * submit may already be scheduling it). While an append of the actor is in
 * flight its command holds a slot, so the actor cannot go idle then.
 */
static int finish(struct esr__worker *w, struct esr__actor *a)
{
	struct esr_runtime *rt = w->rt;
	unsigned i, k = w->ndecided;
	esr_result r;
	uint32_t before;

	if (k == 0)
		return 0;
	w->ndecided = 0;
	w->conflicted = 0;
	/* Only this worker decrements pending, so at k every command queued is
	 * decided: the actor is (very likely) going idle. Stamp the time then,
	 * and only if the janitor will ever read it: not a clock read per run. */
	if (rt->cfg.passivate_ms != 0 && ck_pr_load_32(&a->pending) == k)
		ck_pr_store_64(&a->idle_since_ms, esr__coarse_ms());
	/* Release: if this takes pending to 0, the next runner (scheduled by the
	 * submit that takes it from 0) or the janitor acquires what we wrote. */
	ck_pr_fence_release();
	ESR_TSAN_RELEASE(&a->pending);
	before = ck_pr_faa_32(&a->pending, (uint32_t)-k);
	/* A submitter may be waiting for room in this mailbox (see submit.c):
	 * store-buffering pair with wait_for_room, which increments room_waiters,
	 * fences, then loads pending. The full fence orders our decrement before
	 * our load of room_waiters, so one of the two sees the other. */
	if (before >= rt->cfg.mailbox_capacity) {
		ck_pr_fence_memory();
		if (ck_pr_load_32(&rt->room_waiters)) {
			pthread_mutex_lock(&rt->room_lock);
			pthread_cond_broadcast(&rt->room_cond);
			pthread_mutex_unlock(&rt->room_lock);
		}
	}
	/* The slots are free before the completions are visible: each ticket's
	 * release (ticket.c) comes after the decrement in program order, so a
	 * host that acquires a completion sees pending decremented. The tickets
	 * are off the mailbox; from here only w's array is read, never a. */
	memset(&r, 0, sizeof r);
	for (i = 0; i < k; i++) {
		struct esr__decided *d = &w->decided[i];
		r.version = d->version;
		r.appended = d->appended;
		r.attempts = d->attempts;
		r.rejection = d->rejection;
		r.duplicate = d->duplicate;
		if (d->status == ESR_ECONFLICT) /* one report per finish (finish_due) */
			r.conflict = w->conflict;
		esr__ticket_complete_owing(d->ticket, d->status, &r, &w->debt);
	}
	return before == k;
}

/* --- loading ---------------------------------------------------------------- */

/* Rebuild a's state (esr__exec_load), counting and warning as it goes. */
static esr_status load(struct esr__worker *w, struct esr__actor *a)
{
	struct esr_runtime *rt = w->rt;
	struct esr__load info;
	esr_status st;

	st = esr__exec_load(&a->x, &info);
	w->c.events_replayed += info.replayed;
	if (info.refused[0] != '\0') {
		w->c.snapshots_ignored++;
		esr__warn(rt, a->x.type->name, a->key.id, a->key.id_len, "snapshot ignored",
		          "version %" PRIu64 ": %s; replayed the stream", info.refused_version,
		          info.refused);
	}
	if (st != ESR_OK)
		return st;
	w->c.snapshots_loaded += info.snapshot != 0;
	/* A long replay is worth a snapshot now, not at the next crossing. */
	if (rt->cfg.snapshot_every != 0 && a->x.type->snapshot_format != 0 &&
	    info.replayed >= rt->cfg.snapshot_every)
		esr__snapshot_take(w, a);
	return ESR_OK;
}

/* --- one attempt ------------------------------------------------------------- */

/*
 * Ask the store for a handle to the actor's stream once it has events, so
 * that later appends skip the store's lookup. Not before: a handle may create
 * the stream, and an actor that never appends should leave nothing behind.
 */
static esr_status resolve(struct esr__worker *w, struct esr__actor *a)
{
	if (a->x.version == 0 || a->x.handle != NULL)
		return ESR_OK;
	return esr__store_resolve(w->rt->store, &a->x.stream, &a->x.handle);
}

/*
 * After a conflict: apply the events the actor missed. When it missed at
 * least a snapshot interval's worth, reloading from the latest snapshot reads
 * fewer of them.
 */
static esr_status catch_up(struct esr__worker *w, struct esr__actor *a)
{
	uint64_t every = w->rt->cfg.snapshot_every, missed;
	struct esr__load info = {.replayed = 0};
	esr_status st;

	missed = a->appended_version > a->x.version ? a->appended_version - a->x.version : 0;
	if (every != 0 && a->x.type->snapshot_format != 0 && missed >= every)
		return load(w, a);
	st = esr__exec_catch_up(&a->x, &info);
	w->c.events_replayed += info.replayed;
	return st;
}

/* The actor whose append this thread is inside, until it completes inline. */
static _Thread_local struct esr__actor *calling;

static void appended(void *ctx, const esr_append_result *result)
{
	struct esr__actor *a = ctx;
	struct esr_runtime *rt;

	a->em->appended = result->status;
	a->appended_version = result->version;
	/* The turn rides with the actor: nobody else reads it until the
	 * hand-over below. A command no one owns is a broken backend's. */
	if (result->status == ESR_EDUPLICATE && !esr__turn_mark_duplicate(&a->em->turn, result))
		a->em->appended = ESR_EIO;
	if (calling == a) { /* inline, on the worker's own thread: no hand-over */
		calling = NULL;
		return;
	}
	/* Release: pairs with the worker's acquire after its CAS to SUSPENDED
	 * fails, so it reads the outcome as written here. */
	ck_pr_fence_release();
	ESR_TSAN_RELEASE(&a->phase);
	if (ck_pr_cas_32(&a->phase, ESR__PHASE_IN_CALL, ESR__PHASE_COMPLETED))
		return; /* the worker is still in the call and settles it */
	/* The worker suspended the actor and let go. Everything of the worker
	 * the next runner reads was written before the store call (which hands
	 * it to this thread with its own synchronisation); the run queue's
	 * push carries that and the outcome to the next runner. */
	rt = a->rt;
	/* Once pushed, the actor may run, complete the last command and let
	 * a stop free the runtime while the push still reads it: stop waits
	 * for `handing` too. Counted before the push's release, so whoever
	 * completes the turn sees it. */
	ck_pr_inc_32(&rt->handing);
	ck_pr_store_32(&a->phase, ESR__PHASE_COMPLETED);
	esr__runq_push(rt, esr__home_of(&rt->cfg, a->key.hash), a);
	ck_pr_fence_release();
	ESR_TSAN_RELEASE(&rt->handing);
	ck_pr_dec_32(&rt->handing);
}

/* Complete every command of a's turn, its outcome read from the turn's append
 * (see esr__turn_outcome); then the emitter goes back. */
static void outcomes(struct esr__worker *w, struct esr__actor *a, esr_status appended,
                     uint64_t base, uint64_t last)
{
	esr_emitter *em = a->em;
	struct esr__turn *t = &em->turn;
	esr_result r;
	esr_status st;
	unsigned i;

	memset(&r, 0, sizeof r);
	for (i = 0; i < t->n; i++) {
		st = esr__turn_outcome(t, i, em->count, base, appended, last, &r);
		complete(w, a, t->c[i].owner, st, &r);
	}
	return_emitter(w, a);
}

/* The append of the turn's events completed (em->appended, appended_version):
 * act on it. DONE, or ATTEMPT after a conflict with retries left (the actor
 * caught up; the whole turn is decided again). */
static enum step settle(struct esr__worker *w, struct esr__actor *a)
{
	struct esr_runtime *rt = w->rt;
	esr_status st = a->em->appended;
	uint64_t base = a->x.version, every = rt->cfg.snapshot_every;

	if (st == ESR_OK) {
		st = esr__exec_commit(&a->x, a->em, rt->cfg.strategy, a->appended_version);
		if (st != ESR_OK) /* stored, but not where expected: trust the store */
			a->fresh = ESR__FRESH_UNLOADED;
		if (st == ESR_OK && a->x.handle == NULL)
			resolve(w, a); /* failing is fine: appends go by id meanwhile */
		if (st == ESR_OK && every != 0 && a->x.type->snapshot_format != 0 &&
		    !a->x.skipped && a->x.version / every != base / every)
			esr__snapshot_take(w, a);
		outcomes(w, a, st, base, a->appended_version);
		return DONE;
	}
	if (st == ESR_EDUPLICATE) /* marked by appended(): decide the rest again */
		return ATTEMPT;
	if (st == ESR_ECONFLICT && rt->cfg.strategy == ESR_UNCHECKED)
		st = ESR_EIO; /* an ANY append cannot conflict unless the backend is broken */
	if (st == ESR_EUNKNOWN &&
	    esr__turn_settle_unknown(&a->x, &a->em->turn, a->em->count, &a->appended_version) == ESR_OK) {
		a->fresh = ESR__FRESH_UNLOADED; /* stored after all: read it back first */
		outcomes(w, a, ESR_OK, base, a->appended_version);
		return DONE;
	}
	if (st != ESR_ECONFLICT) {
		/* Whether the events were stored is not known: the state may be
		 * one append behind the stream. Reload it before the next command,
		 * so that command decides on what the store holds. */
		if (st == ESR_EUNKNOWN)
			a->fresh = ESR__FRESH_UNLOADED;
		outcomes(w, a, st, base, 0);
		return DONE;
	}
	w->c.conflicts++;
	if (a->attempts > rt->cfg.max_retries) {
		/* The stream is past the state: catch up before the next command,
		 * or it would spend its first attempt (all of them, with no
		 * retries) on the same stale version. */
		a->fresh = ESR__FRESH_BEHIND;
		outcomes(w, a, ESR_ECONFLICT, base, 0);
		return DONE;
	}
	if ((st = catch_up(w, a)) != ESR_OK) {
		a->fresh = ESR__FRESH_BEHIND; /* it may have applied part of them */
		outcomes(w, a, st, base, 0);
		return DONE;
	}
	w->c.retries += a->em->turn.n;
	return ATTEMPT;
}

/* Room for a copy of a's state, where a turn decides its later commands. */
static int scratch_ready(struct esr__worker *w, const struct esr__actor *a)
{
	size_t need = a->x.type->state_size;
	void *p;

	if (w->scratch_cap >= need)
		return 1;
	if ((p = realloc(w->scratch, need)) == NULL) /* max_align_t aligned */
		return 0;
	w->scratch = p;
	w->scratch_cap = need;
	return 1;
}

/* Put the turn's commands from k on back in front of a's mailbox (a->current,
 * linked through their nodes, which the mailbox no longer reads once popped),
 * in order: the next turn starts with them. */
static void carry(struct esr__actor *a, struct esr__turn *t, unsigned k)
{
	esr_ticket *tk;

	while (t->n > k) {
		tk = t->c[--t->n].owner;
		tk->node.next = (struct esr__mpsc_node *)a->current;
		a->current = tk;
	}
}

/* Decide the turn's commands and append what they decided as one. DONE,
 * SUSPENDED, or SETTLE when the append has completed already. */
static enum step attempt(struct esr__worker *w, struct esr__actor *a)
{
	struct esr_runtime *rt = w->rt;
	esr_emitter *em = a->em;
	struct esr__turn *t = &em->turn;
	uint64_t expected;
	esr_status st;
	unsigned k;

	a->attempts++;
	/* This worker may not be the one that began the turn (a completion
	 * that came later requeues the actor): its scratch must fit too. */
	if (t->n > 1 && !scratch_ready(w, a))
		carry(a, t, 1);
	k = esr__turn_decide(&a->x, em, t, w->scratch, esr__store_turn_bytes(rt->store));
	carry(a, t, k); /* what did not fit (a retry may decide bigger events) */
	if (em->count == 0) {
		outcomes(w, a, ESR_OK, a->x.version, 0);
		return DONE;
	}
	expected = esr__exec_expected(&a->x, rt->cfg.strategy);
	/* An append that may complete on another thread hands the actor over:
	 * its next runner must find pending counting only unfinished commands.
	 * The turn's commands keep their slots, so the actor cannot go idle here. */
	if (!esr__store_completes_inline(rt->store)) {
		finish(w, a);
		/* The emitter may ride with the actor for long: its next
		 * events read the clock again. */
		esr__emitter_restamp(em);
	}
	/* No fence: the completion reads phase only after the store call hands
	 * it the append, which orders this store before that. */
	ck_pr_store_32(&a->phase, ESR__PHASE_IN_CALL);
	calling = a;
	w->c.appends++;
	st = esr__store_append_built(rt->store, &a->x.stream, a->x.handle, expected,
	                             esr__emitter_events(em), em->count, appended, a);
	if (st != ESR_OK) { /* refused outright: no completion will come */
		calling = NULL;
		a->phase = ESR__PHASE_IDLE;
		if (st == ESR_EUNKNOWN) /* the contract says nothing was stored; */
			a->fresh = ESR__FRESH_UNLOADED; /* a backend saying otherwise wins */
		outcomes(w, a, st, a->x.version, 0);
		return DONE;
	}
	if (calling == NULL) { /* completed inline: nobody else saw the actor */
		a->phase = ESR__PHASE_IDLE;
		return SETTLE;
	}
	calling = NULL;
	/* Won: the completion has not come; from here the actor is its (see
	 * appended()), and this worker must not touch it. The emitter rides
	 * with it. */
	if (ck_pr_cas_32(&a->phase, ESR__PHASE_IN_CALL, ESR__PHASE_SUSPENDED))
		return SUSPENDED;
	/* Lost: the completion's CAS came first. Acquire: pairs with its
	 * release, so the outcome is read as it wrote it. */
	ck_pr_fence_acquire();
	ESR_TSAN_ACQUIRE(&a->phase);
	a->phase = ESR__PHASE_IDLE;
	return SETTLE;
}

/* Take the command from `step` until it is DONE or SUSPENDED. */
static enum step proceed(struct esr__worker *w, struct esr__actor *a, enum step step)
{
	while (step == SETTLE || step == ATTEMPT)
		step = step == SETTLE ? settle(w, a) : attempt(w, a);
	return step;
}

/* --- running an actor ------------------------------------------------------------ */

void esr__actor_prefetch(struct esr__worker *w, const struct esr__actor *a, int stage)
{
	const char *p = (const char *)a;

	switch (stage) {
	case 0: /* the struct is three lines; the worker writes all of them */
		__builtin_prefetch(p, 1, 3);
		__builtin_prefetch(p + 64, 1, 3);
		__builtin_prefetch(p + 128, 1, 3);
		break;
	case 1:
		__builtin_prefetch(a->x.state, 1, 3);
		/* The oldest ticket (or the stub's successor): a peek. */
		__builtin_prefetch(ck_pr_load_ptr(&a->mailbox.tail->next), 1, 3);
		esr__store_prefetch(w->rt->store, a->x.handle, 0);
		break;
	default:
		esr__store_prefetch(w->rt->store, a->x.handle, stage - 1);
	}
}

/* The next ticket: one a turn carried over (they come first), else the
 * mailbox's oldest, which pending says is there or being pushed right now. */
static esr_ticket *next_ticket(struct esr__actor *a)
{
	struct esr__mpsc_node *n;
	unsigned spins = 0;
	esr_ticket *t;

	if ((t = a->current) != NULL) {
		a->current = (esr_ticket *)t->node.next;
		return t;
	}
	while ((n = esr__mpsc_pop(&a->mailbox)) == NULL) {
		if (++spins < 64)
			ck_pr_stall();
		else
			sched_yield(); /* its submitter is between claim and push */
	}
	return (esr_ticket *)n;
}

/* Put t back in front of a's queue: the next start() takes it first. */
static void put_back(struct esr__actor *a, esr_ticket *t)
{
	t->node.next = (struct esr__mpsc_node *)a->current;
	a->current = t;
}

/*
 * Answer the query q and those queued right behind it, up to `room` in
 * all: each reads the state every command before it left (a turn ends
 * before a query, and its append has settled by now), so nothing of a
 * turn is in flight. *taken counts them.
 */
static void ask(struct esr__worker *w, struct esr__actor *a, esr_ticket *q, unsigned room,
                unsigned *taken)
{
	esr_result r;
	int code;

	memset(&r, 0, sizeof r);
	r.version = a->x.version;
	for (*taken = 1;; ++*taken) {
		/* What read() writes through its ctx reaches whoever sees the
		 * completion by the ticket's release (ticket.c), as a command's
		 * result does. */
		code = q->query((void *)q->command, a->x.state, a->x.version);
		r.rejection = code;
		record(w, a, q, code != 0 ? ESR_EREJECTED : ESR_OK, &r);
		w->c.queries++;
		if (*taken == room ||
		    (a->current == NULL && ck_pr_load_32(&a->pending) <= w->ndecided))
			return;
		if ((q = next_ticket(a))->query == NULL) { /* a command: the next turn's */
			put_back(a, q);
			return;
		}
	}
}

/* Make the state fit to decide on: load it, or catch up with the stream. */
static esr_status refresh(struct esr__worker *w, struct esr__actor *a)
{
	esr_status st;

	if (a->fresh == ESR__FRESH_BEHIND) {
		if ((st = catch_up(w, a)) != ESR_OK)
			return st;
	} else {
		if ((st = load(w, a)) != ESR_OK || (st = resolve(w, a)) != ESR_OK)
			return st;
		w->c.activations++;
	}
	a->fresh = ESR__FRESH_CURRENT;
	return ESR_OK;
}

/*
 * Start a turn: the next command, and as many more as are queued, up to
 * `room`, decided together and appended as one. *taken says how many the
 * turn took (a retry may carry some of them over to the next).
 */
static enum step start(struct esr__worker *w, struct esr__actor *a, unsigned room,
                       unsigned *taken)
{
	esr_ticket *first = next_ticket(a);
	struct esr__turn *t;
	esr_status st;

	*taken = 1;
	a->attempts = 0;
	if (a->fresh != ESR__FRESH_CURRENT && (st = refresh(w, a)) != ESR_OK) {
		refuse(w, a, first, st); /* the next command tries again */
		return DONE;
	}
	if (first->query != NULL) {
		ask(w, a, first, room, taken);
		return DONE;
	}
	if (w->em == NULL && (w->em = esr__spare_get(w->rt)) == NULL) {
		refuse(w, a, first, ESR_ENOMEM);
		return DONE;
	}
	a->em = w->em; /* the turn's, until its outcomes are known */
	w->em = NULL;
	t = &a->em->turn;
	t->n = 0;
	/* A command's cid bytes are its ticket's copy (ticket.c): valid until
	 * the ticket completes, which finish() does only after the turn's
	 * outcomes are taken, and carry() hands back tickets still holding theirs. */
	t->c[t->n++] = (struct esr__turn_cmd){.command = first->command, .owner = first,
	                                      .cid = first->cid};
	/* With nothing carried over, every command popped and not finished is
	 * decided or in this turn: pending beyond those is still queued. */
	while (t->n < room &&
	       (a->current != NULL || ck_pr_load_32(&a->pending) > w->ndecided + t->n)) {
		esr_ticket *next = next_ticket(a);
		if (next->query != NULL) { /* it reads what this turn appends */
			put_back(a, next);
			break;
		}
		t->c[t->n++] = (struct esr__turn_cmd){.command = next->command, .owner = next,
		                                      .cid = next->cid};
	}
	*taken = t->n;
	return proceed(w, a, ATTEMPT);
}

void esr__actor_run(struct esr__worker *w, struct esr__actor *a)
{
	unsigned ran = 0, batch = w->rt->cfg.batch, room, taken;

	/* The actor came through the run queue, whose push and take already
	 * order the completion's writes before ours; the acquire is for the
	 * reader. */
	if (ck_pr_load_32(&a->phase) == ESR__PHASE_COMPLETED) {
		ck_pr_fence_acquire();
		ESR_TSAN_ACQUIRE(&a->phase);
		a->phase = ESR__PHASE_IDLE;
		ran = a->em->turn.n;
		if (proceed(w, a, SETTLE) == SUSPENDED)
			return;
	}
	for (;;) {
		/* Finishing may take pending to 0: then the actor is not ours. */
		if (finish_due(w, a) && finish(w, a))
			return;
		/* After `batch` commands let other actors of this worker run
		 * first, if any wait: otherwise the actor stays where its state
		 * is warm in the cache. An unlocked peek: only a hint. */
		if (ran >= batch && (w->local != NULL || ck_pr_load_32(&w->q.count) != 0))
			break;
		room = ran < batch ? batch - ran : batch;
		if (room > ESR__TURN_MAX)
			room = ESR__TURN_MAX;
		/* pending > the decided ones: a command is queued or being pushed. */
		if (start(w, a, room, &taken) == SUSPENDED)
			return;
		ran += taken;
	}
	if (!finish(w, a)) /* it went idle: nothing to queue */
		esr__runq_push(w->rt, w->index, a); /* more is waiting: others run first */
}
