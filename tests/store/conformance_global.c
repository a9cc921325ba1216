/*
 * tests/store/conformance_global.c: the store conformance suite's section on the
 * global order (positions, global reads, head, wait), subscriptions,
 * checkpoints and snapshots. Run against every backend with the rest of the
 * suite (store_conformance.c).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
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

#include "store_conformance.h"

static esr_stream_id sid_of(const char *type, const char *id)
{
	return (esr_stream_id){.type = type, .id = id, .id_len = strlen(id)};
}

/* Append one event of type `type` whose payload is `type` as 4 bytes. */
static esr_append_result put(esr_store *s, const esr_stream_id *sid, uint32_t type)
{
	esr_event ev = {.type = type, .payload = &type, .payload_len = sizeof type};
	esr_append_result r;

	assert_int_equal(esr_store_append(s, sid, ESR_VERSION_ANY, &ev, 1, &r), ESR_OK);
	return r;
}

/* What a global read saw, one entry per event. */
struct seen {
	uint64_t position, version;
	uint32_t type;
	char stream[80];
};

struct log {
	struct seen *e;
	size_t n, cap;
};

static void log_add(struct log *l, const esr_recorded_event *ev)
{
	struct seen *e;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->e = realloc(l->e, l->cap * sizeof *l->e);
		if (l->e == NULL)
			abort();
	}
	e = &l->e[l->n++];
	memset(e, 0, sizeof *e); /* compared whole, padding included */
	e->position = ev->position;
	e->version = ev->version;
	e->type = ev->event.type;
	snprintf(e->stream, sizeof e->stream, "%s/%.*s", ev->stream.type,
	         (int)ev->stream.id_len, (const char *)ev->stream.id);
}

static esr_status logged(void *ctx, const esr_recorded_event *ev)
{
	log_add(ctx, ev);
	return ESR_OK;
}

/* Read everything from `from` in pages of `page`; returns where it ended. */
static uint64_t read_pages(esr_store *s, uint64_t from, size_t page, struct log *l)
{
	uint64_t next = from, at;

	do {
		at = next;
		assert_int_equal(esr_store_read_all(s, at, page, logged, l, &next), ESR_OK);
		assert_true(next >= at && next - at <= page);
	} while (next != at);
	return next;
}

/*
 * The promises of a global read over everything: positions are 1.. without a
 * gap (every backend here gives gapless positions), each stream's versions
 * run 1, 2, ... in position order.
 */
static void check_order(const struct log *l, uint64_t first)
{
	size_t i, j;

	for (i = 0; i < l->n; i++) {
		assert_int_equal(l->e[i].position, first + i);
		for (j = i; j-- > 0;)
			if (strcmp(l->e[j].stream, l->e[i].stream) == 0)
				break;
		if (j != (size_t)-1)
			assert_int_equal(l->e[i].version, l->e[j].version + 1);
	}
}

/* --- positions ------------------------------------------------------------ */

static void positions_are_gapless_and_follow_appends(void **state)
{
	esr_store *s = *state;
	esr_stream_id a = sid_of("Acct", "a"), b = sid_of("Acct", "b"), c = sid_of("Order", "a");
	uint32_t types[4] = {1, 2, 3, 4};
	esr_event batch[4];
	esr_append_result r;
	struct log l = {0};
	uint64_t head = 99, next;
	size_t i;

	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, 0);
	assert_int_equal(esr_store_read_all(s, 1, 10, logged, &l, &next), ESR_OK);
	assert_int_equal(l.n, 0);
	assert_int_equal(next, 1);
	assert_int_equal(put(s, &a, 10).position, 1);
	assert_int_equal(put(s, &b, 20).position, 2);
	for (i = 0; i < 4; i++)
		batch[i] = (esr_event){.type = types[i], .payload = &types[i], .payload_len = 4};
	assert_int_equal(esr_store_append(s, &c, 0, batch, 4, &r), ESR_OK);
	assert_int_equal(r.position, 3); /* the batch's first event */
	assert_int_equal(put(s, &a, 11).position, 7);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, 7);

	assert_int_equal(read_pages(s, 0, 1000, &l), 8);
	assert_int_equal(l.n, 7);
	check_order(&l, 1);
	assert_string_equal(l.e[0].stream, "Acct/a");
	assert_string_equal(l.e[1].stream, "Acct/b");
	assert_string_equal(l.e[2].stream, "Order/a");
	assert_string_equal(l.e[6].stream, "Acct/a");
	assert_int_equal(l.e[6].version, 2);
	assert_int_equal(l.e[6].type, 11);
	for (i = 0; i < 4; i++)
		assert_int_equal(l.e[2 + i].type, types[i]);
	free(l.e);
}

static esr_status position_of(void *ctx, const esr_recorded_event *ev)
{
	*(uint64_t *)ctx = ev->position;
	return ESR_OK;
}

static void stream_reads_carry_the_same_positions(void **state)
{
	esr_store *s = *state;
	esr_stream_id a = sid_of("Acct", "a"), b = sid_of("Acct", "b");
	uint64_t pos = 0;

	put(s, &a, 1);
	put(s, &b, 2);
	put(s, &a, 3);
	assert_int_equal(esr_store_read(s, &a, 2, position_of, &pos), ESR_OK);
	assert_int_equal(pos, 3);
	assert_int_equal(esr_store_read(s, &b, 1, position_of, &pos), ESR_OK);
	assert_int_equal(pos, 2);
}

static void global_reads_page_and_start_anywhere(void **state)
{
	esr_store *s = *state;
	struct log whole = {0}, paged = {0}, tail = {0};
	char id[16];
	uint64_t next;
	int i;

	for (i = 0; i < 300; i++) {
		snprintf(id, sizeof id, "s%d", i % 7);
		esr_stream_id sid = sid_of("Acct", id);
		put(s, &sid, (uint32_t)i);
	}
	assert_int_equal(read_pages(s, 1, ESR_READ_ALL_MAX, &whole), 301);
	assert_int_equal(read_pages(s, 1, 7, &paged), 301);
	assert_int_equal(read_pages(s, 250, 16, &tail), 301);
	assert_int_equal(whole.n, 300);
	assert_int_equal(paged.n, 300);
	assert_int_equal(tail.n, 51);
	check_order(&whole, 1);
	assert_memory_equal(whole.e, paged.e, 300 * sizeof *whole.e);
	assert_memory_equal(&whole.e[249], tail.e, 51 * sizeof *tail.e);
	for (i = 0; i < 300; i++)
		assert_int_equal(whole.e[i].type, (uint32_t)i);
	/* beyond the head: nothing, and next stays */
	assert_int_equal(esr_store_read_all(s, 302, 5, logged, &tail, &next), ESR_OK);
	assert_int_equal(next, 302);
	assert_int_equal(tail.n, 51);
	free(whole.e);
	free(paged.e);
	free(tail.e);
}

static esr_status stop_at_third(void *ctx, const esr_recorded_event *ev)
{
	(void)ev;
	return ++*(int *)ctx == 3 ? ESR_ECANCELED : ESR_OK;
}

static void global_read_arguments_are_checked(void **state)
{
	esr_store *s = *state;
	esr_stream_id a = sid_of("Acct", "a");
	uint64_t next = 0;
	int calls = 0;

	assert_int_equal(esr_store_read_all(NULL, 1, 1, logged, NULL, &next), ESR_EINVAL);
	assert_int_equal(esr_store_read_all(s, 1, 0, logged, NULL, &next), ESR_EINVAL);
	assert_int_equal(esr_store_read_all(s, 1, 1, NULL, NULL, &next), ESR_EINVAL);
	assert_int_equal(esr_store_read_all(s, 1, 1, logged, NULL, NULL), ESR_EINVAL);
	assert_int_equal(esr_store_read_all(s, 1, ESR_READ_ALL_MAX + 1, logged, NULL, &next),
	                 ESR_ETOOBIG);
	assert_int_equal(esr_store_head(s, NULL), ESR_EINVAL);
	put(s, &a, 1);
	put(s, &a, 2);
	put(s, &a, 3);
	put(s, &a, 4);
	/* a visitor that stops: its status, and next is past what it accepted */
	assert_int_equal(esr_store_read_all(s, 1, 10, stop_at_third, &calls, &next),
	                 ESR_ECANCELED);
	assert_int_equal(next, 3);
}

/* --- wait -------------------------------------------------------------------- */

struct later {
	esr_store *s;
	unsigned delay_ms;
	int events;
};

static void *append_later(void *arg)
{
	struct later *w = arg;
	esr_stream_id sid = sid_of("Acct", "later");
	struct timespec d = {0, (long)w->delay_ms * 1000000L};
	int i;

	for (i = 0; i < w->events; i++) {
		esr_event ev = {.type = (uint32_t)i};
		nanosleep(&d, NULL);
		THREAD_CHECK(esr_store_append(w->s, &sid, ESR_VERSION_ANY, &ev, 1, NULL) ==
		             ESR_OK);
	}
	return NULL;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void wait_returns_when_the_head_moves(void **state)
{
	esr_store *s = *state;
	struct later w = {s, 50, 1};
	uint64_t t0, head = 0;
	pthread_t t;

	t0 = now_ms();
	assert_int_equal(esr_store_wait(s, 0, 100), ESR_OK); /* nothing comes */
	assert_true(now_ms() - t0 >= 90);
	assert_int_equal(pthread_create(&t, NULL, append_later, &w), 0);
	t0 = now_ms();
	while (head == 0 && now_ms() - t0 < 20000) {
		assert_int_equal(esr_store_wait(s, 0, 20000), ESR_OK);
		assert_int_equal(esr_store_head(s, &head), ESR_OK);
	}
	assert_int_equal(head, 1);
	assert_true(now_ms() - t0 < 15000); /* woken, not timed out */
	pthread_join(t, NULL);
	assert_int_equal(conformance_thread_failures, 0);
}

/* --- subscriptions ------------------------------------------------------------- */

struct feed {
	pthread_mutex_t lock;
	struct log log;
	uint32_t fail_type;   /* the handler fails on this event type (0: never) */
	esr_status fail_with; /* ... with this status */
	int failures;         /* times the handler failed */
	int gate_closed;      /* the handler blocks while set */
	pthread_cond_t gate;
};

static void feed_init(struct feed *f)
{
	memset(f, 0, sizeof *f);
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->gate, NULL);
}

static void feed_fini(struct feed *f)
{
	free(f->log.e);
	pthread_cond_destroy(&f->gate);
	pthread_mutex_destroy(&f->lock);
}

static esr_status on_event(void *ctx, const esr_recorded_event *ev)
{
	struct feed *f = ctx;

	pthread_mutex_lock(&f->lock);
	while (f->gate_closed)
		pthread_cond_wait(&f->gate, &f->lock);
	if (f->fail_type != 0 && ev->event.type == f->fail_type) {
		f->failures++;
		pthread_mutex_unlock(&f->lock);
		return f->fail_with;
	}
	log_add(&f->log, ev);
	pthread_mutex_unlock(&f->lock);
	return ESR_OK;
}

struct writer {
	esr_store *s;
	int id, n;
};

/* n appends of 1..3 events, to the writer's own stream and a shared one. */
static void *write_mixed(void *arg)
{
	struct writer *w = arg;
	char own[16];
	int i;

	snprintf(own, sizeof own, "w%d", w->id);
	esr_stream_id mine = sid_of("Acct", own), shared = sid_of("Acct", "shared");
	for (i = 0; i < w->n; i++) {
		uint32_t t[3] = {1, 2, 3};
		esr_event ev[3] = {{.type = t[0]}, {.type = t[1]}, {.type = t[2]}};
		THREAD_CHECK(esr_store_append(w->s, i % 4 == 0 ? &shared : &mine,
		                              ESR_VERSION_ANY, ev, (size_t)(i % 3) + 1,
		                              NULL) == ESR_OK);
	}
	return NULL;
}

static void subscription_hands_over_from_catch_up_to_live(void **state)
{
	esr_store *s = *state;
	struct writer history = {s, 9, 150}, w[3];
	pthread_t t[3];
	esr_subscription *sub;
	struct feed f;
	uint64_t head;
	int i;

	feed_init(&f);
	conformance_thread_failures = 0;
	write_mixed(&history); /* to catch up on */
	for (i = 0; i < 3; i++) {
		w[i] = (struct writer){s, i, 150};
		assert_int_equal(pthread_create(&t[i], NULL, write_mixed, &w[i]), 0);
	}
	/* subscribe while the writers run: catch-up meets live mid-stream */
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, NULL, &sub), ESR_OK);
	for (i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(conformance_thread_failures, 0);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(esr_subscription_wait(sub, head, 60000), ESR_OK);
	assert_int_equal(esr_subscription_stop(sub), ESR_OK);
	assert_int_equal(f.log.n, head); /* every position once: none missed, none twice */
	check_order(&f.log, 1);
	feed_fini(&f);
}

static void subscription_starts_where_asked(void **state)
{
	esr_store *s = *state;
	esr_stream_id a = sid_of("Acct", "a");
	esr_subscription *sub;
	struct feed f;
	int i;

	feed_init(&f);
	for (i = 1; i <= 10; i++)
		put(s, &a, (uint32_t)i);
	assert_int_equal(esr_subscribe(s, 6, on_event, &f, NULL, &sub), ESR_OK);
	assert_int_equal(esr_subscription_wait(sub, 10, 30000), ESR_OK);
	put(s, &a, 11);
	assert_int_equal(esr_subscription_wait(sub, 11, 30000), ESR_OK);
	assert_int_equal(esr_subscription_stop(sub), ESR_OK);
	assert_int_equal(f.log.n, 6);
	check_order(&f.log, 6);
	assert_int_equal(f.log.e[5].type, 11);
	feed_fini(&f);
}

static void subscription_resumes_after_its_checkpoint(void **state)
{
	esr_store *s = *state;
	esr_stream_id a = sid_of("Acct", "a");
	esr_subscription_options o;
	esr_subscription_stats st;
	esr_subscription *sub;
	uint64_t saved = 99;
	struct feed f;
	int i;

	feed_init(&f);
	esr_subscription_options_default(&o);
	o.checkpoint_name = "bank.totals";
	o.checkpoint_every = 4;
	assert_int_equal(esr_store_checkpoint_load(s, "bank.totals", &saved), ESR_OK);
	assert_int_equal(saved, 0);
	for (i = 1; i <= 10; i++)
		put(s, &a, (uint32_t)i);
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, &o, &sub), ESR_OK);
	assert_int_equal(esr_subscription_wait(sub, 10, 30000), ESR_OK);
	assert_int_equal(esr_subscription_stop(sub), ESR_OK); /* saves 10 */
	assert_int_equal(esr_store_checkpoint_load(s, "bank.totals", &saved), ESR_OK);
	assert_int_equal(saved, 10);

	for (i = 11; i <= 15; i++)
		put(s, &a, (uint32_t)i);
	f.log.n = 0;
	/* from_position is ignored once a checkpoint is saved */
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, &o, &sub), ESR_OK);
	assert_int_equal(esr_subscription_wait(sub, 15, 30000), ESR_OK);
	assert_int_equal(esr_subscription_stats_get(sub, &st), ESR_OK);
	assert_int_equal(st.handled, 5);
	assert_int_equal(st.position, 15);
	assert_int_equal(esr_subscription_stop(sub), ESR_OK);
	assert_int_equal(f.log.n, 5);
	check_order(&f.log, 11);
	feed_fini(&f);
}

/* A checkpoint kept by the caller: here, a variable. */
static esr_status var_load(void *ctx, uint64_t *position)
{
	*position = *(uint64_t *)ctx;
	return ESR_OK;
}

static esr_status var_save(void *ctx, uint64_t position)
{
	*(uint64_t *)ctx = position;
	return ESR_OK;
}

static void a_failing_handler_stops_its_subscription(void **state)
{
	esr_store *s = *state;
	esr_stream_id a = sid_of("Acct", "a");
	uint64_t kept = 0;
	esr_checkpoint_store cp = {var_load, var_save, &kept};
	esr_subscription_options o;
	esr_subscription *sub;
	struct feed f;
	int i;

	feed_init(&f);
	esr_subscription_options_default(&o);
	o.checkpoint = &cp;
	f.fail_type = 3;
	f.fail_with = ESR_EREJECTED;
	for (i = 1; i <= 5; i++)
		put(s, &a, (uint32_t)i);
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, &o, &sub), ESR_OK);
	assert_int_equal(esr_subscription_wait(sub, 5, 30000), ESR_EREJECTED);
	assert_int_equal(esr_subscription_stop(sub), ESR_EREJECTED);
	assert_int_equal(f.log.n, 2);
	assert_int_equal(kept, 2); /* the failed event is not covered */

	f.fail_type = 0; /* fixed: a new subscription resumes at the failed event */
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, &o, &sub), ESR_OK);
	assert_int_equal(esr_subscription_wait(sub, 5, 30000), ESR_OK);
	assert_int_equal(esr_subscription_stop(sub), ESR_OK);
	assert_int_equal(f.log.n, 5);
	check_order(&f.log, 1);
	assert_int_equal(kept, 5);
	feed_fini(&f);
}

/* A handler's own error stops the subscription whatever it is: an ESR_EIO or
 * ESR_EUNKNOWN of the handler's (its database, say) is not a store read
 * error to retry, and the event is not delivered again. */
static void a_handler_error_like_the_stores_stops_it_too(void **state)
{
	static const esr_status statuses[] = {ESR_EIO, ESR_EUNKNOWN, ESR_ETIMEDOUT};
	esr_store *s = *state;
	esr_stream_id a = sid_of("Acct", "a");
	esr_subscription_stats stats;
	esr_subscription *sub;
	struct feed f;
	size_t k;
	int i;

	for (i = 1; i <= 4; i++)
		put(s, &a, (uint32_t)i);
	for (k = 0; k < sizeof statuses / sizeof statuses[0]; k++) {
		feed_init(&f);
		f.fail_type = 3;
		f.fail_with = statuses[k];
		assert_int_equal(esr_subscribe(s, 1, on_event, &f, NULL, &sub), ESR_OK);
		assert_int_equal(esr_subscription_wait(sub, 4, 10000), statuses[k]);
		assert_int_equal(esr_subscription_stats_get(sub, &stats), ESR_OK);
		assert_int_equal(stats.status, statuses[k]);
		assert_int_equal(stats.handled, 2);
		assert_int_equal(stats.errors, 0);
		assert_int_equal(esr_subscription_stop(sub), statuses[k]);
		assert_int_equal(f.failures, 1); /* handed over once, never again */
		assert_int_equal(f.log.n, 2);
		feed_fini(&f);
	}
}

/* A wait of 2^32 ms or more is long, not truncated to nothing. */
static void a_very_long_wait_waits(void **state)
{
	esr_store *s = *state;
	struct later w = {s, 100, 1};
	esr_subscription *sub;
	struct feed f;
	pthread_t t;

	feed_init(&f);
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, NULL, &sub), ESR_OK);
	assert_int_equal(pthread_create(&t, NULL, append_later, &w), 0);
	assert_int_equal(esr_subscription_wait(sub, 1, 4294967296L), ESR_OK);
	assert_int_equal(esr_subscription_stop(sub), ESR_OK);
	pthread_join(t, NULL);
	assert_int_equal(f.log.n, 1);
	feed_fini(&f);
}

static esr_status max_load(void *ctx, uint64_t *position)
{
	(void)ctx;
	*position = UINT64_MAX;
	return ESR_OK;
}

static void a_blocked_handler_never_holds_up_appends(void **state)
{
	esr_store *s = *state;
	struct writer w = {s, 0, 400};
	esr_subscription_stats st;
	esr_subscription *sub;
	uint64_t head;
	struct feed f;

	feed_init(&f);
	f.gate_closed = 1; /* the handler cannot finish a single event */
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, NULL, &sub), ESR_OK);
	conformance_thread_failures = 0;
	write_mixed(&w); /* every append completes meanwhile */
	assert_int_equal(conformance_thread_failures, 0);
	assert_int_equal(esr_subscription_stats_get(sub, &st), ESR_OK);
	assert_int_equal(st.handled, 0);
	pthread_mutex_lock(&f.lock);
	f.gate_closed = 0;
	pthread_cond_broadcast(&f.gate);
	pthread_mutex_unlock(&f.lock);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(esr_subscription_wait(sub, head, 60000), ESR_OK);
	assert_int_equal(esr_subscription_stop(sub), ESR_OK);
	assert_int_equal(f.log.n, head);
	check_order(&f.log, 1);
	feed_fini(&f);
}

static void subscribe_arguments_are_checked(void **state)
{
	esr_store *s = *state;
	esr_checkpoint_store cp = {var_load, var_save, NULL};
	esr_subscription_options o;
	esr_subscription *sub = NULL;
	struct feed f;

	feed_init(&f);
	esr_subscription_options_default(&o);
	assert_int_equal(esr_subscribe(NULL, 1, on_event, &f, &o, &sub), ESR_EINVAL);
	assert_int_equal(esr_subscribe(s, 1, NULL, &f, &o, &sub), ESR_EINVAL);
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, &o, NULL), ESR_EINVAL);
	o.batch = 0;
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, &o, &sub), ESR_EINVAL);
	esr_subscription_options_default(&o);
	o.checkpoint_name = "bad name";
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, &o, &sub), ESR_EINVAL);
	o.checkpoint_name = "fine";
	o.checkpoint = &cp;
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, &o, &sub), ESR_EINVAL);
	assert_null(sub);
	/* a checkpoint no position can follow: refused, not wrapped to 1 */
	esr_subscription_options_default(&o);
	cp.load = max_load;
	o.checkpoint = &cp;
	assert_int_equal(esr_subscribe(s, 1, on_event, &f, &o, &sub), ESR_ECORRUPT);
	assert_null(sub);
	assert_int_equal(f.log.n, 0);
	assert_int_equal(esr_subscription_wait(NULL, 1, 0), ESR_EINVAL);
	assert_int_equal(esr_subscription_stop(NULL), ESR_OK);
	feed_fini(&f);
}

/* --- checkpoints and snapshots ------------------------------------------------ */

static void checkpoints_are_kept_by_name(void **state)
{
	esr_store *s = *state;
	char longest[ESR_CHECKPOINT_NAME_MAX + 2];
	uint64_t p = 7;

	assert_int_equal(esr_store_checkpoint_load(s, "a", &p), ESR_OK);
	assert_int_equal(p, 0);
	assert_int_equal(esr_store_checkpoint_save(s, "a", 41), ESR_OK);
	assert_int_equal(esr_store_checkpoint_save(s, "b-2.x_y", 9), ESR_OK);
	assert_int_equal(esr_store_checkpoint_save(s, "a", 42), ESR_OK);
	assert_int_equal(esr_store_checkpoint_save(s, "a", UINT64_MAX), ESR_EINVAL);
	assert_int_equal(esr_store_checkpoint_load(s, "a", &p), ESR_OK);
	assert_int_equal(p, 42);
	assert_int_equal(esr_store_checkpoint_load(s, "b-2.x_y", &p), ESR_OK);
	assert_int_equal(p, 9);
	memset(longest, 'n', sizeof longest);
	longest[ESR_CHECKPOINT_NAME_MAX] = '\0';
	assert_int_equal(esr_store_checkpoint_save(s, longest, 1), ESR_OK);
	longest[ESR_CHECKPOINT_NAME_MAX] = 'n';
	longest[ESR_CHECKPOINT_NAME_MAX + 1] = '\0';
	assert_int_equal(esr_store_checkpoint_save(s, longest, 1), ESR_EINVAL);
	assert_int_equal(esr_store_checkpoint_save(s, "", 1), ESR_EINVAL);
	assert_int_equal(esr_store_checkpoint_save(s, "../x", 1), ESR_EINVAL);
	assert_int_equal(esr_store_checkpoint_save(s, NULL, 1), ESR_EINVAL);
	assert_int_equal(esr_store_checkpoint_load(s, "a", NULL), ESR_EINVAL);
}

struct snap_copy {
	int calls;
	esr_snapshot snap;
	char data[64];
};

static esr_status copy_snap(void *ctx, const esr_snapshot *snap)
{
	struct snap_copy *c = ctx;

	c->calls++;
	c->snap = *snap;
	memcpy(c->data, snap->data, snap->len < 64 ? snap->len : 64);
	return ESR_OK;
}

static void the_last_snapshot_saved_is_kept(void **state)
{
	esr_store *s = *state;
	esr_stream_id a = sid_of("Acct", "a"), b = sid_of("Acct", "b");
	esr_snapshot v5 = {5, 1, 5, "five!"}, v3 = {3, 1, 5, "three"}, v9 = {9, 2, 4, "nine"};
	struct snap_copy c = {0};

	assert_int_equal(esr_store_snapshot_load(s, &a, copy_snap, &c), ESR_OK);
	assert_int_equal(c.calls, 0); /* none yet */
	assert_int_equal(esr_store_snapshot_save(s, &a, &v5), ESR_OK);
	assert_int_equal(esr_store_snapshot_load(s, &a, copy_snap, &c), ESR_OK);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.snap.version, 5);
	assert_int_equal(c.snap.format, 1);
	assert_int_equal(c.snap.len, 5);
	assert_memory_equal(c.data, "five!", 5);
	assert_int_equal(esr_store_snapshot_save(s, &a, &v9), ESR_OK);
	assert_int_equal(esr_store_snapshot_load(s, &a, copy_snap, &c), ESR_OK);
	assert_int_equal(c.snap.version, 9);
	assert_int_equal(c.snap.format, 2);
	assert_memory_equal(c.data, "nine", 4);
	/* the last save wins, even an older version: a bad snapshot claiming a
	 * version beyond the stream must be replaceable */
	assert_int_equal(esr_store_snapshot_save(s, &a, &v3), ESR_OK);
	assert_int_equal(esr_store_snapshot_load(s, &a, copy_snap, &c), ESR_OK);
	assert_int_equal(c.snap.version, 3);
	assert_memory_equal(c.data, "three", 5);
	c.calls = 0;
	assert_int_equal(esr_store_snapshot_load(s, &b, copy_snap, &c), ESR_OK);
	assert_int_equal(c.calls, 0); /* another stream's is not ours */
}

static void snapshot_arguments_are_checked(void **state)
{
	esr_store *s = *state;
	esr_stream_id a = sid_of("Acct", "a");
	esr_snapshot ok = {1, 1, 1, "x"}, bad;
	struct snap_copy c = {0};

	bad = ok, bad.version = 0;
	assert_int_equal(esr_store_snapshot_save(s, &a, &bad), ESR_EINVAL);
	bad = ok, bad.version = ESR_VERSION_ANY;
	assert_int_equal(esr_store_snapshot_save(s, &a, &bad), ESR_EINVAL);
	bad = ok, bad.format = 0;
	assert_int_equal(esr_store_snapshot_save(s, &a, &bad), ESR_EINVAL);
	bad = ok, bad.data = NULL;
	assert_int_equal(esr_store_snapshot_save(s, &a, &bad), ESR_EINVAL);
	bad = ok, bad.len = ESR_SNAPSHOT_MAX + 1;
	assert_int_equal(esr_store_snapshot_save(s, &a, &bad), ESR_ETOOBIG);
	assert_int_equal(esr_store_snapshot_save(s, NULL, &ok), ESR_EINVAL);
	assert_int_equal(esr_store_snapshot_save(NULL, &a, &ok), ESR_EINVAL);
	assert_int_equal(esr_store_snapshot_load(s, &a, NULL, NULL), ESR_EINVAL);
	assert_int_equal(esr_store_snapshot_load(s, &a, copy_snap, &c), ESR_OK);
	assert_int_equal(c.calls, 0); /* nothing refused was kept */
}

int esr_store_conformance_global(const struct store_backend *b)
{
#define T(name) cmocka_unit_test_setup_teardown(name, conformance_open, conformance_close)
	const struct CMUnitTest tests[] = {
		T(positions_are_gapless_and_follow_appends),
		T(stream_reads_carry_the_same_positions),
		T(global_reads_page_and_start_anywhere),
		T(global_read_arguments_are_checked),
		T(wait_returns_when_the_head_moves),
		T(subscription_hands_over_from_catch_up_to_live),
		T(subscription_starts_where_asked),
		T(subscription_resumes_after_its_checkpoint),
		T(a_failing_handler_stops_its_subscription),
		T(a_handler_error_like_the_stores_stops_it_too),
		T(a_blocked_handler_never_holds_up_appends),
		T(a_very_long_wait_waits),
		T(subscribe_arguments_are_checked),
		T(checkpoints_are_kept_by_name),
		T(the_last_snapshot_saved_is_kept),
		T(snapshot_arguments_are_checked),
	};
#undef T
	char group[80];

	snprintf(group, sizeof group, "store conformance, global order: %s", b->name);
	return cmocka_run_group_tests_name(group, tests, NULL, NULL);
}
