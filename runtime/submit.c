/*
 * runtime/submit.c: routing submitted commands to their actors' mailboxes.
 * See docs/architecture.md for the map.
 *
 * The actor's `pending` count is the mailbox's capacity check and the
 * scheduling token at once: a submitter claims a slot by CAS (never past the
 * capacity, never on a DEAD actor), pushes its ticket, and if its claim moved
 * pending from 0 to 1 the actor is its to put on the run queue. A claim made
 * with CAS rather than fetch-and-add never overshoots, so a full mailbox can
 * refuse a command without the count ever claiming a command that is not
 * coming.
 *
 * Everything per call rather than per command is paid once per run of up to
 * CHUNK commands (a `struct run`): one ticket allocation, one epoch section,
 * one addition to `outstanding` and to the submit counter, and one trip to
 * the run queue for all the actors the run made ready. Commands to one
 * aggregate that follow each other in a run (a host feeding one hot
 * aggregate) share one lookup, one claim of several slots and one push of
 * their tickets as a chain. A run must hand its ready actors to the run
 * queue before it can block (a full mailbox): an actor that is never
 * scheduled never makes room.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "runtime/actor.h"
#include "runtime/passivate.h"
#include "runtime/ref.h"
#include "runtime/runtime_internal.h"
#include "runtime/scheduler.h"
#include "runtime/ticket.h"

/* Commands that share one ticket block, epoch section and run queue trip. */
#define CHUNK 64
/* What plan_run hints of an actor: its struct and its names. */
#define ACTOR_HINT ((uint32_t)sizeof(struct esr__actor) + 64)

struct type_cache {
	const char *name; /* the pointer last looked up; NULL for none */
	const esr_aggregate_type *def;
	struct esr__key_type key; /* def's name, with its part of the hash */
};

/* One group of a run by name, as plan_run found it. */
struct group {
	struct esr__key key; /* type NULL: not made (the group is refused) */
	unsigned len;        /* commands from here naming one aggregate; 0 inside */
	struct esr__actor *hint; /* the actor plan_run hinted, or NULL (target()) */
};

struct run {
	esr_runtime *rt;
	struct esr__ticket_block *block;
	ck_epoch_record_t *rec; /* NULL: no sections (passivation is off) */
	int in_section;
	int hints_stale; /* a section ended since plan_run: its hints may be freed */
	struct esr__actor *ready, *ready_tail; /* claimed from 0: to schedule */
	struct type_cache tc;
	struct esr_ref *ref; /* the run's commands go through it; NULL: by name */
	esr_query_fn query;  /* non-NULL: the run's "commands" are this query's ctx */
};

static struct esr__stripe *my_stripe(esr_runtime *rt)
{
	static _Thread_local unsigned slot = UINT32_MAX;
	static unsigned next;

	if (slot == UINT32_MAX) /* atomic only to hand out distinct slots */
		slot = ck_pr_faa_uint(&next, 1) % ESR__STRIPES;
	return &rt->stripes[slot];
}

/*
 * Epoch sections guard lookups against the janitor's frees. Without
 * passivation no actor is freed before stop, which waits for every submit, so
 * there are no sections (rec is NULL).
 */
static void section_begin(struct run *r)
{
	if (r->rec != NULL && !r->in_section) {
		ck_epoch_begin(r->rec, NULL);
		r->in_section = 1;
	}
}

static void section_end(struct run *r)
{
	if (r->in_section) {
		ESR_TSAN_RELEASE(&r->rt->epoch);
		ck_epoch_end(r->rec, NULL);
		r->in_section = 0;
		r->hints_stale = 1;
	}
}

/*
 * Hand the actors this run made ready to their home workers: one trip to each
 * home's queue, with that home's actors in the order they became ready. At
 * most CHUNK actors, so the passes over the list (one per home) stay short.
 */
static void schedule_ready(struct run *r)
{
	const esr_runtime_config *cfg = &r->rt->cfg;
	struct esr__actor *a, *next, *rest, *rest_tail, *head, *tail;
	unsigned home, n;

	for (a = r->ready; a != NULL; a = rest) {
		home = esr__home_of(cfg, a->key.hash);
		head = tail = rest = rest_tail = NULL;
		n = 0;
		for (; a != NULL; a = next) { /* split: this home's, and the rest */
			next = a->run_next;
			a->run_next = NULL;
			if (esr__home_of(cfg, a->key.hash) == home) {
				*(tail ? &tail->run_next : &head) = a;
				tail = a;
				n++;
			} else {
				*(rest_tail ? &rest_tail->run_next : &rest) = a;
				rest_tail = a;
			}
		}
		esr__runq_push_list(r->rt, home, head, tail, n);
	}
	r->ready = r->ready_tail = NULL;
}

/* --- one command --------------------------------------------------------------- */

enum claim { CLAIMED, FULL, GONE };

/* Take up to k slots in a's mailbox, as many as there is room for (*got);
 * *first says the actor must be scheduled. */
static enum claim claim(esr_runtime *rt, struct esr__actor *a, unsigned k, unsigned *got,
                        int *first)
{
	uint32_t p, cap = rt->cfg.mailbox_capacity;

	for (;;) {
		p = ck_pr_load_32(&a->pending);
		if (p == ESR__ACTOR_DEAD)
			return GONE;
		if (p >= cap)
			return FULL;
		*got = cap - p < k ? cap - p : k;
		if (ck_pr_cas_32(&a->pending, p, p + *got)) {
			/* Taking pending from 0 hands us the actor the last worker
			 * released in finish(): acquire what it wrote. */
			*first = p == 0;
			if (*first) {
				ck_pr_fence_acquire();
				ESR_TSAN_ACQUIRE(&a->pending);
			}
			return CLAIMED;
		}
	}
}

/*
 * Sleep until a's mailbox has room or the runtime stops (within the caller's
 * epoch section or hold, so a cannot be freed). The waiter counts itself, fences and
 * re-checks; finish() in actor.c decrements, fences and checks for waiters:
 * one of the two sees the other.
 */
static void wait_for_room(esr_runtime *rt, struct esr__actor *a)
{
	pthread_mutex_lock(&rt->room_lock);
	/* Store-buffering pair with finish(): our increment, full fence, our
	 * load of pending; its decrement, full fence, its load of waiters. A
	 * stop that sets `stopping` broadcasts under room_lock, which we hold
	 * while we look at it. */
	ck_pr_inc_32(&rt->room_waiters);
	ck_pr_fence_memory();
	while (ck_pr_load_32(&a->pending) >= rt->cfg.mailbox_capacity &&
	       ck_pr_load_32(&a->pending) != ESR__ACTOR_DEAD && !ck_pr_load_32(&rt->stopping))
		pthread_cond_wait(&rt->room_cond, &rt->room_lock);
	ck_pr_dec_32(&rt->room_waiters);
	pthread_mutex_unlock(&rt->room_lock);
}

static struct esr__actor *find_or_activate(esr_runtime *rt, const esr_aggregate_type *type,
                                           const struct esr__key *k)
{
	struct esr__actor *a = (struct esr__actor *)esr__keyset_get(rt->actors, k), *fresh;

	if (a != NULL)
		return a;
	if ((fresh = esr__actor_new(rt, type, k)) == NULL)
		return NULL;
	a = (struct esr__actor *)esr__keyset_insert(rt->actors, &fresh->key);
	if (a == fresh)
		ck_pr_inc_64(&my_stripe(rt)->created);
	else
		esr__actor_free(fresh); /* another submitter activated it first */
	return a;
}

/*
 * The actor for k: the one the run's reference holds, else the registry's
 * (found or activated inside an epoch section), which a reference then
 * holds. A held actor needs no section: the hold keeps its memory. hint:
 * what plan_run's probe found for k (or NULL), used if it is k's and the
 * section it was found in has not ended, which spares a second probe.
 */
static struct esr__actor *target(struct run *r, const esr_aggregate_type *type,
                                 const struct esr__key *k, struct esr__actor *hint)
{
	struct esr__actor *a;

	if (r->ref != NULL && r->ref->actor != NULL)
		return r->ref->actor;
	section_begin(r);
	if (hint != NULL && !r->hints_stale && esr__keyset_is(&hint->key, k))
		a = hint;
	else
		a = find_or_activate(r->rt, type, k);
	if (a != NULL && r->ref != NULL) {
		esr__actor_hold(a); /* found inside the section: safe */
		r->ref->actor = a;
	}
	return a;
}

/* a was found evicted (or being evicted): a reference lets go of it, and the
 * next target() looks its aggregate up again. */
static void forget(struct run *r, struct esr__actor *a)
{
	if (r->ref != NULL && r->ref->actor == a) {
		r->ref->actor = NULL;
		esr__actor_release(a);
	}
}

/*
 * Find or activate the actor, claim slots for up to n commands (as many as
 * there is room for, at least one: *got), and enqueue their tickets t[0..*got)
 * as one chain, in order.
 */
static esr_status route(struct run *r, const esr_aggregate_type *type,
                        const struct esr__key *k, struct esr__actor *hint, esr_ticket **t,
                        unsigned n, unsigned *got)
{
	esr_runtime *rt = r->rt;
	struct esr__actor *a;
	enum claim c;
	int first = 0;
	unsigned i;

	for (;;) {
		if ((a = target(r, type, k, hint)) == NULL)
			return ESR_ENOMEM;
		if ((c = claim(rt, a, n, got, &first)) == CLAIMED)
			break;
		if (c == FULL) {
			ck_pr_inc_64(&my_stripe(rt)->mailbox_full);
			if (rt->cfg.overflow == ESR_OVERFLOW_FAIL)
				return ESR_EBUSY;
			schedule_ready(r); /* they may be what would make room */
			if (!ck_pr_load_32(&rt->stopping))
				wait_for_room(rt, a);
			if (ck_pr_load_32(&rt->stopping))
				return ESR_ESHUTDOWN;
		} else { /* GONE: the janitor is removing it; look again */
			forget(r, a);
			section_end(r); /* its free waits for sections like ours */
			sched_yield();
		}
	}
	/* A claimed slot keeps the actor alive past the section. */
	for (i = 0; i + 1 < *got; i++)
		t[i]->node.next = &t[i + 1]->node;
	esr__mpsc_push_chain(&a->mailbox, &t[0]->node, &t[*got - 1]->node);
	/* The 0 -> 1 claim made this run the actor's only scheduler: its run_next
	 * is ours until the run queue's push hands it to a worker. */
	if (first) {
		a->run_next = NULL;
		if (r->ready_tail)
			r->ready_tail->run_next = a;
		else
			r->ready = a;
		r->ready_tail = a;
	}
	return ESR_OK;
}

/* How many of s[0..n) name the same aggregate as s[0], back to back (the
 * same type pointer and the same id bytes): they share one route. */
static unsigned same_aggregate(const esr_submission *s, size_t n)
{
	unsigned k = 1;

	if (s[0].id == NULL || s[0].id_len == 0 || s[0].id_len > ESR_ID_MAX)
		return 1; /* refused on its own, before anything is read */
	while (k < n && s[k].type == s[0].type && s[k].id_len == s[0].id_len &&
	       s[k].id != NULL && memcmp(s[k].id, s[0].id, s[0].id_len) == 0)
		k++;
	return k;
}

/* The run's type cache set to `name` (looked up only when the pointer
 * changes); ESR_ENOTYPE (or the check's status) leaves it empty. */
static esr_status resolve_type(struct run *r, const char *name)
{
	struct type_cache *tc = &r->tc;
	esr_status st;

	if (tc->def != NULL && tc->name == name)
		return ESR_OK;
	tc->def = NULL;
	if ((st = esr__types_find(&r->rt->types, name, &tc->def)) != ESR_OK)
		return st;
	tc->name = name;
	esr__keyset_type(r->rt->actors, tc->def->name, &tc->key);
	return ESR_OK;
}

/*
 * Plan a run by name before routing it: split it into groups that name one
 * aggregate each (plan[i].len at each group's first command, 0 inside a
 * group) and make each group's key once (plan[i].key; type NULL when the
 * id or type would be refused: submit_group refuses it then).
 *
 * With more than one group, each group's actor is also hinted into the
 * cache (its first line, which the claim and the push write, and its
 * names, which the lookup compares), so that the run's misses on actors
 * overlap instead of following one another. With thousands of actors the
 * submitter's first touch of an actor is a miss: `perf record -e cpu-clock
 * -g` on esr-stress's counter workload at 10 000 aggregates put 43% of the
 * submitting thread's samples on the lookup's key comparison. A run of one
 * aggregate is not hinted: hinting lines a worker is writing takes them
 * away from it, which cost a quarter of the throughput with one aggregate.
 */
static void plan_run(struct run *r, const esr_submission *subs, size_t n, struct group *plan)
{
	size_t i, j, k;

	for (i = 0; i < n; i += k) {
		k = plan[i].len = same_aggregate(&subs[i], n - i);
		for (j = 1; j < k; j++)
			plan[i + j].len = 0;
		plan[i].key.type = NULL;
		if (esr__check_id(subs[i].id, subs[i].id_len) != ESR_OK ||
		    resolve_type(r, subs[i].type) != ESR_OK)
			continue;
		esr__keyset_key_of(&r->tc.key, subs[i].id, subs[i].id_len, &plan[i].key);
		plan[i].hint = NULL;
		if (k != n) {
			section_begin(r); /* before the probe: keeps its find alive */
			plan[i].hint = (struct esr__actor *)esr__keyset_prefetch(
				r->rt->actors, &plan[i].key, ACTOR_HINT);
		}
	}
}

/*
 * Submit s[0..k), which name one aggregate; *got says how many were
 * accepted (all, unless its mailbox had room for fewer: then the caller
 * submits the rest again, and they block or fail one by one as the
 * overflow policy says). planned: what plan_run made for s (its key, the
 * id checked, and its hint), or NULL to check and make the key here.
 */
static esr_status submit_group(struct run *r, const esr_submission *s, unsigned k,
                               const struct group *planned, esr_ticket_cb cb,
                               esr_ticket **out, unsigned *got)
{
	struct type_cache *tc = &r->tc;
	const esr_aggregate_type *type;
	const struct esr__key *key;
	struct esr__actor *hint = NULL;
	struct esr__key by_name;
	esr_ticket *t[CHUNK];
	esr_status st;
	unsigned i;

	*got = 0;
	if (r->ref != NULL) { /* checked and hashed when it was opened */
		type = r->ref->type;
		key = &r->ref->key;
	} else {
		/* command may be NULL: it is handle()'s to read, as in the repository. */
		if (planned == NULL && (st = esr__check_id(s->id, s->id_len)) != ESR_OK)
			return st;
		if ((st = resolve_type(r, s->type)) != ESR_OK)
			return st; /* refused before any actor is touched */
		type = tc->def;
		if (planned == NULL) {
			esr__keyset_key_of(&tc->key, s->id, s->id_len, &by_name);
			key = &by_name;
		} else {
			key = &planned->key;
			hint = planned->hint;
		}
	}
	/* A bad or uncopyable command id refuses its command: those before it
	 * go on alone, and the caller's next group starts with it. */
	for (i = 0; i < k; i++) {
		t[i] = esr__tickets_take(r->block, s[i].command, r->query, cb, s[i].ctx);
		if ((st = esr__check_command_id(&s[i].command_id)) != ESR_OK ||
		    (esr__ticket_set_cid(t[i], &s[i].command_id) != 0 && (st = ESR_ENOMEM))) {
			esr__tickets_untake(r->block, 1);
			if ((k = i) == 0)
				return st;
			break;
		}
	}
	if ((st = route(r, type, key, hint, t, k, got)) != ESR_OK)
		*got = 0;
	for (i = *got; i < k; i++)
		esr__ticket_drop_cid(t[i]);
	esr__tickets_untake(r->block, k - *got); /* never enqueued */
	for (i = 0; out != NULL && i < *got; i++)
		out[i] = t[i];
	return st;
}

/* --- runs of commands -------------------------------------------------------------- */

/*
 * Submit subs[0..n) (n <= CHUNK) inside an open window; *done counts those
 * accepted. `outstanding` is raised for all n before any is pushed and
 * lowered again for those refused, so it never reads below the commands
 * actually in the runtime: a worker completing one early cannot take it
 * through zero.
 */
static esr_status submit_run(esr_runtime *rt, struct esr_ref *ref, esr_query_fn query,
                             const esr_submission *subs, size_t n, esr_ticket **tickets,
                             esr_ticket_cb cb, size_t *done, struct type_cache *tc)
{
	struct run r = {.rt = rt, .tc = *tc, .ref = ref, .query = query};
	const struct group *planned;
	struct group plan[CHUNK];
	esr_status st = ESR_OK;
	unsigned k, got;
	size_t i;

	*done = 0;
	for (i = 0; i < n && subs[i].command_id.len == 0; i++)
		;
	if ((r.block = esr__tickets_alloc(n, tickets != NULL, i < n)) == NULL)
		return ESR_ENOMEM;
	if (rt->cfg.passivate_ms != 0 && (r.rec = esr__epoch_record(rt)) == NULL) {
		esr__tickets_release_unused(r.block);
		return ESR_ENOMEM;
	}
	/* Raised before any push, so it never reads below the commands in the
	 * runtime: our push fences (store) between this increment and the
	 * link a worker reads the ticket through, and the worker fences
	 * (release, in finish()) between that read and its decrement. Stop
	 * reads it only after our window closes (release). */
	ck_pr_faa_64(&rt->outstanding, n);
	if (ref == NULL)
		plan_run(&r, subs, n, plan);
	for (i = 0; i < n; i += got) {
		planned = NULL;
		if (ref != NULL) {
			k = (unsigned)(n - i);
		} else if (plan[i].len != 0) {
			k = plan[i].len;
			planned = plan[i].key.type != NULL ? &plan[i] : NULL;
		} else { /* the rest of a group a full mailbox cut short */
			k = same_aggregate(&subs[i], n - i);
		}
		st = submit_group(&r, &subs[i], k, planned, cb, tickets ? &tickets[i] : NULL, &got);
		if (st != ESR_OK)
			break;
	}
	section_end(&r);
	schedule_ready(&r);
	if (i < n)
		ck_pr_faa_64(&rt->outstanding, -(uint64_t)(n - i));
	ck_pr_faa_64(query ? &my_stripe(rt)->queries : &my_stripe(rt)->submitted, i);
	esr__tickets_release_unused(r.block);
	*tc = r.tc;
	*done = i;
	return st;
}

/* Both batch forms, by name or through ref: tickets != NULL gives tickets,
 * else cb(subs[i].ctx). With `query` set, each submission is a query whose
 * ctx is its `command`. */
static esr_status submit_many(esr_runtime *rt, struct esr_ref *ref, esr_query_fn query,
                              const esr_submission *subs, size_t n, esr_ticket **tickets,
                              esr_ticket_cb cb, size_t *accepted)
{
	struct type_cache tc = {.name = NULL};
	esr_status st = ESR_OK;
	size_t i = 0, k, done;

	if (rt == NULL || (subs == NULL && n > 0)) {
		st = ESR_EINVAL;
	} else if (n > 0) {
		if (esr__window_open(rt)) {
			for (; st == ESR_OK && i < n; i += done) {
				k = n - i < CHUNK ? n - i : CHUNK;
				st = submit_run(rt, ref, query, subs + i, k,
				                tickets ? tickets + i : NULL, cb, &done, &tc);
			}
		} else {
			st = ESR_ESHUTDOWN;
		}
		esr__window_close(rt); /* closed whatever the window said */
	}
	if (accepted)
		*accepted = i;
	return st;
}

/* --- the public calls ------------------------------------------------------------------ */

esr_status esr_submit_id(esr_runtime *rt, const char *type, const void *id, size_t id_len,
                         const void *command, const esr_command_id *cid, esr_ticket **ticket)
{
	esr_submission s = {type, id, id_len, command, NULL, cid ? *cid : (esr_command_id){NULL, 0}};

	if (ticket == NULL)
		return ESR_EINVAL;
	return submit_many(rt, NULL, NULL, &s, 1, ticket, NULL, NULL);
}

esr_status esr_submit(esr_runtime *rt, const char *type, const void *id, size_t id_len,
                      const void *command, esr_ticket **ticket)
{
	return esr_submit_id(rt, type, id, id_len, command, NULL, ticket);
}

esr_status esr_submit_cb_id(esr_runtime *rt, const char *type, const void *id, size_t id_len,
                            const void *command, const esr_command_id *cid,
                            esr_ticket_cb done, void *ctx)
{
	esr_submission s = {type, id, id_len, command, ctx, cid ? *cid : (esr_command_id){NULL, 0}};

	if (done == NULL)
		return ESR_EINVAL;
	return submit_many(rt, NULL, NULL, &s, 1, NULL, done, NULL);
}

esr_status esr_submit_cb(esr_runtime *rt, const char *type, const void *id,
                         size_t id_len, const void *command, esr_ticket_cb done,
                         void *ctx)
{
	return esr_submit_cb_id(rt, type, id, id_len, command, NULL, done, ctx);
}

esr_status esr_submit_many(esr_runtime *rt, const esr_submission *subs, size_t n,
                           esr_ticket **tickets, size_t *accepted)
{
	if (tickets == NULL) {
		if (accepted)
			*accepted = 0;
		return ESR_EINVAL;
	}
	return submit_many(rt, NULL, NULL, subs, n, tickets, NULL, accepted);
}

esr_status esr_submit_many_cb(esr_runtime *rt, const esr_submission *subs, size_t n,
                              esr_ticket_cb done, size_t *accepted)
{
	if (done == NULL) {
		if (accepted)
			*accepted = 0;
		return ESR_EINVAL;
	}
	return submit_many(rt, NULL, NULL, subs, n, NULL, done, accepted);
}

/* Wait for t, release it, and return its outcome (filling *result). */
static esr_status outcome_of(esr_ticket *t, esr_result *result)
{
	esr_status outcome;

	esr_ticket_wait(t, -1);
	esr_ticket_result(t, &outcome, result);
	esr_ticket_release(t);
	return outcome;
}

esr_status esr_execute_id(esr_runtime *rt, const char *type, const void *id, size_t id_len,
                          const void *command, const esr_command_id *cid, esr_result *result)
{
	esr_ticket *t;
	esr_status st;

	if (result)
		memset(result, 0, sizeof *result);
	if ((st = esr_submit_id(rt, type, id, id_len, command, cid, &t)) != ESR_OK)
		return st;
	return outcome_of(t, result);
}

esr_status esr_execute(esr_runtime *rt, const char *type, const void *id,
                       size_t id_len, const void *command, esr_result *result)
{
	return esr_execute_id(rt, type, id, id_len, command, NULL, result);
}

/* --- through a reference ------------------------------------------------------------ */

esr_status esr__ref_attach(struct esr_ref *ref)
{
	esr_runtime *rt = ref->rt;
	struct run r = {.rt = rt, .ref = ref};
	esr_status st = ESR_ENOMEM;

	if ((rt->cfg.passivate_ms == 0 || (r.rec = esr__epoch_record(rt)) != NULL) &&
	    target(&r, ref->type, &ref->key, NULL) != NULL)
		st = ESR_OK;
	section_end(&r);
	return st;
}

esr_status esr__ref_submit(struct esr_ref *ref, const esr_submission *subs, size_t n,
                           esr_ticket **tickets, esr_ticket_cb cb, size_t *accepted)
{
	return submit_many(ref->rt, ref, NULL, subs, n, tickets, cb, accepted);
}

/* --- queries ------------------------------------------------------------------------ */

/* A query travels as a command whose `command` is the query's ctx and whose
 * ticket carries the read (actor.c runs it instead of a turn). */
esr_status esr_query(esr_runtime *rt, const char *type, const void *id, size_t id_len,
                     esr_query_fn read, void *ctx, esr_ticket **ticket)
{
	esr_submission s = {type, id, id_len, ctx, NULL, {NULL, 0}};

	if (ticket == NULL || read == NULL)
		return ESR_EINVAL;
	return submit_many(rt, NULL, read, &s, 1, ticket, NULL, NULL);
}

esr_status esr_query_cb(esr_runtime *rt, const char *type, const void *id, size_t id_len,
                        esr_query_fn read, void *ctx, esr_ticket_cb done, void *done_ctx)
{
	esr_submission s = {type, id, id_len, ctx, done_ctx, {NULL, 0}};

	if (read == NULL || done == NULL)
		return ESR_EINVAL;
	return submit_many(rt, NULL, read, &s, 1, NULL, done, NULL);
}

esr_status esr_query_execute(esr_runtime *rt, const char *type, const void *id, size_t id_len,
                             esr_query_fn read, void *ctx, esr_result *result)
{
	esr_ticket *t;
	esr_status st;

	if (result)
		memset(result, 0, sizeof *result);
	if ((st = esr_query(rt, type, id, id_len, read, ctx, &t)) != ESR_OK)
		return st;
	return outcome_of(t, result);
}
