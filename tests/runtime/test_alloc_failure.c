/*
 * tests/runtime/test_alloc_failure.c: every allocation the library makes can fail,
 * and each failure returns ESR_ENOMEM, stores nothing and leaks nothing.
 *
 * The test is linked with --wrap for malloc, calloc, realloc, posix_memalign
 * and free, which reroutes the static library's calls through the wrappers
 * below: they count live blocks and fail the k-th allocation on request. Each
 * test runs an operation once for every k until it gets through untouched.
 * The memory store's chunks come from its own arena (mapped memory, freed
 * only with the store), so esr__arena_alloc is wrapped too: it can fail like
 * the others, and is not counted as live.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bank.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);
void __real_free(void *p);
struct esr__arena;
void *__real_esr__arena_alloc(struct esr__arena *a, size_t n);
void *__wrap_esr__arena_alloc(struct esr__arena *a, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
int __wrap_posix_memalign(void **p, size_t align, size_t n);
void __wrap_free(void *p);

static long live;      /* blocks allocated and not yet freed */
static long countdown; /* > 0: the allocation that brings it to 0 fails */
static int failed;     /* the armed failure happened */

static int fail_now(void)
{
	if (countdown > 0 && --countdown == 0) {
		failed = 1;
		return 1;
	}
	return 0;
}

void *__wrap_malloc(size_t n)
{
	void *p = fail_now() ? NULL : __real_malloc(n);

	live += p != NULL;
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	void *p = fail_now() ? NULL : __real_calloc(n, size);

	live += p != NULL;
	return p;
}

void *__wrap_realloc(void *p, size_t n)
{
	void *q = fail_now() ? NULL : __real_realloc(p, n);

	live += p == NULL && q != NULL;
	return q;
}

int __wrap_posix_memalign(void **p, size_t align, size_t n)
{
	int rc = fail_now() ? 12 /* ENOMEM */ : __real_posix_memalign(p, align, n);

	live += rc == 0;
	return rc;
}

void *__wrap_esr__arena_alloc(struct esr__arena *a, size_t n)
{
	return fail_now() ? NULL : __real_esr__arena_alloc(a, n);
}

void __wrap_free(void *p)
{
	live -= p != NULL;
	__real_free(p);
}

static void arm(long k)
{
	countdown = k;
	failed = 0;
}

static void disarm(void)
{
	countdown = 0;
}

static uint64_t version_of(esr_store *s, const esr_stream_id *sid)
{
	uint64_t v;

	assert_int_equal(esr_store_version(s, sid, &v), ESR_OK);
	return v;
}

static void store_open_fails_cleanly(void **state)
{
	long k, base = live;
	esr_store *s, *const untouched = (esr_store *)&k;
	esr_status st;

	(void)state;
	for (k = 1;; k++) {
		s = untouched;
		arm(k);
		st = esr_memory_store_open(&s);
		disarm();
		if (!failed) {
			assert_int_equal(st, ESR_OK);
			esr_store_close(s);
			assert_int_equal(live, base);
			break;
		}
		assert_int_equal(st, ESR_ENOMEM);
		assert_ptr_equal(s, untouched); /* out is written only on success */
		assert_int_equal(live, base);
	}
	assert_true(k > 2); /* the store does allocate more than once */
}

/* Appends 3 events to a stream already holding `existing` (the memory store's
 * first chunk holds 2, so existing = 2 needs a new chunk, and so does the new
 * stream's third event). The first
 * payload is too long to live in its slot, so the batch needs a payload block
 * too; the others are inline. */
static void append_fails_cleanly(uint64_t existing)
{
	esr_stream_id sid = {"Account", "a", 1};
	static const char big[] = "a payload longer than the inline slot space";
	esr_event ev[3] = {{.type = 1, .payload = big, .payload_len = sizeof big},
	                   {.type = 2},
	                   {.type = 3, .payload = "q", .payload_len = 1}};
	long k, base = live, failures = 0, before;
	esr_append_result r;
	esr_store *s;
	esr_status st;

	for (k = 1;; k++) {
		assert_int_equal(esr_memory_store_open(&s), ESR_OK);
		if (existing)
			assert_int_equal(esr_store_append(s, &sid, 0, ev, existing, NULL), ESR_OK);
		before = live;
		arm(k);
		st = esr_store_append(s, &sid, existing, ev, 3, &r);
		disarm();
		if (failed) {
			failures++;
			/* nothing retained either, not even an empty new stream
			 * (a chunk linked for later versions may stay: it is the
			 * stream's, and the next append uses it) */
			if (existing == 0)
				assert_int_equal(live, before);
			assert_int_equal(st, ESR_ENOMEM);
			assert_int_equal(r.status, ESR_ENOMEM);
			assert_int_equal(version_of(s, &sid), existing);
			/* and the store still works */
			assert_int_equal(esr_store_append(s, &sid, existing, ev, 3, NULL), ESR_OK);
		} else {
			assert_int_equal(st, ESR_OK);
		}
		assert_int_equal(version_of(s, &sid), existing + 3);
		esr_store_close(s);
		assert_int_equal(live, base);
		if (!failed)
			break;
	}
	assert_true(failures >= 2);
}

static void append_to_new_stream_fails_cleanly(void **state)
{
	(void)state;
	append_fails_cleanly(0);
}

static void append_needing_a_new_chunk_fails_cleanly(void **state)
{
	(void)state;
	append_fails_cleanly(2);
}

static void execute_fails_cleanly(void **state)
{
	struct bank_command open = {.kind = BANK_OPEN, .amount = 10};
	struct bank_command multi = {.kind = BANK_MULTI, .amount = 1, .count = 9};
	esr_stream_id sid = {"BankAccount", "acct", 4};
	long k, base = live, failures = 0;
	esr_repository *repo;
	esr_store *s;
	esr_result r;
	esr_status st;

	(void)state;
	for (k = 1;; k++) {
		assert_int_equal(esr_memory_store_open(&s), ESR_OK);
		assert_int_equal(esr_repository_open(s, NULL, &repo), ESR_OK);
		assert_int_equal(esr_repository_register(repo, &bank_type), ESR_OK);
		assert_int_equal(esr_repository_execute(repo, "BankAccount", "acct", 4, &open, NULL),
		                 ESR_OK);
		arm(k);
		st = esr_repository_execute_with_retry(repo, "BankAccount", "acct", 4, &multi, 5, &r);
		disarm();
		if (failed) {
			failures++;
			assert_int_equal(st, ESR_ENOMEM);
			assert_int_equal(r.appended, 0);
			assert_int_equal(version_of(s, &sid), 1);
		} else {
			assert_int_equal(st, ESR_OK);
			assert_int_equal(version_of(s, &sid), 10);
		}
		esr_repository_close(repo);
		esr_store_close(s);
		assert_int_equal(live, base);
		if (!failed)
			break;
	}
	assert_true(failures >= 4); /* state, emitter arrays, payload bytes, store */
}

static void repository_open_fails_cleanly(void **state)
{
	esr_repository *repo = NULL;
	long base = live;
	esr_store *s;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	arm(1);
	assert_int_equal(esr_repository_open(s, NULL, &repo), ESR_ENOMEM);
	disarm();
	assert_null(repo);
	esr_store_close(s);
	assert_int_equal(live, base);
}

/* Every allocation of a start, failed in turn: the partial start is undone
 * (threads joined, nothing left allocated) and the handle is not written.
 * No janitor: its thread allocates its epoch record by itself, at a moment
 * of its own, and the countdown is for this thread's allocations. Two
 * workers, so that a start fails with one worker already running. */
static void runtime_start_fails_cleanly(void **state)
{
	long k, base = live, failures = 0;
	esr_runtime *rt, *const untouched = (esr_runtime *)&k;
	esr_runtime_config cfg;
	esr_store *s;
	esr_status st;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	base = live;
	assert_int_equal(esr_runtime_config_default(&cfg), ESR_OK);
	cfg.workers = 2;
	cfg.passivate_ms = 0;
	cfg.snapshot_every = 10; /* the snapshot thread starts too */
	for (k = 1;; k++) {
		rt = untouched;
		arm(k);
		st = esr_runtime_start(&cfg, s, &rt);
		disarm();
		if (!failed) {
			assert_int_equal(st, ESR_OK);
			assert_int_equal(esr_runtime_destroy(rt), ESR_OK);
			assert_int_equal(live, base);
			break;
		}
		failures++;
		assert_int_equal(st, ESR_ENOMEM);
		assert_ptr_equal(rt, untouched);
		assert_int_equal(live, base);
	}
	assert_true(failures >= 4); /* handle, registry, each worker's emitter */
	esr_store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(store_open_fails_cleanly),
		cmocka_unit_test(append_to_new_stream_fails_cleanly),
		cmocka_unit_test(append_needing_a_new_chunk_fails_cleanly),
		cmocka_unit_test(execute_fails_cleanly),
		cmocka_unit_test(repository_open_fails_cleanly),
		cmocka_unit_test(runtime_start_fails_cleanly),
	};
	return cmocka_run_group_tests_name("allocation failure", tests, NULL, NULL);
}
