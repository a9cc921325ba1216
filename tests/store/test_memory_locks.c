/*
 * tests/store/test_memory_locks.c: what the memory store does while it holds a
 * lock. Appends to different streams never wait for each other, even while
 * one of them allocates; a snapshot load's callback may call the store.
 *
 * Linked with --wrap=calloc: an armed gate holds the allocation of a block
 * of the global order's index until the test opens it, the way a slow
 * allocator or a page fault would.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include <esr/esr.h>

void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);

#define ORDER_BLOCK 65536 /* store/memory/memory_internal.h's ESR__ORDER_BLOCK */
#define WAIT_MS 5000

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_armed, gate_held, gate_open;

void *__wrap_calloc(size_t n, size_t size)
{
	if (n == ORDER_BLOCK && size == sizeof(void *)) {
		pthread_mutex_lock(&gate_lock);
		if (gate_armed) {
			gate_held = 1;
			pthread_cond_broadcast(&gate_cond);
			while (!gate_open)
				pthread_cond_wait(&gate_cond, &gate_lock);
		}
		pthread_mutex_unlock(&gate_lock);
	}
	return __real_calloc(n, size);
}

static void deadline(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Wait for *flag or *other under gate_lock, at most WAIT_MS. Returns
 * whether one is set. */
static int wait_either(int *flag, int *other)
{
	struct timespec until;
	int rc = 0;

	deadline(&until, WAIT_MS);
	pthread_mutex_lock(&gate_lock);
	while (!*flag && !*other && rc == 0)
		rc = pthread_cond_timedwait(&gate_cond, &gate_lock, &until);
	rc = *flag || *other;
	pthread_mutex_unlock(&gate_lock);
	return rc;
}

static int wait_flag(int *flag)
{
	return wait_either(flag, flag);
}

struct appender {
	esr_store *store;
	const char *id;
	size_t n;
	esr_status st;
	int done;
};

static void *append_main(void *arg)
{
	struct appender *a = arg;
	esr_stream_id sid = {"Acct", a->id, 1};
	esr_event ev[64];
	size_t i;

	for (i = 0; i < a->n; i++)
		ev[i] = (esr_event){.type = 1};
	a->st = esr_store_append(a->store, &sid, ESR_VERSION_ANY, ev, a->n, NULL);
	pthread_mutex_lock(&gate_lock);
	a->done = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	return NULL;
}

/* Append to "fill" until the head is at `head` (ungated: the gate is off). */
static void fill_to(esr_store *s, uint64_t head)
{
	esr_stream_id sid = {"Fill", "f", 1};
	esr_event ev[64];
	uint64_t at = 0;
	size_t i, n;

	for (i = 0; i < 64; i++)
		ev[i] = (esr_event){.type = 1};
	assert_int_equal(esr_store_head(s, &at), ESR_OK);
	for (; at < head; at += n) {
		n = head - at < 64 ? (size_t)(head - at) : 64;
		assert_int_equal(esr_store_append(s, &sid, ESR_VERSION_ANY, ev, n, NULL), ESR_OK);
	}
}

/* With the log at `from`, appender a takes 64 positions while the gate holds
 * any allocation of an index block; an append to another stream must
 * complete. Returns whether a's append allocated one. */
static int gated_round(esr_store *s, uint64_t from)
{
	struct appender a = {s, "a", 64, ESR_EIO, 0}, b = {s, "b", 1, ESR_EIO, 0};
	pthread_t ta, tb;
	uint64_t head = 0;
	int b_done, held;

	fill_to(s, from);
	gate_armed = 1;
	assert_int_equal(pthread_create(&ta, NULL, append_main, &a), 0);
	assert_true(wait_either(&gate_held, &a.done));
	assert_int_equal(pthread_create(&tb, NULL, append_main, &b), 0);
	b_done = wait_flag(&b.done);
	pthread_mutex_lock(&gate_lock);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	held = gate_held;
	gate_armed = gate_held = gate_open = 0;
	assert_true(b_done); /* b did not wait for a's allocation */
	assert_int_equal(a.st, ESR_OK);
	assert_int_equal(b.st, ESR_OK);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, from + 65);
	return held;
}

/* A block of the index holds 65536 positions (store/memory/memory_all.c).
 * Round one crosses into the second block, made ahead while filling; round
 * two crosses the second block's middle, where its appender makes the third
 * block, after its own events are readable. */
static void an_allocation_holds_up_no_other_stream(void **state)
{
	const uint64_t block = ORDER_BLOCK;
	esr_store *s;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	gated_round(s, block - 64);
	assert_true(gated_round(s, block + block / 2 - 64)); /* it did allocate */
	esr_store_close(s);
}

struct migrate {
	esr_store *store;
	esr_stream_id sid;
	esr_status saved;
};

/* A snapshot callback that migrates what it loaded: saves it in format 2. */
static esr_status migrate_snapshot(void *ctx, const esr_snapshot *snap)
{
	struct migrate *m = ctx;
	esr_snapshot next = {snap->version, 2, snap->len, snap->data};

	m->saved = esr_store_snapshot_save(m->store, &m->sid, &next);
	return ESR_OK;
}

struct loader {
	struct migrate *m;
	esr_status st;
	int done;
};

static void *load_main(void *arg)
{
	struct loader *l = arg;

	l->st = esr_store_snapshot_load(l->m->store, &l->m->sid, migrate_snapshot, l->m);
	pthread_mutex_lock(&gate_lock);
	l->done = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	return NULL;
}

static esr_status keep_format(void *ctx, const esr_snapshot *snap)
{
	*(uint32_t *)ctx = snap->format;
	return ESR_OK;
}

static void a_snapshot_callback_may_call_the_store(void **state)
{
	struct migrate m = {NULL, {"Acct", "a", 1}, ESR_EIO};
	struct loader l = {&m, ESR_EIO, 0};
	esr_event ev = {.type = 1};
	esr_snapshot first = {1, 1, 3, "abc"};
	uint32_t format = 0;
	pthread_t t;

	(void)state;
	assert_int_equal(esr_memory_store_open(&m.store), ESR_OK);
	assert_int_equal(esr_store_append(m.store, &m.sid, 0, &ev, 1, NULL), ESR_OK);
	assert_int_equal(esr_store_snapshot_save(m.store, &m.sid, &first), ESR_OK);
	assert_int_equal(pthread_create(&t, NULL, load_main, &l), 0);
	if (!wait_flag(&l.done))
		fail_msg("a snapshot load whose callback saves a snapshot never returned");
	pthread_join(t, NULL);
	assert_int_equal(l.st, ESR_OK);
	assert_int_equal(m.saved, ESR_OK);
	assert_int_equal(esr_store_snapshot_load(m.store, &m.sid, keep_format, &format), ESR_OK);
	assert_int_equal(format, 2);
	esr_store_close(m.store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_allocation_holds_up_no_other_stream),
		cmocka_unit_test(a_snapshot_callback_may_call_the_store),
	};

	return cmocka_run_group_tests_name("memory store: what waits for a lock", tests, NULL,
	                                   NULL);
}
