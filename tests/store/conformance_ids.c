/*
 * tests/store/conformance_ids.c: the store conformance suite's section on
 * command ids (esr/store.h): recorded with the events, read back with them,
 * a second append of a recorded id refused whole, racing duplicates settled
 * once, ids independent per stream, kept across a restart where the backend
 * has one. Run by esr_store_conformance_run for every backend that records
 * ids; a backend that does not must refuse them with ESR_ENOTSUP.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/store_internal.h" /* the resolved-append path the runtime uses */
#include "store_conformance.h"

static const struct store_backend *backend;

static esr_stream_id stream_of(const char *type, const char *id)
{
	return (esr_stream_id){.type = type, .id = id, .id_len = strlen(id)};
}

static esr_command_id cid(const char *text)
{
	return (esr_command_id){text, strlen(text)};
}

/* Append n events carrying command id `id` (NULL: none), typed first.. */
static esr_status append_cmd(esr_store *s, const esr_stream_id *sid, uint64_t expected,
                             const char *id, uint32_t first, size_t n, esr_append_result *r)
{
	esr_event ev[8];
	size_t i;

	assert_true(n <= 8);
	for (i = 0; i < n; i++)
		ev[i] = (esr_event){.type = first + (uint32_t)i, .payload = "x", .payload_len = 1,
		                    .command_id = id ? cid(id) : (esr_command_id){NULL, 0}};
	return esr_store_append(s, sid, expected, ev, n, r);
}

static uint64_t version_of(esr_store *s, const esr_stream_id *sid)
{
	uint64_t v = 12345;

	assert_int_equal(esr_store_version(s, sid, &v), ESR_OK);
	return v;
}

static void lookup(esr_store *s, const esr_stream_id *sid, const char *id, uint64_t first,
                   uint64_t last)
{
	uint64_t f = 99, l = 99;

	assert_int_equal(esr_store_command(s, sid, id, strlen(id), &f, &l), ESR_OK);
	assert_int_equal(f, first);
	assert_int_equal(l, last);
}

/* Each event's command id, as read back: "" for none. */
struct ids {
	char id[16][ESR_COMMAND_ID_MAX + 1];
	uint64_t version[16];
	size_t n;
};

static esr_status keep_id(void *ctx, const esr_recorded_event *rec)
{
	struct ids *ids = ctx;
	const esr_command_id *c = &rec->event.command_id;

	if (ids->n == 16 || c->len > ESR_COMMAND_ID_MAX)
		return ESR_ECANCELED;
	memcpy(ids->id[ids->n], c->bytes ? c->bytes : "", c->len);
	ids->id[ids->n][c->len] = '\0';
	ids->version[ids->n++] = rec->version;
	return ESR_OK;
}

static void ids_are_recorded_and_read_back(void **state)
{
	esr_store *s = *state;
	esr_stream_id sid = stream_of("Account", "ids-1");
	esr_append_result r;
	struct ids got = {0};

	assert_int_equal(append_cmd(s, &sid, 0, "cmd-1", 1, 2, &r), ESR_OK);
	assert_int_equal(r.version, 2);
	assert_int_equal(append_cmd(s, &sid, 2, NULL, 3, 1, &r), ESR_OK);
	assert_int_equal(append_cmd(s, &sid, 3, "cmd-2", 4, 1, &r), ESR_OK);
	assert_int_equal(esr_store_read(s, &sid, 0, keep_id, &got), ESR_OK);
	assert_int_equal(got.n, 4);
	assert_string_equal(got.id[0], "cmd-1");
	assert_string_equal(got.id[1], "cmd-1");
	assert_string_equal(got.id[2], "");
	assert_string_equal(got.id[3], "cmd-2");
	lookup(s, &sid, "cmd-1", 1, 2);
	lookup(s, &sid, "cmd-2", 4, 4);
	lookup(s, &sid, "cmd-3", 0, 0);
	sid = stream_of("Account", "nobody");
	lookup(s, &sid, "cmd-1", 0, 0);
}

static void a_recorded_id_appends_nothing(void **state)
{
	esr_store *s = *state;
	esr_stream_id sid = stream_of("Account", "ids-2");
	esr_append_result r;

	assert_int_equal(append_cmd(s, &sid, 0, NULL, 1, 1, &r), ESR_OK);
	assert_int_equal(append_cmd(s, &sid, 1, "pay-7", 2, 3, &r), ESR_OK);
	assert_int_equal(r.version, 4);
	/* Without a version check, and with the right one: refused whole. */
	memset(&r, 0xff, sizeof r);
	assert_int_equal(append_cmd(s, &sid, ESR_VERSION_ANY, "pay-7", 9, 1, &r), ESR_EDUPLICATE);
	assert_int_equal(r.status, ESR_EDUPLICATE);
	assert_int_equal(r.recorded_first, 2);
	assert_int_equal(r.version, 4);
	assert_int_equal(r.duplicate_at, 0);
	assert_int_equal(append_cmd(s, &sid, 4, "pay-7", 9, 2, &r), ESR_EDUPLICATE);
	assert_int_equal(r.recorded_first, 2);
	assert_int_equal(r.version, 4);
	/* A stale expected version is a conflict first: the caller catches up. */
	assert_int_equal(append_cmd(s, &sid, 1, "pay-7", 9, 1, &r), ESR_ECONFLICT);
	assert_int_equal(r.version, 4);
	assert_int_equal(version_of(s, &sid), 4);
	lookup(s, &sid, "pay-7", 2, 4);
}

static void the_duplicate_is_named_and_the_others_not_recorded(void **state)
{
	esr_store *s = *state;
	esr_stream_id sid = stream_of("Account", "ids-3");
	esr_event ev[4];
	esr_append_result r;
	size_t i;

	assert_int_equal(append_cmd(s, &sid, 0, "b", 1, 1, &r), ESR_OK);
	for (i = 0; i < 4; i++)
		ev[i] = (esr_event){.type = 1, .payload = "y", .payload_len = 1,
		                    .command_id = cid(i == 0 ? "a" : i < 3 ? "b" : "c")};
	assert_int_equal(esr_store_append(s, &sid, ESR_VERSION_ANY, ev, 4, &r), ESR_EDUPLICATE);
	assert_int_equal(r.duplicate_at, 1);
	assert_int_equal(r.recorded_first, 1);
	assert_int_equal(r.version, 1);
	assert_int_equal(version_of(s, &sid), 1);
	lookup(s, &sid, "a", 0, 0);
	lookup(s, &sid, "c", 0, 0);
	/* Without the duplicate the same append goes through. */
	ev[1].command_id = ev[2].command_id = (esr_command_id){NULL, 0};
	assert_int_equal(esr_store_append(s, &sid, 1, ev, 4, &r), ESR_OK);
	lookup(s, &sid, "a", 2, 2);
	lookup(s, &sid, "c", 5, 5);
}

static void streams_keep_their_own_ids(void **state)
{
	esr_store *s = *state;
	esr_stream_id a = stream_of("Account", "ids-4"), b = stream_of("Account", "ids-5");
	esr_stream_id other_type = stream_of("Order", "ids-4");

	assert_int_equal(append_cmd(s, &a, 0, "same", 1, 1, NULL), ESR_OK);
	assert_int_equal(append_cmd(s, &b, 0, "same", 1, 2, NULL), ESR_OK);
	assert_int_equal(append_cmd(s, &other_type, 0, "same", 1, 1, NULL), ESR_OK);
	lookup(s, &a, "same", 1, 1);
	lookup(s, &b, "same", 1, 2);
	lookup(s, &other_type, "same", 1, 1);
	/* Ids are exact bytes: a prefix or a longer id is another id. */
	assert_int_equal(append_cmd(s, &a, 1, "sam", 2, 1, NULL), ESR_OK);
	assert_int_equal(append_cmd(s, &a, 2, "same2", 3, 1, NULL), ESR_OK);
	assert_int_equal(append_cmd(s, &a, 3, "same", 4, 1, NULL), ESR_EDUPLICATE);
}

static void bad_ids_are_refused_and_store_nothing(void **state)
{
	esr_store *s = *state;
	esr_stream_id sid = stream_of("Account", "ids-6");
	char longest[ESR_COMMAND_ID_MAX + 2];
	esr_event ev[3];
	uint64_t f, l;
	size_t i;

	memset(longest, 'k', sizeof longest - 1);
	longest[sizeof longest - 1] = '\0';
	assert_int_equal(append_cmd(s, &sid, 0, longest, 1, 1, NULL), ESR_ETOOBIG);
	longest[ESR_COMMAND_ID_MAX] = '\0';
	ev[0] = (esr_event){.type = 1, .command_id = {"x", 0}};
	assert_int_equal(esr_store_append(s, &sid, 0, ev, 1, NULL), ESR_EINVAL);
	ev[0].command_id = (esr_command_id){NULL, 4};
	assert_int_equal(esr_store_append(s, &sid, 0, ev, 1, NULL), ESR_EINVAL);
	/* One id in two runs: two commands with one id in one append. */
	for (i = 0; i < 3; i++)
		ev[i] = (esr_event){.type = 1, .command_id = cid(i == 1 ? "b" : "a")};
	assert_int_equal(esr_store_append(s, &sid, 0, ev, 3, NULL), ESR_EINVAL);
	assert_int_equal(version_of(s, &sid), 0);
	assert_int_equal(esr_store_command(s, &sid, "", 0, &f, &l), ESR_EINVAL);
	assert_int_equal(esr_store_command(s, &sid, NULL, 3, &f, &l), ESR_EINVAL);
	assert_int_equal(esr_store_command(s, &sid, "a", 1, NULL, &l), ESR_EINVAL);
	assert_int_equal(esr_store_command(NULL, &sid, "a", 1, &f, &l), ESR_EINVAL);
	assert_int_equal(esr_store_command(s, &sid, longest, ESR_COMMAND_ID_MAX + 1, &f, &l),
	                 ESR_ETOOBIG);
	/* The longest id is accepted and found. */
	assert_int_equal(append_cmd(s, &sid, 0, longest, 1, 1, NULL), ESR_OK);
	lookup(s, &sid, longest, 1, 1);
}

#define RACERS 8
#define ROUNDS 25

struct racer {
	esr_store *s;
	pthread_barrier_t *go;
	int round;
	esr_status st[ROUNDS];
	esr_append_result r[ROUNDS];
};

static void *race(void *arg)
{
	struct racer *rc = arg;
	esr_stream_id sid = stream_of("Account", "ids-race");
	char id[32];
	int i;

	for (i = 0; i < ROUNDS; i++) {
		snprintf(id, sizeof id, "round-%d", i);
		pthread_barrier_wait(rc->go);
		rc->st[i] = append_cmd(rc->s, &sid, ESR_VERSION_ANY, id, 1, 2, &rc->r[i]);
	}
	return NULL;
}

/* Every round, RACERS threads append the round's id at once: one wins, the
 * others are told which versions it got. */
static void racing_duplicates_take_effect_once(void **state)
{
	esr_stream_id sid = stream_of("Account", "ids-race");
	struct racer rc[RACERS];
	pthread_t t[RACERS];
	pthread_barrier_t go;
	int i, k;

	pthread_barrier_init(&go, NULL, RACERS);
	for (k = 0; k < RACERS; k++) {
		rc[k] = (struct racer){.s = *state, .go = &go};
		assert_int_equal(pthread_create(&t[k], NULL, race, &rc[k]), 0);
	}
	for (k = 0; k < RACERS; k++)
		pthread_join(t[k], NULL);
	pthread_barrier_destroy(&go);
	for (i = 0; i < ROUNDS; i++) {
		int winners = 0;
		uint64_t last = 0;

		for (k = 0; k < RACERS; k++)
			if (rc[k].st[i] == ESR_OK) {
				winners++;
				last = rc[k].r[i].version;
			}
		assert_int_equal(winners, 1);
		for (k = 0; k < RACERS; k++) {
			if (rc[k].st[i] == ESR_OK)
				continue;
			assert_int_equal(rc[k].st[i], ESR_EDUPLICATE);
			assert_int_equal(rc[k].r[i].version, last);
			assert_int_equal(rc[k].r[i].recorded_first, last - 1);
		}
	}
	assert_int_equal(version_of(*state, &sid), 2 * ROUNDS);
}

struct resolved {
	uint32_t state;
	esr_append_result r;
};

static void on_resolved(void *ctx, const esr_append_result *r)
{
	struct resolved *x = ctx;

	x->r = *r;
	__atomic_store_n(&x->state, 1, __ATOMIC_RELEASE);
}

static esr_status append_built(esr_store *s, const esr_stream_id *sid, void *handle,
                               const char *id, esr_append_result *out)
{
	esr_event ev = {.type = 1, .payload = "z", .payload_len = 1, .command_id = cid(id)};
	struct resolved x = {0};
	esr_status st;

	st = esr__store_append_built(s, sid, handle, ESR_VERSION_ANY, &ev, 1, on_resolved, &x);
	if (st != ESR_OK)
		return st;
	while (!__atomic_load_n(&x.state, __ATOMIC_ACQUIRE))
		sched_yield();
	*out = x.r;
	return x.r.status;
}

/* The runtime's path (a resolved stream) checks and records ids as
 * appends by name do, and each sees the other's. */
static void resolved_appends_check_ids_too(void **state)
{
	esr_store *s = *state;
	esr_stream_id sid = stream_of("Account", "ids-7");
	esr_append_result r;
	void *h = NULL;

	assert_int_equal(esr__store_resolve(s, &sid, &h), ESR_OK);
	assert_int_equal(append_built(s, &sid, h, "by-handle", &r), ESR_OK);
	assert_int_equal(append_cmd(s, &sid, ESR_VERSION_ANY, "by-handle", 1, 1, &r),
	                 ESR_EDUPLICATE);
	assert_int_equal(append_cmd(s, &sid, ESR_VERSION_ANY, "by-name", 1, 1, &r), ESR_OK);
	assert_int_equal(append_built(s, &sid, h, "by-name", &r), ESR_EDUPLICATE);
	assert_int_equal(r.recorded_first, 2);
	assert_int_equal(r.version, 2);
	lookup(s, &sid, "by-handle", 1, 1);
}

static void ids_survive_a_restart(void **state)
{
	esr_stream_id sid = stream_of("Account", "ids-8");
	struct ids got = {0};
	esr_append_result r;

	if (backend->reopen == NULL) {
		print_message("%s keeps nothing across a close: skipped\n", backend->name);
		return;
	}
	assert_int_equal(append_cmd(*state, &sid, 0, "before", 1, 2, &r), ESR_OK);
	assert_int_equal(append_cmd(*state, &sid, 2, NULL, 3, 1, &r), ESR_OK);
	assert_int_equal(backend->reopen(backend->arg, (esr_store **)state), ESR_OK);
	lookup(*state, &sid, "before", 1, 2);
	assert_int_equal(append_cmd(*state, &sid, ESR_VERSION_ANY, "before", 1, 1, &r),
	                 ESR_EDUPLICATE);
	assert_int_equal(r.recorded_first, 1);
	assert_int_equal(r.version, 2);
	assert_int_equal(append_cmd(*state, &sid, 3, "after", 4, 1, &r), ESR_OK);
	assert_int_equal(esr_store_read(*state, &sid, 0, keep_id, &got), ESR_OK);
	assert_int_equal(got.n, 4);
	assert_string_equal(got.id[1], "before");
	assert_string_equal(got.id[2], "");
	assert_string_equal(got.id[3], "after");
}

static void a_backend_without_ids_refuses_them(void **state)
{
	esr_stream_id sid = stream_of("Account", "ids-9");
	uint64_t f, l;

	assert_int_equal(append_cmd(*state, &sid, 0, "id", 1, 1, NULL), ESR_ENOTSUP);
	assert_int_equal(esr_store_command(*state, &sid, "id", 2, &f, &l), ESR_ENOTSUP);
	assert_int_equal(append_cmd(*state, &sid, 0, NULL, 1, 1, NULL), ESR_OK);
}

int esr_store_conformance_ids(const struct store_backend *b)
{
#define T(name) cmocka_unit_test_setup_teardown(name, conformance_open, conformance_close)
	const struct CMUnitTest tests[] = {
		T(ids_are_recorded_and_read_back),
		T(a_recorded_id_appends_nothing),
		T(the_duplicate_is_named_and_the_others_not_recorded),
		T(streams_keep_their_own_ids),
		T(bad_ids_are_refused_and_store_nothing),
		T(racing_duplicates_take_effect_once),
		T(resolved_appends_check_ids_too),
		T(ids_survive_a_restart),
	};
	const struct CMUnitTest without[] = {T(a_backend_without_ids_refuses_them)};
#undef T
	char group[80];
	esr_store *s = NULL;
	int records;

	backend = b;
	if (b->open(b->arg, &s) != ESR_OK)
		return 1;
	records = esr__store_records_ids(s);
	esr_store_close(s);
	snprintf(group, sizeof group, "store conformance, command ids: %s", b->name);
	return records ? cmocka_run_group_tests_name(group, tests, NULL, NULL)
	               : cmocka_run_group_tests_name(group, without, NULL, NULL);
}
