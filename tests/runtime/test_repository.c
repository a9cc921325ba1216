/*
 * tests/runtime/test_repository.c: load / execute / execute_with_retry under both
 * strategies, conflicts and their report, rejections, catch-up reads, and bad
 * input for every repository function.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bank.h"
#include "wrap_store.h"

static const char ID[] = "acct-7";
#define IDLEN (sizeof ID - 1)

struct fixture {
	esr_store *memory;
	struct wrap wrap;
	esr_store *store; /* the wrap over memory */
	esr_repository *repo;
};

static int setup_with(void **state, esr_strategy strategy)
{
	struct fixture *f = calloc(1, sizeof *f);
	esr_repository_config cfg = {.strategy = strategy};

	if (f == NULL || esr_memory_store_open(&f->memory) != ESR_OK)
		return -1;
	f->wrap.inner = f->memory;
	if (wrap_store_open(&f->wrap, &f->store) != ESR_OK ||
	    esr_repository_open(f->store, &cfg, &f->repo) != ESR_OK ||
	    esr_repository_register(f->repo, &bank_type) != ESR_OK)
		return -1;
	*state = f;
	return 0;
}

static int setup_optimistic(void **state)
{
	return setup_with(state, ESR_OPTIMISTIC);
}

static int setup_unchecked(void **state)
{
	return setup_with(state, ESR_UNCHECKED);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	esr_repository_close(f->repo);
	esr_store_close(f->store);
	esr_store_close(f->memory);
	free(f);
	return 0;
}

static esr_status run(struct fixture *f, enum bank_kind kind, int64_t amount,
                      unsigned retries, esr_result *r)
{
	struct bank_command c = {.kind = kind, .amount = amount, .count = 1};

	return esr_repository_execute_with_retry(f->repo, "BankAccount", ID, IDLEN, &c,
	                                         retries, r);
}

static struct bank_state load(struct fixture *f, uint64_t *version)
{
	struct bank_state s;

	assert_int_equal(esr_repository_load(f->repo, "BankAccount", ID, IDLEN, &s,
	                                     sizeof s, version),
	                 ESR_OK);
	return s;
}

static uint64_t stream_version(struct fixture *f)
{
	esr_stream_id sid = {"BankAccount", ID, IDLEN};
	uint64_t v;

	assert_int_equal(esr_store_version(f->memory, &sid, &v), ESR_OK);
	return v;
}

/* --- the happy path --------------------------------------------------------- */

static void load_of_absent_stream_is_init_state(void **state)
{
	struct fixture *f = *state;
	uint64_t v = 99;
	struct bank_state s = load(f, &v);

	assert_int_equal(v, 0);
	assert_int_equal(s.events, 0);
	assert_int_equal(s.open, 0);
	assert_int_equal(s.init_id_len, IDLEN);
}

static void execute_appends_and_reports(void **state)
{
	struct fixture *f = *state;
	esr_result r;
	uint64_t v;
	struct bank_state s;

	assert_int_equal(run(f, BANK_OPEN, 500, 0, &r), ESR_OK);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.appended, 1);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.rejection, 0);
	assert_int_equal(esr_repository_execute(f->repo, "BankAccount", ID, IDLEN,
	                                        &(struct bank_command){BANK_MULTI, 5, 0, 0, 3},
	                                        &r),
	                 ESR_OK);
	assert_int_equal(r.version, 4);
	assert_int_equal(r.appended, 3);
	s = load(f, &v);
	assert_int_equal(v, 4);
	assert_int_equal(s.balance, 515);
	assert_int_equal(s.events, 4);
	assert_int_equal(f->wrap.checked_appends, 2); /* optimistic: every append checked */
}

static void execute_appends_and_reports_unchecked(void **state)
{
	struct fixture *f = *state;
	esr_result r;

	assert_int_equal(run(f, BANK_OPEN, 500, 0, &r), ESR_OK);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(run(f, BANK_WITHDRAW, 200, 0, &r), ESR_OK);
	assert_int_equal(r.version, 2);
	assert_int_equal(load(f, NULL).balance, 300);
	assert_int_equal(f->wrap.appends, 2);
	assert_int_equal(f->wrap.checked_appends, 0); /* unchecked: never a version check */
}

static esr_status grab_meta(void *ctx, const esr_recorded_event *rec)
{
	*(esr_metadata *)ctx = rec->event.meta;
	return ESR_OK;
}

static void events_carry_metadata(void **state)
{
	struct fixture *f = *state;
	esr_stream_id sid = {"BankAccount", ID, IDLEN};
	esr_metadata m;
	uint8_t ones[16], twos[16], zero[16] = {0};

	memset(ones, 0x11, 16);
	memset(twos, 0x22, 16);
	assert_int_equal(run(f, BANK_DEPOSIT, 1, 0, NULL), ESR_OK);
	assert_int_equal(esr_store_read(f->memory, &sid, 1, grab_meta, &m), ESR_OK);
	assert_true(m.timestamp_ns > 1600000000ULL * 1000000000ULL);
	assert_memory_equal(m.correlation_id.bytes, zero, 16);
	assert_int_equal(run(f, BANK_TAGGED, 1, 0, NULL), ESR_OK);
	assert_int_equal(esr_store_read(f->memory, &sid, 2, grab_meta, &m), ESR_OK);
	assert_memory_equal(m.correlation_id.bytes, ones, 16);
	assert_memory_equal(m.causation_id.bytes, twos, 16);
	assert_true(m.timestamp_ns != 0);
}

static void accepting_without_events_appends_nothing(void **state)
{
	struct fixture *f = *state;
	esr_result r;

	assert_int_equal(run(f, BANK_OPEN, 10, 0, NULL), ESR_OK);
	f->wrap.appends = 0;
	assert_int_equal(run(f, BANK_NOOP, 0, 0, &r), ESR_OK);
	assert_int_equal(r.appended, 0);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(f->wrap.appends, 0);
}

/* --- rejections and emitter errors: nothing appended ---------------------------- */

static void rejection_returns_code_and_appends_nothing(void **state)
{
	struct fixture *f = *state;
	esr_result r;

	assert_int_equal(run(f, BANK_OPEN, 100, 5, NULL), ESR_OK);
	f->wrap.appends = 0;
	assert_int_equal(run(f, BANK_WITHDRAW, 101, 5, &r), ESR_EREJECTED);
	assert_int_equal(r.rejection, BANK_INSUFFICIENT_FUNDS);
	assert_int_equal(r.appended, 0);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.version, 1);
	assert_int_equal(f->wrap.appends, 0);
	assert_int_equal(stream_version(f), 1);
	assert_int_equal(run(f, BANK_OPEN, 100, 5, &r), ESR_EREJECTED);
	assert_int_equal(r.rejection, BANK_ALREADY_OPEN);
}

static void emitter_errors_fail_the_command_and_append_nothing(void **state)
{
	struct fixture *f = *state;
	struct bank_command too_many = {BANK_MULTI, 1, 0, 0, ESR_APPEND_MAX + 1};
	struct bank_command most = {BANK_MULTI, 1, 0, 0, ESR_APPEND_MAX};
	esr_result r;

	assert_int_equal(run(f, BANK_OVERSIZED, 0, 5, &r), ESR_ETOOBIG);
	assert_int_equal(r.appended, 0);
	assert_int_equal(esr_repository_execute(f->repo, "BankAccount", ID, IDLEN, &too_many, &r),
	                 ESR_ETOOBIG);
	assert_int_equal(f->wrap.appends, 0);
	assert_int_equal(stream_version(f), 0);
	assert_int_equal(esr_repository_execute(f->repo, "BankAccount", ID, IDLEN, &most, &r),
	                 ESR_OK);
	assert_int_equal(r.appended, ESR_APPEND_MAX);
	/* emit outside a handler */
	assert_int_equal(esr_emit(NULL, 1, "x", 1), ESR_EINVAL);
	assert_int_equal(esr_emit_event(NULL, NULL), ESR_EINVAL);
}

/* --- optimistic conflicts ---------------------------------------------------------- */

static void retry_catches_up_and_succeeds(void **state)
{
	struct fixture *f = *state;
	esr_result r;
	uint64_t v;
	struct bank_state s;

	assert_int_equal(run(f, BANK_OPEN, 100, 0, NULL), ESR_OK);
	f->wrap.interfere = 2; /* two other writers get in first */
	assert_int_equal(run(f, BANK_WITHDRAW, 50, 5, &r), ESR_OK);
	assert_int_equal(r.attempts, 3);
	assert_int_equal(r.version, 4);
	s = load(f, &v);
	assert_int_equal(v, 4);
	assert_int_equal(s.balance, 100 + 1 + 1 - 50);
}

static void retry_decides_again_on_fresh_state(void **state)
{
	struct fixture *f = *state;
	esr_result r;

	/* Balance 100; a withdrawal of 101 is refused on stale state, but the
	 * competing deposit makes it 101 first: the retry must see that. */
	assert_int_equal(run(f, BANK_OPEN, 100, 0, NULL), ESR_OK);
	assert_int_equal(run(f, BANK_WITHDRAW, 101, 5, &r), ESR_EREJECTED);
	f->wrap.interfere = 1;
	assert_int_equal(run(f, BANK_NOOP, 0, 5, &r), ESR_OK); /* no append: no interference */
	assert_int_equal(f->wrap.interfere, 1);
	assert_int_equal(run(f, BANK_DEPOSIT, 0, 5, &r), ESR_OK);
	assert_int_equal(r.attempts, 2);
	assert_int_equal(run(f, BANK_WITHDRAW, 101, 5, &r), ESR_OK);
	assert_int_equal(load(f, NULL).balance, 0);
}

static void execute_does_not_retry(void **state)
{
	struct fixture *f = *state;
	struct bank_command c = {.kind = BANK_DEPOSIT, .amount = 7};
	esr_result r;

	assert_int_equal(run(f, BANK_OPEN, 100, 0, NULL), ESR_OK);
	f->wrap.interfere = 1;
	assert_int_equal(esr_repository_execute(f->repo, "BankAccount", ID, IDLEN, &c, &r),
	                 ESR_ECONFLICT);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.appended, 0);
	assert_int_equal(r.conflict.expected, 1);
	assert_int_equal(r.conflict.actual, 2);
	assert_int_equal(r.conflict.attempts, 1);
	assert_int_equal(stream_version(f), 2); /* the competitor's event only */
	assert_int_equal(load(f, NULL).balance, 101);
}

static void exhaustion_reports_the_conflict(void **state)
{
	struct fixture *f = *state;
	char line[ESR_CONFLICT_TEXT_MAX];
	esr_result r;

	assert_int_equal(run(f, BANK_OPEN, 100, 0, NULL), ESR_OK);
	f->wrap.interfere = 1000;
	assert_int_equal(run(f, BANK_WITHDRAW, 10, ESR_DEFAULT_MAX_RETRIES, &r), ESR_ECONFLICT);
	assert_int_equal(r.attempts, ESR_DEFAULT_MAX_RETRIES + 1);
	assert_int_equal(r.appended, 0);
	assert_string_equal(r.conflict.type, "BankAccount");
	assert_int_equal(r.conflict.id_len, IDLEN);
	assert_memory_equal(r.conflict.id, ID, IDLEN);
	assert_int_equal(esr_conflict_format(&r.conflict, line, sizeof line), ESR_OK);
	assert_string_equal(line, "esr: optimistic conflict: type=BankAccount id=acct-7 "
	                          "expected-version=6 actual-version=7 attempts=6");
	/* six competing deposits landed, our withdrawal did not */
	assert_int_equal(stream_version(f), 7);
	assert_int_equal(load(f, NULL).balance, 106);

	assert_int_equal(run(f, BANK_WITHDRAW, 10, 0, &r), ESR_ECONFLICT);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(run(f, BANK_WITHDRAW, 10, 2, &r), ESR_ECONFLICT);
	assert_int_equal(r.attempts, 3);
}

static void retry_reads_only_events_after_the_known_version(void **state)
{
	struct fixture *f = *state;
	esr_result r;
	int i;

	assert_int_equal(run(f, BANK_OPEN, 0, 0, NULL), ESR_OK);
	for (i = 0; i < 99; i++)
		assert_int_equal(run(f, BANK_DEPOSIT, 1, 0, NULL), ESR_OK);
	f->wrap.reads = f->wrap.events_read = 0;
	f->wrap.interfere = 1;
	assert_int_equal(run(f, BANK_DEPOSIT, 1, 5, &r), ESR_OK);
	assert_int_equal(r.attempts, 2);
	/* load replays 100 events; the catch-up reads the 1 competing event.
	 * A full replay on retry would have read 100 + 101. */
	assert_int_equal(f->wrap.reads, 2);
	assert_int_equal(f->wrap.events_read, 101);
	assert_int_equal(load(f, NULL).balance, 101);
}

/* --- unchecked --------------------------------------------------------------------- */

static void unchecked_never_conflicts(void **state)
{
	struct fixture *f = *state;
	esr_strategy s;
	esr_result r;
	int i;

	assert_int_equal(esr_repository_strategy(f->repo, &s), ESR_OK);
	assert_int_equal(s, ESR_UNCHECKED);
	assert_int_equal(run(f, BANK_OPEN, 100, 0, NULL), ESR_OK);
	f->wrap.interfere = 1000; /* a competing writer before every append */
	for (i = 0; i < 50; i++) {
		assert_int_equal(run(f, BANK_DEPOSIT, 1, (unsigned)i % 3, &r), ESR_OK);
		assert_int_equal(r.attempts, 1);
		assert_int_equal(esr_repository_execute(f->repo, "BankAccount", ID, IDLEN,
		                                        &(struct bank_command){BANK_DEPOSIT, 1, 0, 0, 1},
		                                        &r),
		                 ESR_OK);
	}
	assert_int_equal(f->wrap.checked_appends, 0);
	/* nothing lost: 100 competing deposits and our 100 are all there */
	assert_int_equal(stream_version(f), 1 + 200);
	assert_int_equal(load(f, NULL).balance, 300);
}

/* --- a backend that breaks its contract ----------------------------------------------- */

struct skewed_call {
	esr_append_cb done;
	void *ctx;
};

static void skew_result(void *ctx, const esr_append_result *r)
{
	struct skewed_call *c = ctx;
	esr_append_result lie = *r;

	if (lie.status == ESR_OK)
		lie.version += 3; /* claims the batch landed elsewhere */
	c->done(c->ctx, &lie);
}

static esr_status skew_append(void *impl, const esr_stream_id *sid, uint64_t expected,
                              const esr_event *ev, size_t n, esr_append_cb done, void *ctx)
{
	struct skewed_call c = {done, ctx};

	/* The memory store completes inline, so c may live on this stack. */
	return esr_store_append_async(impl, sid, expected, ev, n, skew_result, &c);
}

static esr_status skew_read(void *impl, const esr_stream_id *sid, uint64_t from,
                            esr_visit_fn visit, void *ctx)
{
	return esr_store_read(impl, sid, from, visit, ctx);
}

static esr_status skew_version(void *impl, const esr_stream_id *sid, uint64_t *v)
{
	return esr_store_version(impl, sid, v);
}

static void skew_destroy(void *impl)
{
	(void)impl;
}

static void misplaced_optimistic_append_is_reported_corrupt(void **state)
{
	static const esr_store_vtable skewed = {.vtable_version = ESR_STORE_VTABLE_VERSION,
	                                        .name = "skewed", .append = skew_append,
	                                        .read = skew_read, .version = skew_version,
	                                        .destroy = skew_destroy};
	struct fixture *f = *state;
	esr_repository *repo;
	esr_store *store;
	esr_result r;

	assert_int_equal(esr_store_create(&skewed, f->memory, &store), ESR_OK);
	assert_int_equal(esr_repository_open(store, NULL, &repo), ESR_OK);
	assert_int_equal(esr_repository_register(repo, &bank_type), ESR_OK);
	assert_int_equal(esr_repository_execute(repo, "BankAccount", ID, IDLEN,
	                                        &(struct bank_command){BANK_OPEN, 5, 0, 0, 1}, &r),
	                 ESR_ECORRUPT);
	assert_int_equal(r.appended, 0);
	esr_repository_close(repo);
	esr_store_close(store);
}

/* --- bad input ------------------------------------------------------------------------ */

static void open_and_register_refuse_bad_input(void **state)
{
	struct fixture *f = *state;
	esr_repository_config bad = {.strategy = (esr_strategy)7};
	esr_aggregate_type t = bank_type;
	esr_repository *repo = NULL;
	char name[ESR_TYPE_NAME_MAX + 2];
	esr_strategy s;
	int i;

	assert_int_equal(esr_repository_open(NULL, NULL, &repo), ESR_EINVAL);
	assert_int_equal(esr_repository_open(f->memory, NULL, NULL), ESR_EINVAL);
	assert_int_equal(esr_repository_open(f->memory, &bad, &repo), ESR_EINVAL);
	assert_null(repo);
	assert_int_equal(esr_repository_close(NULL), ESR_OK);
	assert_int_equal(esr_repository_strategy(NULL, &s), ESR_EINVAL);
	assert_int_equal(esr_repository_strategy(f->repo, NULL), ESR_EINVAL);

	assert_int_equal(esr_repository_register(NULL, &t), ESR_EINVAL);
	assert_int_equal(esr_repository_register(f->repo, NULL), ESR_EINVAL);
	assert_int_equal(esr_repository_register(f->repo, &bank_type), ESR_EEXIST);
	t.name = NULL;
	assert_int_equal(esr_repository_register(f->repo, &t), ESR_EINVAL);
	t.name = "";
	assert_int_equal(esr_repository_register(f->repo, &t), ESR_EINVAL);
	t.name = "Bank Account";
	assert_int_equal(esr_repository_register(f->repo, &t), ESR_EINVAL);
	memset(name, 'N', sizeof name);
	name[sizeof name - 1] = '\0';
	t.name = name;
	assert_int_equal(esr_repository_register(f->repo, &t), ESR_ETOOBIG);
	t.name = "Other";
	t.apply = NULL;
	assert_int_equal(esr_repository_register(f->repo, &t), ESR_EINVAL);
	t = bank_type;
	t.name = "Other";
	t.handle = NULL;
	assert_int_equal(esr_repository_register(f->repo, &t), ESR_EINVAL);
	t = bank_type;
	t.name = "Other";
	t.state_size = 0;
	assert_int_equal(esr_repository_register(f->repo, &t), ESR_EINVAL);
	t.state_size = ESR_STATE_MAX + 1;
	assert_int_equal(esr_repository_register(f->repo, &t), ESR_ETOOBIG);

	/* the registry holds ESR_TYPES_MAX types, one of them BankAccount */
	t = bank_type;
	for (i = 1; i < ESR_TYPES_MAX; i++) {
		snprintf(name, sizeof name, "Type%d", i);
		t.name = name; /* copied: reusing the buffer must be fine */
		assert_int_equal(esr_repository_register(f->repo, &t), ESR_OK);
	}
	t.name = "OneTooMany";
	assert_int_equal(esr_repository_register(f->repo, &t), ESR_ETOOBIG);
	assert_int_equal(run(f, BANK_OPEN, 1, 0, NULL), ESR_OK);
	assert_int_equal(esr_repository_execute(f->repo, "Type7", ID, IDLEN,
	                                        &(struct bank_command){BANK_OPEN, 1, 0, 0, 1}, NULL),
	                 ESR_OK);
}

static void execute_and_load_refuse_bad_input(void **state)
{
	struct fixture *f = *state;
	struct bank_command c = {.kind = BANK_DEPOSIT, .amount = 1};
	char long_id[ESR_ID_MAX + 1], long_type[ESR_TYPE_NAME_MAX + 2];
	struct bank_state s;
	esr_result r;

	memset(long_id, 'i', sizeof long_id);
	memset(long_type, 'T', sizeof long_type);
	long_type[sizeof long_type - 1] = '\0';
	memset(&r, 0xff, sizeof r);
	assert_int_equal(esr_repository_execute(NULL, "BankAccount", ID, IDLEN, &c, &r), ESR_EINVAL);
	assert_int_equal(r.attempts, 0); /* result cleared even on refusal */
	assert_int_equal(r.version, 0);
	assert_int_equal(esr_repository_execute(f->repo, NULL, ID, IDLEN, &c, &r), ESR_EINVAL);
	assert_int_equal(esr_repository_execute(f->repo, "", ID, IDLEN, &c, &r), ESR_EINVAL);
	assert_int_equal(esr_repository_execute(f->repo, long_type, ID, IDLEN, &c, &r), ESR_ETOOBIG);
	assert_int_equal(esr_repository_execute(f->repo, "Unknown", ID, IDLEN, &c, &r), ESR_ENOTYPE);
	assert_int_equal(esr_repository_execute(f->repo, "BankAccount", NULL, 3, &c, &r), ESR_EINVAL);
	assert_int_equal(esr_repository_execute(f->repo, "BankAccount", ID, 0, &c, &r), ESR_EINVAL);
	assert_int_equal(esr_repository_execute(f->repo, "BankAccount", long_id, sizeof long_id, &c, &r),
	                 ESR_ETOOBIG);
	assert_int_equal(esr_repository_execute_with_retry(f->repo, "Unknown", ID, IDLEN, &c, 5, &r),
	                 ESR_ENOTYPE);
	assert_int_equal(esr_repository_execute(f->repo, "BankAccount", long_id, ESR_ID_MAX, &c, &r),
	                 ESR_OK);

	assert_int_equal(esr_repository_load(NULL, "BankAccount", ID, IDLEN, &s, sizeof s, NULL), ESR_EINVAL);
	assert_int_equal(esr_repository_load(f->repo, "Unknown", ID, IDLEN, &s, sizeof s, NULL), ESR_ENOTYPE);
	assert_int_equal(esr_repository_load(f->repo, "BankAccount", ID, IDLEN, NULL, sizeof s, NULL), ESR_EINVAL);
	assert_int_equal(esr_repository_load(f->repo, "BankAccount", ID, IDLEN, &s, sizeof s - 1, NULL), ESR_EINVAL);
	assert_int_equal(esr_repository_load(f->repo, "BankAccount", ID, 0, &s, sizeof s, NULL), ESR_EINVAL);
	assert_int_equal(esr_repository_load(f->repo, "BankAccount", long_id, sizeof long_id, &s, sizeof s, NULL),
	                 ESR_ETOOBIG);
	/* nothing of the refused calls reached the store */
	assert_int_equal(f->wrap.appends, 1);
	assert_int_equal(stream_version(f), 0);
}

/* A type whose commands carry nothing: handle() counts NULL commands. */
static void tick_apply(void *state, const esr_event *ev)
{
	(void)ev;
	(*(uint32_t *)state)++;
}

static int tick_handle(const void *state, const void *command, esr_emitter *em)
{
	(void)state;
	return command != NULL ? 1 : esr_emit(em, 1, NULL, 0);
}

/* The same rule as the runtime's: a NULL command is handed to handle() as is. */
static void null_commands_reach_the_handler(void **state)
{
	static const esr_aggregate_type tick = {
		.name = "Tick", .state_size = sizeof(uint32_t),
		.apply = tick_apply, .handle = tick_handle,
	};
	struct fixture *f = *state;
	uint32_t ticks = 0;
	esr_result r;

	assert_int_equal(esr_repository_register(f->repo, &tick), ESR_OK);
	assert_int_equal(esr_repository_execute(f->repo, "Tick", ID, IDLEN, NULL, &r), ESR_OK);
	assert_int_equal(r.version, 1);
	assert_int_equal(esr_repository_execute_with_retry(f->repo, "Tick", ID, IDLEN, NULL, 3, &r),
	                 ESR_OK);
	assert_int_equal(r.version, 2);
	assert_int_equal(esr_repository_load(f->repo, "Tick", ID, IDLEN, &ticks, sizeof ticks, NULL),
	                 ESR_OK);
	assert_int_equal(ticks, 2);
}

/* --- several commands as one append ------------------------------------------------ */

/* Each on the state the ones before it left; one append; its own outcome. */
static void execute_many_is_one_append(void **state)
{
	struct fixture *f = *state;
	struct bank_command c[] = {
		{.kind = BANK_OPEN},
		{.kind = BANK_DEPOSIT, .amount = 100},
		{.kind = BANK_WITHDRAW, .amount = 300},
		{.kind = BANK_WITHDRAW, .amount = 50},
	};
	const void *cmds[] = {&c[0], &c[1], &c[2], &c[3]};
	esr_status st[4];
	esr_result r[4];
	uint64_t v;

	assert_int_equal(esr_repository_execute_many(f->repo, "BankAccount", ID, IDLEN, cmds, 4, 0,
	                                             st, r),
	                 ESR_OK);
	assert_int_equal(st[0], ESR_OK);
	assert_int_equal(r[0].version, 1);
	assert_int_equal(st[1], ESR_OK);
	assert_int_equal(r[1].version, 2);
	assert_int_equal(st[2], ESR_EREJECTED);
	assert_int_equal(r[2].rejection, BANK_INSUFFICIENT_FUNDS);
	assert_int_equal(r[2].version, 2);
	assert_int_equal(st[3], ESR_OK);
	assert_int_equal(r[3].version, 3);
	assert_int_equal(r[3].appended, 1);
	assert_int_equal(f->wrap.appends, 1);
	assert_int_equal(load(f, &v).balance, 50);
	assert_int_equal(v, 3);
}

/* A conflict decides them all again; without retries every dependent one fails. */
static void execute_many_retries_as_a_whole(void **state)
{
	struct fixture *f = *state;
	struct bank_command dep = {.kind = BANK_DEPOSIT, .amount = 10},
	                    wd = {.kind = BANK_WITHDRAW, .amount = 11};
	const void *cmds[] = {&dep, &wd};
	esr_status st[2];
	esr_result r[2];

	assert_int_equal(run(f, BANK_OPEN, 0, 0, NULL), ESR_OK);
	f->wrap.interfere = 1;
	assert_int_equal(esr_repository_execute_many(f->repo, "BankAccount", ID, IDLEN, cmds, 2, 0,
	                                             st, r),
	                 ESR_OK);
	assert_int_equal(st[0], ESR_ECONFLICT);
	assert_int_equal(st[1], ESR_ECONFLICT); /* refused only because of the deposit */
	assert_int_equal(r[1].conflict.actual, 2);
	f->wrap.interfere = 1;
	assert_int_equal(esr_repository_execute_many(f->repo, "BankAccount", ID, IDLEN, cmds, 2, 3,
	                                             st, r),
	                 ESR_OK);
	assert_int_equal(st[0], ESR_OK);
	assert_int_equal(st[1], ESR_OK); /* the other writer's 1 makes 11 */
	assert_int_equal(r[1].attempts, 2);
	assert_int_equal(r[1].version, 5);
	assert_int_equal(esr_repository_execute_many(NULL, "BankAccount", ID, IDLEN, cmds, 2, 0,
	                                             st, r),
	                 ESR_EINVAL);
	assert_int_equal(esr_repository_execute_many(f->repo, "BankAccount", ID, IDLEN, NULL, 2,
	                                             0, st, r),
	                 ESR_EINVAL);
	assert_int_equal(esr_repository_execute_many(f->repo, "BankAccount", ID, IDLEN, cmds, 2, 0,
	                                             NULL, r),
	                 ESR_EINVAL);
	assert_int_equal(esr_repository_execute_many(f->repo, "Nope", ID, IDLEN, cmds, 2, 0, st,
	                                             r),
	                 ESR_ENOTYPE);
	assert_int_equal(esr_repository_execute_many(f->repo, "BankAccount", ID, IDLEN, cmds, 0, 0,
	                                             st, NULL),
	                 ESR_OK);
	assert_int_equal(stream_version(f), 5);
}

int main(void)
{
#define O(name) cmocka_unit_test_setup_teardown(name, setup_optimistic, teardown)
#define U(name) cmocka_unit_test_setup_teardown(name, setup_unchecked, teardown)
	const struct CMUnitTest tests[] = {
		O(load_of_absent_stream_is_init_state),
		O(execute_appends_and_reports),
		U(execute_appends_and_reports_unchecked),
		O(events_carry_metadata),
		O(accepting_without_events_appends_nothing),
		O(rejection_returns_code_and_appends_nothing),
		U(rejection_returns_code_and_appends_nothing),
		O(emitter_errors_fail_the_command_and_append_nothing),
		O(retry_catches_up_and_succeeds),
		O(retry_decides_again_on_fresh_state),
		O(execute_does_not_retry),
		O(exhaustion_reports_the_conflict),
		O(retry_reads_only_events_after_the_known_version),
		U(unchecked_never_conflicts),
		O(misplaced_optimistic_append_is_reported_corrupt),
		O(open_and_register_refuse_bad_input),
		O(execute_and_load_refuse_bad_input),
		O(null_commands_reach_the_handler),
		O(execute_many_is_one_append),
		O(execute_many_retries_as_a_whole),
		U(execute_many_is_one_append),
	};
#undef O
#undef U
	return cmocka_run_group_tests_name("repository", tests, NULL, NULL);
}
