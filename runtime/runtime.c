/*
 * runtime/runtime.c: starting and stopping the runtime, and routing submits.
 *
 * Submit. The actor's `pending` count is the mailbox's capacity check and the
 * scheduling token at once: a submitter claims a slot by CAS (never past the
 * capacity, never on a DEAD actor), pushes its ticket, and if its claim moved
 * pending from 0 to 1 it puts the actor on the run queue. A claim made with
 * CAS rather than fetch-and-add never overshoots, so a full mailbox can refuse
 * a command without the count ever claiming a command that is not coming.
 *
 * Stop. `stopping` and `submitting` form a handshake (each side writes its own
 * flag, fences, then reads the other's): once stop has seen no submit in
 * progress, every later submit sees `stopping` and is refused, and every
 * earlier one has counted its command in `outstanding`. Stop then waits for
 * outstanding to reach 0, and only then stops the janitor and the workers.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/internal.h"
#include "runtime/runtime_internal.h"

#define WORKERS_MAX 1024
#define MAILBOX_MAX (1u << 30)

/* --- configuration ---------------------------------------------------------- */

esr_status esr_runtime_config_default(esr_runtime_config *c)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (c == NULL)
		return ESR_EINVAL;
	c->workers = cpus > 0 ? (unsigned)(cpus < WORKERS_MAX ? cpus : WORKERS_MAX) : 1;
	c->strategy = ESR_OPTIMISTIC;
	c->max_retries = ESR_DEFAULT_MAX_RETRIES;
	c->mailbox_capacity = 1024;
	c->overflow = ESR_OVERFLOW_BLOCK;
	c->batch = 64;
	c->passivate_ms = 60000;
	return ESR_OK;
}

esr_status esr_runtime_config_check(const esr_runtime_config *c, const char **field)
{
	const char *bad = NULL;

	if (c == NULL)
		bad = "config";
	else if (c->workers == 0 || c->workers > WORKERS_MAX)
		bad = "workers";
	else if (c->strategy != ESR_OPTIMISTIC && c->strategy != ESR_UNCHECKED)
		bad = "strategy";
	else if (c->mailbox_capacity == 0 || c->mailbox_capacity > MAILBOX_MAX)
		bad = "mailbox_capacity";
	else if (c->overflow != ESR_OVERFLOW_BLOCK && c->overflow != ESR_OVERFLOW_FAIL)
		bad = "overflow";
	else if (c->batch == 0)
		bad = "batch";
	if (field)
		*field = bad;
	return bad ? ESR_EINVAL : ESR_OK;
}

/* A whole decimal number that fits an unsigned. */
static int parse_unsigned(const char *text, unsigned *out)
{
	unsigned long v;
	char *end;

	if (text[0] < '0' || text[0] > '9')
		return 0;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX)
		return 0;
	*out = (unsigned)v;
	return 1;
}

esr_status esr_runtime_config_from_env(esr_runtime_config *config, const char **field)
{
	static const struct {
		const char *name;
		size_t offset;
	} numbers[] = {
		{"ESR_WORKERS", offsetof(esr_runtime_config, workers)},
		{"ESR_MAX_RETRIES", offsetof(esr_runtime_config, max_retries)},
		{"ESR_MAILBOX_CAPACITY", offsetof(esr_runtime_config, mailbox_capacity)},
		{"ESR_BATCH", offsetof(esr_runtime_config, batch)},
		{"ESR_PASSIVATE_MS", offsetof(esr_runtime_config, passivate_ms)},
	};
	esr_runtime_config c;
	const char *v, *bad = NULL;
	size_t i;

	if (field)
		*field = NULL;
	if (esr_runtime_config_default(&c) != ESR_OK)
		return ESR_EINVAL;
	for (i = 0; i < sizeof numbers / sizeof numbers[0] && !bad; i++) {
		v = getenv(numbers[i].name);
		if (v && *v && !parse_unsigned(v, (unsigned *)((char *)&c + numbers[i].offset)))
			bad = numbers[i].name;
	}
	v = getenv("ESR_STRATEGY");
	if (!bad && v && *v && esr_strategy_parse(v, &c.strategy) != ESR_OK)
		bad = "ESR_STRATEGY";
	v = getenv("ESR_OVERFLOW");
	if (!bad && v && *v) {
		if (strcmp(v, "block") == 0)
			c.overflow = ESR_OVERFLOW_BLOCK;
		else if (strcmp(v, "fail") == 0)
			c.overflow = ESR_OVERFLOW_FAIL;
		else
			bad = "ESR_OVERFLOW";
	}
	if (bad || config == NULL) {
		if (field)
			*field = bad;
		return ESR_EINVAL;
	}
	*config = c;
	return ESR_OK;
}

/* --- lifecycle ------------------------------------------------------------------ */

static void free_actor(struct esr__key *k)
{
	esr__actor_free((struct actor *)k);
}

/* Frees what start set up but the handle; every thread is gone. */
static void teardown(esr_runtime *rt)
{
	esr__keyset_destroy(rt->actors, free_actor);
	rt->actors = NULL;
	esr__spares_free(rt);
	esr__epoch_fini(rt);
	esr__types_destroy(&rt->types);
	pthread_mutex_destroy(&rt->rq_lock);
	pthread_cond_destroy(&rt->rq_cond);
	pthread_mutex_destroy(&rt->room_lock);
	pthread_cond_destroy(&rt->room_cond);
	pthread_mutex_destroy(&rt->idle_lock);
	pthread_cond_destroy(&rt->idle_cond);
	pthread_mutex_destroy(&rt->spare_lock);
	rt->stopped = 1;
}

static void destroy(esr_runtime *rt)
{
	teardown(rt);
	free(rt);
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
	                   sizeof *rt + config->workers * sizeof(struct worker)) != 0)
		return ESR_ENOMEM;
	memset(rt, 0, sizeof *rt + config->workers * sizeof(struct worker));
	rt->cfg = *config;
	rt->store = store;
	esr__types_init(&rt->types);
	pthread_mutex_init(&rt->rq_lock, NULL);
	pthread_cond_init(&rt->rq_cond, NULL);
	pthread_mutex_init(&rt->room_lock, NULL);
	pthread_cond_init(&rt->room_cond, NULL);
	pthread_mutex_init(&rt->idle_lock, NULL);
	pthread_cond_init(&rt->idle_cond, NULL);
	pthread_mutex_init(&rt->spare_lock, NULL);
	if ((st = esr__epoch_init(rt)) != ESR_OK) {
		esr__types_destroy(&rt->types);
		free(rt);
		return st;
	}
	if ((st = esr__keyset_create(&rt->actors)) != ESR_OK) {
		destroy(rt);
		return st;
	}
	if ((st = esr__workers_start(rt)) != ESR_OK) {
		destroy(rt);
		return st;
	}
	if ((st = esr__janitor_start(rt)) != ESR_OK) {
		esr__janitor_stop(rt);
		esr__workers_stop(rt);
		destroy(rt);
		return st;
	}
	*out = rt;
	return ESR_OK;
}

esr_status esr_runtime_stop(esr_runtime *rt)
{
	if (rt == NULL || rt->stopped)
		return ESR_OK;
	ck_pr_store_32(&rt->stopping, 1);
	ck_pr_fence_memory();
	pthread_mutex_lock(&rt->room_lock); /* blocked submitters: give up */
	pthread_cond_broadcast(&rt->room_cond);
	pthread_mutex_unlock(&rt->room_lock);
	while (ck_pr_load_32(&rt->submitting) != 0)
		sched_yield();
	ck_pr_fence_acquire();
	ESR_TSAN_ACQUIRE(&rt->submitting);
	pthread_mutex_lock(&rt->idle_lock);
	while (ck_pr_load_64(&rt->outstanding) != 0)
		pthread_cond_wait(&rt->idle_cond, &rt->idle_lock);
	pthread_mutex_unlock(&rt->idle_lock);
	esr__janitor_stop(rt);
	esr__workers_stop(rt);
	teardown(rt);
	return ESR_OK;
}

esr_status esr_runtime_destroy(esr_runtime *rt)
{
	if (rt == NULL)
		return ESR_OK;
	esr_runtime_stop(rt);
	free(rt);
	return ESR_OK;
}

esr_status esr_runtime_register(esr_runtime *rt, const esr_aggregate_type *type)
{
	if (rt == NULL)
		return ESR_EINVAL;
	if (ck_pr_load_32(&rt->stopping))
		return ESR_ESHUTDOWN;
	return esr__types_add(&rt->types, type);
}

/* --- submit ------------------------------------------------------------------------ */

static struct stripe *my_stripe(esr_runtime *rt)
{
	static _Thread_local unsigned slot = UINT32_MAX;
	static unsigned next;

	if (slot == UINT32_MAX)
		slot = ck_pr_faa_uint(&next, 1) % STRIPES;
	return &rt->stripes[slot];
}

enum claim { CLAIMED, FULL, GONE };

/* Take a slot in a's mailbox; *first says the actor must be scheduled. */
static enum claim claim(esr_runtime *rt, struct actor *a, int *first)
{
	uint32_t p;

	for (;;) {
		p = ck_pr_load_32(&a->pending);
		if (p == ACTOR_DEAD)
			return GONE;
		if (p >= rt->cfg.mailbox_capacity)
			return FULL;
		if (ck_pr_cas_32(&a->pending, p, p + 1)) {
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
 * epoch section, so a cannot be freed). The waiter counts itself, fences and
 * re-checks; finish() in actor.c decrements, fences and checks for waiters:
 * one of the two sees the other.
 */
static void wait_for_room(esr_runtime *rt, struct actor *a)
{
	pthread_mutex_lock(&rt->room_lock);
	ck_pr_inc_32(&rt->room_waiters);
	ck_pr_fence_memory();
	while (ck_pr_load_32(&a->pending) >= rt->cfg.mailbox_capacity &&
	       ck_pr_load_32(&a->pending) != ACTOR_DEAD && !ck_pr_load_32(&rt->stopping))
		pthread_cond_wait(&rt->room_cond, &rt->room_lock);
	ck_pr_dec_32(&rt->room_waiters);
	pthread_mutex_unlock(&rt->room_lock);
}

static struct actor *find_or_activate(esr_runtime *rt, const esr_aggregate_type *type,
                                      const struct esr__key *k)
{
	struct actor *a = (struct actor *)esr__keyset_get(rt->actors, k), *fresh;

	if (a != NULL)
		return a;
	if ((fresh = esr__actor_new(rt, type, k)) == NULL)
		return NULL;
	a = (struct actor *)esr__keyset_insert(rt->actors, &fresh->key);
	if (a == fresh)
		ck_pr_inc_64(&my_stripe(rt)->created);
	else
		esr__actor_free(fresh); /* another submitter activated it first */
	return a;
}

/*
 * Epoch sections guard lookups against the janitor's frees. Without
 * passivation no actor is freed before stop, which waits for every submit, so
 * the sections (an atomic exchange and fences each) are skipped: rec is NULL.
 */
static void section_begin(ck_epoch_record_t *rec)
{
	if (rec != NULL)
		ck_epoch_begin(rec, NULL);
}

static void section_end(esr_runtime *rt, ck_epoch_record_t *rec)
{
	if (rec != NULL) {
		ESR_TSAN_RELEASE(&rt->epoch);
		ck_epoch_end(rec, NULL);
	}
}

/* Find or activate the actor, claim a slot, enqueue t. */
static esr_status route(esr_runtime *rt, const esr_aggregate_type *type,
                        const void *id, size_t id_len, esr_ticket *t)
{
	ck_epoch_record_t *rec = NULL;
	struct actor *a;
	struct esr__key k;
	enum claim c;
	int first = 0;

	if (rt->cfg.passivate_ms != 0 && (rec = esr__epoch_record(rt)) == NULL)
		return ESR_ENOMEM;
	esr__keyset_key(rt->actors, type->name, id, id_len, &k);
	for (;;) {
		section_begin(rec);
		if ((a = find_or_activate(rt, type, &k)) == NULL) {
			section_end(rt, rec);
			return ESR_ENOMEM;
		}
		c = claim(rt, a, &first);
		if (c == FULL) {
			ck_pr_inc_64(&my_stripe(rt)->mailbox_full);
			if (rt->cfg.overflow == ESR_OVERFLOW_BLOCK && !ck_pr_load_32(&rt->stopping))
				wait_for_room(rt, a);
		}
		section_end(rt, rec);
		if (c == CLAIMED)
			break;
		if (c == FULL && (rt->cfg.overflow == ESR_OVERFLOW_FAIL ||
		                  ck_pr_load_32(&rt->stopping)))
			return rt->cfg.overflow == ESR_OVERFLOW_FAIL ? ESR_EBUSY : ESR_ESHUTDOWN;
		if (c == GONE)
			sched_yield(); /* the janitor is removing it; look again */
	}
	/* A claimed slot keeps the actor alive: no epoch section needed now. */
	ck_pr_inc_64(&rt->outstanding);
	ck_pr_inc_64(&my_stripe(rt)->submitted);
	esr__mpsc_push(&a->mailbox, &t->node);
	if (first)
		esr__runq_push(rt, a);
	return ESR_OK;
}

/*
 * Open a submit window: count ourselves in `submitting`, fence, then check
 * `stopping` (stop does the mirror image). While the window is open the
 * registry, the types and the workers stay alive. A batch opens one window
 * for all its commands, which is most of what batching saves.
 */
static int window_open(esr_runtime *rt)
{
	ck_pr_inc_32(&rt->submitting);
	ck_pr_fence_memory();
	return !ck_pr_load_32(&rt->stopping);
}

static void window_close(esr_runtime *rt)
{
	/* Release: stop frees what this window used once it sees the count at 0. */
	ck_pr_fence_release();
	ESR_TSAN_RELEASE(&rt->submitting);
	ck_pr_dec_32(&rt->submitting);
}

/* The last type a batch looked up, by the caller's name pointer. */
struct type_cache {
	const char *name;
	const esr_aggregate_type *def;
};

/* Within an open window: one command. */
static esr_status submit_one(esr_runtime *rt, const char *type, const void *id,
                             size_t id_len, const void *command, esr_ticket_cb cb,
                             void *ctx, esr_ticket **out, struct type_cache *tc)
{
	esr_ticket *t;
	esr_status st;

	if (command == NULL)
		return ESR_EINVAL;
	if ((st = esr__check_id(id, id_len)) != ESR_OK)
		return st;
	if (tc->def == NULL || tc->name != type) {
		tc->def = NULL;
		if ((st = esr__types_find(&rt->types, type, &tc->def)) != ESR_OK)
			return st; /* refused before any actor is touched */
		tc->name = type;
	}
	if ((t = esr__ticket_new(command, cb, ctx)) == NULL)
		return ESR_ENOMEM;
	if ((st = route(rt, tc->def, id, id_len, t)) != ESR_OK) {
		esr__ticket_discard(t);
		return st;
	}
	if (out != NULL)
		*out = t;
	return ESR_OK;
}

static esr_status submit(esr_runtime *rt, const char *type, const void *id,
                         size_t id_len, const void *command, esr_ticket_cb cb,
                         void *ctx, esr_ticket **out)
{
	struct type_cache tc = {NULL, NULL};
	esr_status st;

	if (rt == NULL)
		return ESR_EINVAL;
	if (window_open(rt))
		st = submit_one(rt, type, id, id_len, command, cb, ctx, out, &tc);
	else
		st = ESR_ESHUTDOWN; /* the registry may be gone: touch nothing */
	window_close(rt);
	return st;
}

esr_status esr_submit(esr_runtime *rt, const char *type, const void *id, size_t id_len,
                      const void *command, esr_ticket **ticket)
{
	if (ticket == NULL)
		return ESR_EINVAL;
	return submit(rt, type, id, id_len, command, NULL, NULL, ticket);
}

esr_status esr_submit_cb(esr_runtime *rt, const char *type, const void *id,
                         size_t id_len, const void *command, esr_ticket_cb done,
                         void *ctx)
{
	if (done == NULL)
		return ESR_EINVAL;
	return submit(rt, type, id, id_len, command, done, ctx, NULL);
}

/* Both batch forms: tickets != NULL gives tickets, else done(subs[i].ctx). */
static esr_status submit_many(esr_runtime *rt, const esr_submission *subs, size_t n,
                              esr_ticket **tickets, esr_ticket_cb done, size_t *accepted)
{
	struct type_cache tc = {NULL, NULL};
	esr_status st = ESR_OK;
	int opened = 0;
	size_t i = 0;

	if (rt == NULL || (subs == NULL && n > 0)) {
		st = ESR_EINVAL;
	} else if (n > 0) {
		opened = 1; /* closed below whatever the window said */
		if (!window_open(rt))
			st = ESR_ESHUTDOWN;
	}
	for (; st == ESR_OK && i < n; i++) {
		st = submit_one(rt, subs[i].type, subs[i].id, subs[i].id_len, subs[i].command,
		                done, subs[i].ctx, tickets ? &tickets[i] : NULL, &tc);
		if (st != ESR_OK)
			break;
	}
	if (opened)
		window_close(rt);
	if (accepted)
		*accepted = i;
	return st;
}

esr_status esr_submit_many(esr_runtime *rt, const esr_submission *subs, size_t n,
                           esr_ticket **tickets, size_t *accepted)
{
	if (tickets == NULL) {
		if (accepted)
			*accepted = 0;
		return ESR_EINVAL;
	}
	return submit_many(rt, subs, n, tickets, NULL, accepted);
}

esr_status esr_submit_many_cb(esr_runtime *rt, const esr_submission *subs, size_t n,
                              esr_ticket_cb done, size_t *accepted)
{
	if (done == NULL) {
		if (accepted)
			*accepted = 0;
		return ESR_EINVAL;
	}
	return submit_many(rt, subs, n, NULL, done, accepted);
}

esr_status esr_execute(esr_runtime *rt, const char *type, const void *id,
                       size_t id_len, const void *command, esr_result *result)
{
	esr_ticket *t;
	esr_status st, outcome;

	if (result)
		memset(result, 0, sizeof *result);
	if ((st = esr_submit(rt, type, id, id_len, command, &t)) != ESR_OK)
		return st;
	esr_ticket_wait(t, -1);
	esr_ticket_result(t, &outcome, result);
	esr_ticket_release(t);
	return outcome;
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
		struct worker_counters *c = &rt->workers[i].c;
		s->completed += ck_pr_load_64(&c->completed);
		s->rejected += ck_pr_load_64(&c->rejected);
		s->conflicts += ck_pr_load_64(&c->conflicts);
		s->retries += ck_pr_load_64(&c->retries);
		s->exhausted += ck_pr_load_64(&c->exhausted);
		s->activations += ck_pr_load_64(&c->activations);
	}
	for (i = 0; i < STRIPES; i++) {
		s->submitted += ck_pr_load_64(&rt->stripes[i].submitted);
		s->mailbox_full += ck_pr_load_64(&rt->stripes[i].mailbox_full);
		s->live_actors += ck_pr_load_64(&rt->stripes[i].created);
	}
	s->passivations = ck_pr_load_64(&rt->passivations);
	s->live_actors -= s->passivations;
	return ESR_OK;
}
