/*
 * tests/runtime/test_snapshots.c: the runtime's snapshots. Taken every N events off
 * the command path; activation and far catch-ups read only the events after
 * the snapshot (counted by a wrapping store, independently of the runtime's
 * own stats); every kind of bad snapshot is refused, counted, warned about
 * and replaced, and the state is always the one a full replay gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <esr/esr.h>

#include "wrap_store.h"

/* A counter whose every event carries its own number: state = (count, last). */
struct counter {
	uint64_t count, last;
};

/* check: reject (code 7) unless the state's count is `expect`; then add one. */
struct cmd {
	int check;
	uint64_t expect;
};

static void c_apply(void *state, const esr_event *ev)
{
	struct counter *c = state;

	c->count++;
	memcpy(&c->last, ev->payload, sizeof c->last);
}

static int c_handle(const void *state, const void *command, esr_emitter *em)
{
	const struct counter *c = state;
	const struct cmd *k = command;
	uint64_t next = c->count + 1;

	if (k->check && (c->count != k->expect || c->last != c->count))
		return 7;
	return esr_emit(em, 1, &next, sizeof next) == ESR_OK ? 0 : 9;
}

/* Format 2: count and last. Format 1 (older): count only; last == count. */
static size_t c_encode(const void *state, void *out, size_t cap)
{
	if (cap >= sizeof(struct counter))
		memcpy(out, state, sizeof(struct counter));
	return sizeof(struct counter);
}

static int c_decode(void *state, uint32_t format, const void *data, size_t len)
{
	struct counter *c = state;

	if (format == 2 && len == sizeof *c) {
		memcpy(c, data, sizeof *c);
		return 0;
	}
	if (format == 1 && len == sizeof c->count) {
		memcpy(&c->count, data, sizeof c->count);
		c->last = c->count;
		return 0;
	}
	return -1;
}

static const esr_aggregate_type counter_type = {
	.name = "Counter", .state_size = sizeof(struct counter),
	.apply = c_apply, .handle = c_handle,
	.snapshot_format = 2, .snapshot_encode = c_encode, .snapshot_decode = c_decode,
};

static const esr_stream_id c1 = {"Counter", "c1", 2};

/* Warnings the runtime told us. */
static char last_warning[512];
static int warnings;

static void on_warn(void *ctx, const char *message)
{
	(void)ctx;
	warnings++;
	strncpy(last_warning, message, sizeof last_warning - 1);
}

static esr_runtime *start(esr_store *store, unsigned every)
{
	esr_runtime_config cfg;
	esr_runtime *rt;

	esr_runtime_config_default(&cfg);
	cfg.workers = 2;
	cfg.snapshot_every = every;
	cfg.warn = on_warn;
	assert_int_equal(esr_runtime_start(&cfg, store, &rt), ESR_OK);
	assert_int_equal(esr_runtime_register(rt, &counter_type), ESR_OK);
	return rt;
}

static void add(esr_runtime *rt, uint64_t expect, int check)
{
	struct cmd k = {check, expect};
	esr_result r;

	assert_int_equal(esr_execute(rt, "Counter", "c1", 2, &k, &r), ESR_OK);
}

static void add_n(esr_runtime *rt, int n)
{
	for (int i = 0; i < n; i++)
		add(rt, 0, 0);
}

static esr_runtime_stats stop(esr_runtime *rt)
{
	esr_runtime_stats st;

	assert_int_equal(esr_runtime_stop(rt), ESR_OK);
	assert_int_equal(esr_runtime_stats_get(rt, &st), ESR_OK);
	esr_runtime_destroy(rt);
	return st;
}

struct snap_seen {
	int calls;
	uint64_t version;
	uint32_t format, len;
};

static esr_status seen(void *ctx, const esr_snapshot *snap)
{
	struct snap_seen *s = ctx;

	s->calls++;
	s->version = snap->version;
	s->format = snap->format;
	s->len = snap->len;
	return ESR_OK;
}

static struct snap_seen stored(esr_store *store)
{
	struct snap_seen s = {0};

	assert_int_equal(esr_store_snapshot_load(store, &c1, seen, &s), ESR_OK);
	return s;
}

/* --- taking and using them ------------------------------------------------------- */

static void snapshots_are_taken_every_n_events_and_cut_activation(void **state)
{
	struct wrap w = {0};
	esr_store *mem, *counted;
	esr_runtime_stats st;
	struct snap_seen s;
	esr_runtime *rt;

	(void)state;
	assert_int_equal(esr_memory_store_open(&mem), ESR_OK);
	rt = start(mem, 10);
	add_n(rt, 25);
	st = stop(rt); /* drains the snapshot queue */
	assert_int_equal(st.snapshots_taken, 2); /* at 10 and 20 */
	assert_int_equal(st.snapshots_dropped, 0);
	s = stored(mem);
	assert_int_equal(s.version, 20);
	assert_int_equal(s.format, 2);
	assert_int_equal(s.len, sizeof(struct counter));

	w.inner = mem;
	assert_int_equal(wrap_store_open(&w, &counted), ESR_OK);
	rt = start(counted, 10);
	add(rt, 25, 1); /* the state is exactly a full replay's */
	st = stop(rt);
	assert_int_equal(st.activations, 1);
	assert_int_equal(st.snapshots_loaded, 1);
	assert_int_equal(st.snapshots_ignored, 0);
	assert_int_equal(st.events_replayed, 5);
	assert_int_equal(w.events_read, 6); /* event 20, proving the stream has it, and 21..25 */
	esr_store_close(counted);
	esr_store_close(mem);
}

static void an_older_format_is_decoded(void **state)
{
	uint64_t count = 4;
	esr_snapshot old = {4, 1, sizeof count, &count};
	esr_runtime_stats st;
	esr_store *mem;
	esr_runtime *rt;

	(void)state;
	assert_int_equal(esr_memory_store_open(&mem), ESR_OK);
	rt = start(mem, 0);
	add_n(rt, 6);
	stop(rt);
	assert_int_equal(esr_store_snapshot_save(mem, &c1, &old), ESR_OK);
	rt = start(mem, 0);
	add(rt, 6, 1);
	st = stop(rt);
	assert_int_equal(st.snapshots_loaded, 1);
	assert_int_equal(st.events_replayed, 2);
	assert_int_equal(st.snapshots_taken, 0); /* snapshot_every 0: none taken */
	esr_store_close(mem);
}

/* --- bad snapshots ------------------------------------------------------------------- */

/* A stream of 25 events with `bad` saved as its snapshot; then activate. */
static void refused(const esr_snapshot *bad, const char *why)
{
	esr_runtime_stats st;
	struct snap_seen s;
	esr_store *mem;
	esr_runtime *rt;

	assert_int_equal(esr_memory_store_open(&mem), ESR_OK);
	rt = start(mem, 0);
	add_n(rt, 25);
	stop(rt);
	assert_int_equal(esr_store_snapshot_save(mem, &c1, bad), ESR_OK);
	warnings = 0;
	rt = start(mem, 10);
	add(rt, 25, 1); /* slower, never wrong */
	st = stop(rt);
	assert_int_equal(st.snapshots_ignored, 1);
	assert_int_equal(st.snapshots_loaded, 0);
	assert_int_equal(st.events_replayed, 25);
	assert_int_equal(warnings, 1);
	assert_non_null(strstr(last_warning, "esr: snapshot ignored: type=Counter id=c1: "));
	assert_non_null(strstr(last_warning, why));
	/* The long replay took a fresh snapshot, which replaced the bad one. */
	assert_int_equal(st.snapshots_taken, 1);
	s = stored(mem);
	assert_int_equal(s.version, 25);
	assert_int_equal(s.format, 2);
	esr_store_close(mem);
}

static void a_snapshot_of_an_unknown_format_is_refused(void **state)
{
	struct counter c = {20, 20};
	esr_snapshot bad = {20, 3, sizeof c, &c};

	(void)state;
	refused(&bad, "format 3 is unknown");
}

static void a_snapshot_that_does_not_decode_is_refused(void **state)
{
	esr_snapshot bad = {20, 2, 3, "bad"};

	(void)state;
	refused(&bad, "snapshot_decode refused it");
}

static void a_snapshot_beyond_the_stream_is_refused(void **state)
{
	struct counter c = {1000, 1000};
	esr_snapshot bad = {1000, 2, sizeof c, &c};

	(void)state;
	refused(&bad, "claims version 1000, beyond the stream");
}

static void a_snapshot_at_the_head_replays_nothing(void **state)
{
	struct counter c = {25, 25};
	esr_snapshot good = {25, 2, sizeof c, &c};
	esr_runtime_stats st;
	esr_store *mem;
	esr_runtime *rt;

	(void)state;
	assert_int_equal(esr_memory_store_open(&mem), ESR_OK);
	rt = start(mem, 0);
	add_n(rt, 25);
	stop(rt);
	assert_int_equal(esr_store_snapshot_save(mem, &c1, &good), ESR_OK);
	rt = start(mem, 0);
	add(rt, 25, 1);
	st = stop(rt);
	assert_int_equal(st.snapshots_loaded, 1);
	assert_int_equal(st.events_replayed, 0);
	esr_store_close(mem);
}

/* A backend handing over a snapshot at version 0 (no version): refused, and
 * the stream replayed onto a fresh state, not onto the snapshot's. */
static void a_snapshot_at_version_zero_is_refused(void **state)
{
	struct counter c = {3, 3};
	esr_snapshot bad = {0, 2, sizeof c, &c};
	struct wrap w = {0};
	esr_runtime_stats st;
	esr_store *mem, *forging;
	esr_runtime *rt;

	(void)state;
	assert_int_equal(esr_memory_store_open(&mem), ESR_OK);
	rt = start(mem, 0);
	add_n(rt, 3);
	stop(rt);
	w.inner = mem;
	w.forged = &bad;
	assert_int_equal(wrap_store_open(&w, &forging), ESR_OK);
	warnings = 0;
	rt = start(forging, 0);
	add(rt, 3, 1); /* count 3, as a replay gives, not 6 */
	st = stop(rt);
	assert_int_equal(st.snapshots_ignored, 1);
	assert_int_equal(st.snapshots_loaded, 0);
	assert_int_equal(st.events_replayed, 3);
	assert_non_null(strstr(last_warning, "version 0 is no stream version"));
	esr_store_close(forging);
	esr_store_close(mem);
}

/* Under unchecked, an actor whose append lands after another writer's events
 * holds a state that is not the fold of the stream: it must never become a
 * snapshot, or every later load would drop that writer's events for good. */
static void unchecked_never_snapshots_a_state_that_skipped_events(void **state)
{
	uint64_t two = 2, count = 0;
	esr_event foreign = {.type = 1, .payload = &two, .payload_len = sizeof two};
	esr_runtime_config cfg;
	struct counter loaded;
	esr_repository *repo;
	struct snap_seen s;
	esr_store *mem;
	esr_runtime *rt;

	(void)state;
	assert_int_equal(esr_memory_store_open(&mem), ESR_OK);
	esr_runtime_config_default(&cfg);
	cfg.strategy = ESR_UNCHECKED;
	cfg.snapshot_every = 1;
	assert_int_equal(esr_runtime_start(&cfg, mem, &rt), ESR_OK);
	assert_int_equal(esr_runtime_register(rt, &counter_type), ESR_OK);
	add(rt, 0, 0);                                   /* version 1 */
	assert_int_equal(esr_store_append(mem, &c1, ESR_VERSION_ANY, &foreign, 1, NULL),
	                 ESR_OK);                        /* version 2, another writer's */
	add(rt, 0, 0);                                   /* version 3, past it */
	add(rt, 0, 0);                                   /* version 4 */
	stop(rt);
	s = stored(mem);
	assert_int_equal(s.version, 1); /* the last state that was a true fold */

	assert_int_equal(esr_repository_open(mem, NULL, &repo), ESR_OK);
	assert_int_equal(esr_repository_register(repo, &counter_type), ESR_OK);
	assert_int_equal(esr_repository_load(repo, "Counter", "c1", 2, &loaded, sizeof loaded,
	                                     &count),
	                 ESR_OK);
	assert_int_equal(count, 4);
	assert_int_equal(loaded.count, 4); /* every writer's events, from a snapshot or not */
	esr_repository_close(repo);
	esr_store_close(mem);
}

/* --- catch-up ------------------------------------------------------------------------ */

static void a_far_catch_up_starts_from_the_snapshot(void **state)
{
	struct wrap w = {0};
	esr_store *mem, *counted;
	esr_runtime *a, *b;
	esr_runtime_stats st;

	(void)state;
	assert_int_equal(esr_memory_store_open(&mem), ESR_OK);
	w.inner = mem;
	assert_int_equal(wrap_store_open(&w, &counted), ESR_OK);
	b = start(counted, 10);
	add(b, 0, 1); /* b's actor: live at version 1 */
	a = start(mem, 10);
	add_n(a, 30); /* the stream moves to 31 behind b's back */
	stop(a);
	assert_int_equal(stored(mem).version, 30);
	w.events_read = 0;
	add(b, 0, 0);  /* conflicts: 30 missed, so it reloads from the snapshot */
	add(b, 32, 1); /* and its state is right */
	st = stop(b);
	assert_int_equal(st.conflicts, 1);
	assert_int_equal(st.snapshots_loaded, 1);
	assert_int_equal(w.events_read, 2); /* event 30 (the anchor) and 31 */
	esr_store_close(counted);
	esr_store_close(mem);
}

/* --- encode growing, registration ---------------------------------------------------- */

#define PADDING 3000 /* more than state_size: encode must be called again */

static size_t padded_encode(const void *state, void *out, size_t cap)
{
	if (cap >= sizeof(struct counter) + PADDING) {
		memcpy(out, state, sizeof(struct counter));
		memset((char *)out + sizeof(struct counter), 0xab, PADDING);
	}
	return sizeof(struct counter) + PADDING;
}

static int padded_decode(void *state, uint32_t format, const void *data, size_t len)
{
	const unsigned char *p = data;

	if (format != 1 || len != sizeof(struct counter) + PADDING ||
	    p[len - 1] != 0xab)
		return -1;
	memcpy(state, data, sizeof(struct counter));
	return 0;
}

static void an_encoding_larger_than_the_state_is_taken(void **state)
{
	esr_aggregate_type padded = counter_type;
	esr_runtime_config cfg;
	esr_runtime_stats st;
	esr_runtime *rt;
	esr_store *mem;
	int i;

	(void)state;
	padded.snapshot_format = 1;
	padded.snapshot_encode = padded_encode;
	padded.snapshot_decode = padded_decode;
	assert_int_equal(esr_memory_store_open(&mem), ESR_OK);
	for (i = 0; i < 2; i++) {
		esr_runtime_config_default(&cfg);
		cfg.snapshot_every = 5;
		assert_int_equal(esr_runtime_start(&cfg, mem, &rt), ESR_OK);
		assert_int_equal(esr_runtime_register(rt, &padded), ESR_OK);
		if (i == 0)
			add_n(rt, 5);
		else
			add(rt, 5, 1);
		st = stop(rt);
		assert_int_equal(i == 0 ? st.snapshots_taken : st.snapshots_loaded, 1);
	}
	assert_int_equal(stored(mem).len, sizeof(struct counter) + PADDING);
	esr_store_close(mem);
}

static void snapshot_callbacks_come_all_or_none(void **state)
{
	esr_aggregate_type t = counter_type;
	esr_runtime *rt;
	esr_store *mem;

	(void)state;
	assert_int_equal(esr_memory_store_open(&mem), ESR_OK);
	assert_int_equal(esr_runtime_start(NULL, mem, &rt), ESR_OK);
	t.snapshot_decode = NULL;
	assert_int_equal(esr_runtime_register(rt, &t), ESR_EINVAL);
	t = counter_type;
	t.snapshot_format = 0;
	assert_int_equal(esr_runtime_register(rt, &t), ESR_EINVAL);
	t = counter_type;
	t.snapshot_encode = NULL;
	t.snapshot_decode = NULL;
	assert_int_equal(esr_runtime_register(rt, &t), ESR_EINVAL); /* a format alone */
	t.snapshot_format = 0;
	assert_int_equal(esr_runtime_register(rt, &t), ESR_OK);
	esr_runtime_destroy(rt);
	esr_store_close(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(snapshots_are_taken_every_n_events_and_cut_activation),
		cmocka_unit_test(an_older_format_is_decoded),
		cmocka_unit_test(a_snapshot_of_an_unknown_format_is_refused),
		cmocka_unit_test(a_snapshot_that_does_not_decode_is_refused),
		cmocka_unit_test(a_snapshot_beyond_the_stream_is_refused),
		cmocka_unit_test(a_snapshot_at_the_head_replays_nothing),
		cmocka_unit_test(a_snapshot_at_version_zero_is_refused),
		cmocka_unit_test(unchecked_never_snapshots_a_state_that_skipped_events),
		cmocka_unit_test(a_far_catch_up_starts_from_the_snapshot),
		cmocka_unit_test(an_encoding_larger_than_the_state_is_taken),
		cmocka_unit_test(snapshot_callbacks_come_all_or_none),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
