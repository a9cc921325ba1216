/*
 * tests/runtime/test_ref.c: references to aggregates (esr/ref.h).
 *  - one thread mixing submits through a reference and by name keeps its
 *    order, and every way in (submit, _cb, _many, execute) reaches the same
 *    aggregate;
 *  - bad input: NULL references and arguments, ids too long, unknown types;
 *  - a reference outlives its actor's passivation (the next submit activates
 *    it again from the store), the runtime's stop (ESR_ESHUTDOWN) and even
 *    its destroy (closed after it);
 *  - passivation racing references: threads submit through references (and
 *    reopen them) while the janitor evicts their actors between bursts;
 *    every command is stored once, each thread's in its order.
 * Every wait is bounded. ESR_STRESS_COMMANDS overrides the commands per
 * thread of the racing test (default 2000).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "esr/esr.h"

enum { THREADS = 4, AGGREGATES = 8 };

/* --- the aggregate: steps checked against each submitter's order --------------- */

enum { STEPPED = 1, OUT_OF_ORDER = 1 };

struct step {
	uint32_t submitter, seq; /* seq 0: read, emits nothing */
};

struct steps_state {
	uint32_t last[THREADS + 1];
	uint64_t steps;
};

static void steps_apply(void *state, const esr_event *ev)
{
	struct steps_state *s = state;
	struct step e;

	memcpy(&e, ev->payload, sizeof e);
	if (e.submitter <= THREADS)
		s->last[e.submitter] = e.seq;
	s->steps++;
}

static int steps_handle(const void *state, const void *command, esr_emitter *em)
{
	const struct steps_state *s = state;
	const struct step *c = command;

	if (c->seq == 0)
		return 0;
	if (c->submitter > THREADS || c->seq <= s->last[c->submitter])
		return OUT_OF_ORDER;
	return esr_emit(em, STEPPED, c, sizeof *c) == ESR_OK ? 0 : -1;
}

static const esr_aggregate_type steps_type = {
	.name = "Steps",
	.state_size = sizeof(struct steps_state),
	.apply = steps_apply,
	.handle = steps_handle,
};

static esr_runtime *start(esr_store *store, unsigned workers, unsigned passivate_ms)
{
	esr_runtime_config c;
	esr_runtime *rt;

	esr_runtime_config_default(&c);
	c.workers = workers;
	c.passivate_ms = passivate_ms;
	assert_int_equal(esr_runtime_start(&c, store, &rt), ESR_OK);
	assert_int_equal(esr_runtime_register(rt, &steps_type), ESR_OK);
	return rt;
}

static esr_store *memory_store(void)
{
	esr_store *s;

	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	return s;
}

static uint64_t stream_version(esr_store *s, const char *id)
{
	esr_stream_id sid = {steps_type.name, id, strlen(id)};
	uint64_t v = 0;

	assert_int_equal(esr_store_version(s, &sid, &v), ESR_OK);
	return v;
}

static void read_steps(esr_runtime *rt, const char *id, uint64_t *version)
{
	struct step read = {0, 0};
	esr_result r;

	assert_int_equal(esr_execute(rt, steps_type.name, id, strlen(id), &read, &r), ESR_OK);
	*version = r.version;
}

/* --- 1. every way in, one order ------------------------------------------------------ */

static unsigned cb_calls;
static esr_status cb_status;

static void count_cb(void *ctx, esr_status st, const esr_result *r)
{
	(void)r;
	assert_ptr_equal(ctx, &cb_calls);
	cb_status = st;
	__atomic_add_fetch(&cb_calls, 1, __ATOMIC_RELEASE);
}

static void every_way_in(void **state)
{
	esr_store *s = memory_store();
	esr_runtime *rt = start(s, 2, 0);
	struct step c[40];
	const void *many[10];
	esr_ticket *t[40];
	esr_status st;
	esr_result r;
	esr_ref *ref;
	uint32_t seq = 0;
	size_t accepted = 0;
	unsigned i, spins;

	(void)state;
	assert_int_equal(esr_ref_open(rt, "Steps", "a", 1, &ref), ESR_OK);
	/* Through the reference and by name, alternately: one mailbox, one order
	 * (the handler refuses a step that overtakes an earlier one). */
	for (i = 0; i < 20; i++) {
		c[i] = (struct step){1, ++seq};
		if (i % 2 == 0)
			assert_int_equal(esr_ref_submit(ref, &c[i], &t[i]), ESR_OK);
		else
			assert_int_equal(esr_submit(rt, "Steps", "a", 1, &c[i], &t[i]), ESR_OK);
	}
	for (i = 0; i < 10; i++) {
		c[20 + i] = (struct step){1, ++seq};
		many[i] = &c[20 + i];
	}
	assert_int_equal(esr_ref_submit_many(ref, many, 10, &t[20], &accepted), ESR_OK);
	assert_int_equal(accepted, 10);
	for (i = 0; i < 30; i++) {
		assert_int_equal(esr_ticket_wait(t[i], 10000), ESR_OK);
		assert_int_equal(esr_ticket_result(t[i], &st, &r), ESR_OK);
		assert_int_equal(st, ESR_OK);
		assert_int_equal(r.version, i + 1);
		esr_ticket_release(t[i]);
	}
	c[30] = (struct step){1, ++seq};
	assert_int_equal(esr_ref_submit_cb(ref, &c[30], count_cb, &cb_calls), ESR_OK);
	for (spins = 0; __atomic_load_n(&cb_calls, __ATOMIC_ACQUIRE) == 0 && spins < 10000; spins++)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	assert_int_equal(cb_calls, 1);
	assert_int_equal(cb_status, ESR_OK);
	c[31] = (struct step){1, ++seq};
	assert_int_equal(esr_ref_execute(ref, &c[31], &r), ESR_OK);
	assert_int_equal(r.version, 32);
	c[32] = (struct step){1, 1}; /* overtaken: refused, through the reference too */
	assert_int_equal(esr_ref_execute(ref, &c[32], &r), ESR_EREJECTED);
	assert_int_equal(r.rejection, OUT_OF_ORDER);
	assert_int_equal(stream_version(s, "a"), 32);
	assert_int_equal(esr_ref_close(ref), ESR_OK);
	assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
	esr_store_close(s);
}

/* --- 2. bad input ------------------------------------------------------------------- */

static void bad_input(void **state)
{
	esr_store *s = memory_store();
	esr_runtime *rt = start(s, 1, 0);
	char long_id[ESR_ID_MAX + 1];
	struct step c = {1, 1};
	const void *many[1] = {&c};
	esr_ref *ref = NULL;
	esr_ticket *t;
	esr_result r;
	size_t accepted = 7;

	(void)state;
	memset(long_id, 'x', sizeof long_id);
	assert_int_equal(esr_ref_open(NULL, "Steps", "a", 1, &ref), ESR_EINVAL);
	assert_int_equal(esr_ref_open(rt, "Steps", "a", 1, NULL), ESR_EINVAL);
	assert_int_equal(esr_ref_open(rt, "Steps", NULL, 1, &ref), ESR_EINVAL);
	assert_int_equal(esr_ref_open(rt, "Steps", "a", 0, &ref), ESR_EINVAL);
	assert_int_equal(esr_ref_open(rt, "Steps", long_id, sizeof long_id, &ref), ESR_ETOOBIG);
	assert_int_equal(esr_ref_open(rt, "Nope", "a", 1, &ref), ESR_ENOTYPE);
	assert_int_equal(esr_ref_open(rt, NULL, "a", 1, &ref), ESR_EINVAL);
	assert_null(ref); /* untouched by every refusal */
	assert_int_equal(esr_ref_submit(NULL, &c, &t), ESR_EINVAL);
	assert_int_equal(esr_ref_submit_cb(NULL, &c, count_cb, NULL), ESR_EINVAL);
	assert_int_equal(esr_ref_submit_many(NULL, many, 1, &t, &accepted), ESR_EINVAL);
	assert_int_equal(accepted, 0);
	assert_int_equal(esr_ref_execute(NULL, &c, &r), ESR_EINVAL);
	assert_int_equal(esr_ref_close(NULL), ESR_OK);

	assert_int_equal(esr_ref_open(rt, "Steps", "a", 1, &ref), ESR_OK);
	assert_int_equal(esr_ref_submit(ref, &c, NULL), ESR_EINVAL);
	assert_int_equal(esr_ref_submit_cb(ref, &c, NULL, NULL), ESR_EINVAL);
	assert_int_equal(esr_ref_submit_many(ref, many, 1, NULL, &accepted), ESR_EINVAL);
	assert_int_equal(esr_ref_submit_many(ref, NULL, 1, &t, &accepted), ESR_EINVAL);
	assert_int_equal(esr_ref_submit_many(ref, NULL, 0, &t, &accepted), ESR_OK);
	assert_int_equal(accepted, 0);
	assert_int_equal(stream_version(s, "a"), 0); /* nothing refused was stored */
	assert_int_equal(esr_ref_close(ref), ESR_OK);
	assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
	esr_store_close(s);
}

/* --- 3. a reference outlives passivation, stop and destroy ---------------------------- */

static void wait_passivations(esr_runtime *rt, uint64_t at_least)
{
	esr_runtime_stats st;
	unsigned i;

	for (i = 0; i < 5000; i++) { /* 5 s at most */
		assert_int_equal(esr_runtime_stats_get(rt, &st), ESR_OK);
		if (st.passivations >= at_least)
			return;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	fail_msg("no passivation within 5 s");
}

static esr_status bounded_execute(esr_ref *ref, const struct step *c, esr_result *r)
{
	esr_ticket *t;
	esr_status st;

	assert_int_equal(esr_ref_submit(ref, c, &t), ESR_OK);
	assert_int_equal(esr_ticket_wait(t, 10000), ESR_OK);
	assert_int_equal(esr_ticket_result(t, &st, r), ESR_OK);
	esr_ticket_release(t);
	return st;
}

static void survives_passivation(void **state)
{
	esr_store *s = memory_store();
	esr_runtime *rt = start(s, 2, 20);
	esr_runtime_stats st;
	struct step c;
	esr_result r;
	esr_ref *ref;
	uint32_t i;

	(void)state;
	assert_int_equal(esr_ref_open(rt, "Steps", "p", 1, &ref), ESR_OK);
	for (i = 1; i <= 10; i++) {
		c = (struct step){2, i};
		assert_int_equal(esr_ref_execute(ref, &c, &r), ESR_OK);
	}
	wait_passivations(rt, 1);
	/* The actor the reference held is evicted; its next submit activates the
	 * aggregate again from the store, so the order check still holds and the
	 * version goes on from 10. Bounded waits: a command lost to a freed
	 * actor fails the test rather than hanging it. */
	c = (struct step){2, 5};
	assert_int_equal(bounded_execute(ref, &c, &r), ESR_EREJECTED);
	for (i = 11; i <= 15; i++) {
		c = (struct step){2, i};
		assert_int_equal(bounded_execute(ref, &c, &r), ESR_OK);
		assert_int_equal(r.version, i);
	}
	assert_int_equal(esr_runtime_stats_get(rt, &st), ESR_OK);
	assert_true(st.activations >= 2);
	assert_int_equal(esr_ref_close(ref), ESR_OK);
	assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
	assert_int_equal(stream_version(s, "p"), 15);
	esr_store_close(s);
}

static void survives_stop_and_destroy(void **state)
{
	esr_store *s = memory_store();
	esr_runtime *rt = start(s, 2, 0);
	struct step c = {1, 1};
	esr_ref *before, *after_stop;
	esr_ticket *t = NULL;
	esr_result r;

	(void)state;
	assert_int_equal(esr_ref_open(rt, "Steps", "s", 1, &before), ESR_OK);
	assert_int_equal(esr_ref_open(rt, "Steps", "s", 1, &after_stop), ESR_OK);
	assert_int_equal(esr_ref_submit(before, &c, &t), ESR_OK);
	assert_int_equal(esr_runtime_stop(rt), ESR_OK); /* drains: the command is stored */
	assert_int_equal(stream_version(s, "s"), 1);
	assert_int_equal(esr_ticket_wait(t, 0), ESR_OK);
	esr_ticket_release(t);
	c.seq = 2;
	assert_int_equal(esr_ref_submit(before, &c, &t), ESR_ESHUTDOWN);
	assert_int_equal(esr_ref_execute(before, &c, &r), ESR_ESHUTDOWN);
	assert_int_equal(esr_ref_open(rt, "Steps", "s", 1, &before), ESR_ESHUTDOWN);
	assert_int_equal(esr_ref_close(before), ESR_OK);
	/* Destroyed with a reference open: the handle lives on for it, refusing. */
	assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
	assert_int_equal(esr_ref_submit(after_stop, &c, &t), ESR_ESHUTDOWN);
	assert_int_equal(esr_ref_close(after_stop), ESR_OK); /* frees the handle */
	assert_int_equal(stream_version(s, "s"), 1);
	esr_store_close(s);
}

/* --- 4. passivation racing references -------------------------------------------------- */

static unsigned commands = 2000;

struct racer {
	esr_runtime *rt;
	uint32_t submitter; /* 1..THREADS */
	uint64_t sent[AGGREGATES];
	unsigned failures;
};

static const char *agg_id(unsigned i)
{
	static const char *ids[AGGREGATES] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"};
	return ids[i];
}

/*
 * Bursts of steps through references, a few milliseconds apart (past the
 * passivation time, so the actors go idle and are evicted between bursts);
 * every fourth burst closes and reopens the references.
 */
static void *race(void *arg)
{
	struct racer *me = arg;
	struct step *c = calloc(commands, sizeof *c);
	esr_ticket **t = calloc(commands, sizeof *t);
	esr_ref *refs[AGGREGATES];
	uint32_t seq = 0;
	unsigned i, n = 0, burst = 0, a, k;
	esr_status st;

	assert_non_null(c);
	assert_non_null(t);
	for (a = 0; a < AGGREGATES; a++)
		if (esr_ref_open(me->rt, "Steps", agg_id(a), 2, &refs[a]) != ESR_OK)
			me->failures++;
	while (n < commands && me->failures == 0) {
		for (k = 0; k < 50 && n < commands; k++, n++) {
			a = (n * 7 + me->submitter) % AGGREGATES;
			c[n] = (struct step){me->submitter, ++seq};
			if (esr_ref_submit(refs[a], &c[n], &t[n]) != ESR_OK) {
				me->failures++;
				t[n] = NULL;
				break;
			}
			me->sent[a]++;
		}
		nanosleep(&(struct timespec){0, (long)(1 + burst % 3) * 1000000L}, NULL);
		if (++burst % 4 == 0)
			for (a = 0; a < AGGREGATES; a++) {
				esr_ref_close(refs[a]);
				if (esr_ref_open(me->rt, "Steps", agg_id(a), 2, &refs[a]) != ESR_OK)
					me->failures++;
			}
	}
	for (i = 0; i < n; i++) {
		if (t[i] == NULL)
			continue;
		if (esr_ticket_wait(t[i], 30000) != ESR_OK ||
		    esr_ticket_result(t[i], &st, NULL) != ESR_OK || st != ESR_OK)
			me->failures++;
		esr_ticket_release(t[i]);
	}
	for (a = 0; a < AGGREGATES; a++)
		esr_ref_close(refs[a]);
	free(c);
	free(t);
	return NULL;
}

static void passivation_racing_refs(void **state)
{
	esr_store *s = memory_store();
	esr_runtime *rt = start(s, 2, 1);
	struct racer r[THREADS];
	pthread_t th[THREADS];
	esr_runtime_stats st;
	uint64_t want, v;
	unsigned i, a;

	(void)state;
	memset(r, 0, sizeof r);
	for (i = 0; i < THREADS; i++) {
		r[i].rt = rt;
		r[i].submitter = i + 1;
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < THREADS; i++)
		assert_int_equal(r[i].failures, 0);
	for (a = 0; a < AGGREGATES; a++) {
		for (want = 0, i = 0; i < THREADS; i++)
			want += r[i].sent[a];
		read_steps(rt, agg_id(a), &v);
		assert_int_equal(v, want);
		assert_int_equal(stream_version(s, agg_id(a)), want);
	}
	assert_int_equal(esr_runtime_stats_get(rt, &st), ESR_OK);
	print_message("refs: %u threads x %u commands, %llu activations, %llu passivations\n",
	              THREADS, commands, (unsigned long long)st.activations,
	              (unsigned long long)st.passivations);
	assert_true(st.passivations > 0);
	assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
	esr_store_close(s);
}

int main(void)
{
	const char *env = getenv("ESR_STRESS_COMMANDS");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_way_in),
		cmocka_unit_test(bad_input),
		cmocka_unit_test(survives_passivation),
		cmocka_unit_test(survives_stop_and_destroy),
		cmocka_unit_test(passivation_racing_refs),
	};

	if (env != NULL && atoi(env) > 0)
		commands = (unsigned)atoi(env);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
