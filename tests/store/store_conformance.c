/*
 * tests/store/store_conformance.c: what every store backend must do (see
 * esr/store.h). Each test gets a fresh store from the backend under test.
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

#include <cmocka.h>

#include "store/store_internal.h" /* the resolved-append path the runtime uses */
#include "store_conformance.h"

static const struct store_backend *backend;

int conformance_thread_failures;

int conformance_open(void **state)
{
	esr_store *s = NULL;

	if (backend->open(backend->arg, &s) != ESR_OK)
		return -1;
	*state = s;
	return 0;
}

int conformance_close(void **state)
{
	esr_store_close(*state);
	return 0;
}

static esr_stream_id stream_of(const char *type, const char *id)
{
	return (esr_stream_id){.type = type, .id = id, .id_len = strlen(id)};
}

/* --- reading back ------------------------------------------------------- */

struct copy {
	uint32_t type;
	uint32_t len;
	uint64_t version;
	esr_metadata meta;
	uint8_t payload[64];
};

struct collected {
	struct copy *events;
	size_t count, cap;
	size_t stop_after; /* 0: never stop */
};

static esr_status collect(void *ctx, const esr_recorded_event *rec)
{
	struct collected *c = ctx;
	struct copy *e;

	if (c->stop_after && c->count == c->stop_after)
		return ESR_ECANCELED;
	if (c->count == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->events = realloc(c->events, c->cap * sizeof *c->events);
		assert_non_null(c->events);
	}
	e = &c->events[c->count++];
	memset(e, 0, sizeof *e);
	e->type = rec->event.type;
	e->len = rec->event.payload_len;
	e->version = rec->version;
	e->meta = rec->event.meta;
	if (rec->event.payload_len)
		memcpy(e->payload, rec->event.payload,
		       rec->event.payload_len < 64 ? rec->event.payload_len : 64);
	return ESR_OK;
}

static struct collected read_all(esr_store *s, const esr_stream_id *sid, uint64_t from)
{
	struct collected c = {0};

	assert_int_equal(esr_store_read(s, sid, from, collect, &c), ESR_OK);
	return c;
}

static uint64_t version_of(esr_store *s, const esr_stream_id *sid)
{
	uint64_t v = 12345;

	assert_int_equal(esr_store_version(s, sid, &v), ESR_OK);
	return v;
}

/* Append `n` events typed first..first+n-1, payload = the type as text. */
static esr_status append_n(esr_store *s, const esr_stream_id *sid, uint64_t expected,
                           uint32_t first, size_t n, esr_append_result *r)
{
	char text[ESR_APPEND_MAX][12];
	esr_event ev[ESR_APPEND_MAX];
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(text[i], sizeof text[i], "%" PRIu32, first + (uint32_t)i);
		ev[i] = (esr_event){.type = first + (uint32_t)i,
		                    .payload = text[i],
		                    .payload_len = (uint32_t)strlen(text[i])};
	}
	return esr_store_append(s, sid, expected, ev, n, r);
}

/* --- versions ------------------------------------------------------------ */

static void absent_stream_is_empty_at_version_0(void **state)
{
	esr_stream_id sid = stream_of("Account", "nobody");
	struct collected c;

	assert_int_equal(version_of(*state, &sid), 0);
	c = read_all(*state, &sid, 0);
	assert_int_equal(c.count, 0);
}

static void versions_start_at_1_and_stay_contiguous(void **state)
{
	esr_stream_id sid = stream_of("Account", "a-1");
	esr_append_result r;
	struct collected c;
	size_t i;

	assert_int_equal(append_n(*state, &sid, 0, 1, 1, &r), ESR_OK);
	assert_int_equal(r.status, ESR_OK);
	assert_int_equal(r.version, 1);
	assert_int_equal(append_n(*state, &sid, 1, 2, 2, &r), ESR_OK);
	assert_int_equal(r.version, 3);
	assert_int_equal(append_n(*state, &sid, 3, 4, 3, &r), ESR_OK);
	assert_int_equal(r.version, 6);
	assert_int_equal(version_of(*state, &sid), 6);
	c = read_all(*state, &sid, 1);
	assert_int_equal(c.count, 6);
	for (i = 0; i < 6; i++) {
		char want[12];
		snprintf(want, sizeof want, "%zu", i + 1);
		assert_int_equal(c.events[i].version, i + 1);
		assert_int_equal(c.events[i].type, i + 1);
		assert_int_equal(c.events[i].len, strlen(want));
		assert_memory_equal(c.events[i].payload, want, strlen(want));
	}
	free(c.events);
}

/* Ids with an empty, a short and a long payload, one id of the two alone,
 * and neither: each event reads back as it was appended. */
static void metadata_and_empty_payloads_round_trip(void **state)
{
	static const char long_payload[] = "a payload longer than any slot keeps inline";
	esr_stream_id sid = stream_of("Order", "o-1");
	esr_event ev[5] = {{.type = 7}, {.type = 8, .payload = "x", .payload_len = 1},
	                   {.type = 9, .payload = "yz", .payload_len = 2},
	                   {.type = 10, .payload = long_payload, .payload_len = sizeof long_payload},
	                   {.type = 11, .payload = long_payload, .payload_len = sizeof long_payload}};
	struct collected c;
	size_t i;

	memset(ev[0].meta.correlation_id.bytes, 0xab, 16);
	memset(ev[0].meta.causation_id.bytes, 0xcd, 16);
	ev[0].meta.timestamp_ns = 1700000000123456789ULL;
	ev[1].meta.timestamp_ns = 42;
	ev[2].meta.causation_id.bytes[15] = 1;
	ev[3].meta.correlation_id.bytes[0] = 2;
	ev[3].meta.timestamp_ns = 43;
	assert_int_equal(esr_store_append(*state, &sid, 0, ev, 5, NULL), ESR_OK);
	c = read_all(*state, &sid, 0);
	assert_int_equal(c.count, 5);
	assert_int_equal(c.events[0].len, 0);
	for (i = 0; i < 5; i++) {
		assert_int_equal(c.events[i].type, ev[i].type);
		assert_memory_equal(&c.events[i].meta, &ev[i].meta, sizeof ev[i].meta);
		assert_int_equal(c.events[i].len, ev[i].payload_len);
		if (ev[i].payload_len != 0)
			assert_memory_equal(c.events[i].payload, ev[i].payload, ev[i].payload_len);
	}
	free(c.events);
}

static void payloads_are_copied_at_append(void **state)
{
	esr_stream_id sid = stream_of("Order", "o-2");
	char buf[8] = "before";
	esr_event ev = {.type = 1, .payload = buf, .payload_len = 6};
	struct collected c;

	assert_int_equal(esr_store_append(*state, &sid, ESR_VERSION_ANY, &ev, 1, NULL),
	                 ESR_OK);
	memcpy(buf, "AFTER!", 6);
	c = read_all(*state, &sid, 0);
	assert_memory_equal(c.events[0].payload, "before", 6);
	free(c.events);
}

/* --- optimistic checks ------------------------------------------------------ */

static void stale_expected_version_conflicts_with_actual(void **state)
{
	esr_stream_id sid = stream_of("Account", "a-2");
	esr_append_result r;
	struct collected c;

	assert_int_equal(append_n(*state, &sid, 0, 1, 3, &r), ESR_OK);
	/* behind */
	assert_int_equal(append_n(*state, &sid, 2, 100, 2, &r), ESR_ECONFLICT);
	assert_int_equal(r.status, ESR_ECONFLICT);
	assert_int_equal(r.version, 3);
	/* ahead */
	assert_int_equal(append_n(*state, &sid, 5, 100, 1, &r), ESR_ECONFLICT);
	assert_int_equal(r.version, 3);
	/* nothing of either landed */
	assert_int_equal(version_of(*state, &sid), 3);
	c = read_all(*state, &sid, 0);
	assert_int_equal(c.count, 3);
	assert_int_equal(c.events[2].type, 3);
	free(c.events);
}

static void absent_stream_conflicts_unless_expected_0(void **state)
{
	esr_stream_id sid = stream_of("Account", "a-3");
	esr_append_result r;

	assert_int_equal(append_n(*state, &sid, 1, 1, 1, &r), ESR_ECONFLICT);
	assert_int_equal(r.version, 0);
	assert_int_equal(version_of(*state, &sid), 0);
	assert_int_equal(append_n(*state, &sid, 0, 1, 1, &r), ESR_OK);
	assert_int_equal(r.version, 1);
	/* expected 0 on an existing stream is a conflict too */
	assert_int_equal(append_n(*state, &sid, 0, 1, 1, &r), ESR_ECONFLICT);
	assert_int_equal(r.version, 1);
}

/*
 * ESR_VERSION_ANY (UINT64_MAX) alone means "any version". Every other value
 * is an exact version, even one above INT64_MAX that no stream can reach:
 * it conflicts with the actual version and stores nothing.
 */
static void only_version_any_skips_the_check(void **state)
{
	static const uint64_t huge[] = {(uint64_t)INT64_MAX + 1, (uint64_t)INT64_MAX + 2,
	                                UINT64_MAX - 1};
	esr_stream_id sid = stream_of("Account", "a-huge");
	esr_append_result r;
	struct collected c;
	size_t i;

	for (i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		assert_int_equal(append_n(*state, &sid, huge[i], 1, 1, &r), ESR_ECONFLICT);
		assert_int_equal(r.version, 0);
	}
	assert_int_equal(version_of(*state, &sid), 0);
	assert_int_equal(append_n(*state, &sid, 0, 1, 2, &r), ESR_OK);
	for (i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		assert_int_equal(append_n(*state, &sid, huge[i], 10, 1, &r), ESR_ECONFLICT);
		assert_int_equal(r.version, 2);
	}
	assert_int_equal(version_of(*state, &sid), 2);
	c = read_all(*state, &sid, 0);
	assert_int_equal(c.count, 2);
	assert_int_equal(c.events[1].type, 2);
	free(c.events);
}

static void any_version_appends_at_the_end(void **state)
{
	esr_stream_id sid = stream_of("Account", "a-4");
	esr_append_result r;
	struct collected c;

	assert_int_equal(append_n(*state, &sid, ESR_VERSION_ANY, 1, 2, &r), ESR_OK);
	assert_int_equal(r.version, 2);
	assert_int_equal(append_n(*state, &sid, ESR_VERSION_ANY, 3, 1, &r), ESR_OK);
	assert_int_equal(r.version, 3);
	c = read_all(*state, &sid, 0);
	assert_int_equal(c.count, 3);
	assert_int_equal(c.events[2].type, 3);
	assert_int_equal(c.events[2].version, 3);
	free(c.events);
}

/* --- reading ----------------------------------------------------------------- */

static void reads_start_at_any_version(void **state)
{
	esr_stream_id sid = stream_of("Account", "a-5");
	uint64_t from;
	struct collected c;

	assert_int_equal(append_n(*state, &sid, 0, 1, 10, NULL), ESR_OK);
	for (from = 0; from <= 12; from++) {
		uint64_t first = from ? from : 1;
		c = read_all(*state, &sid, from);
		assert_int_equal(c.count, first <= 10 ? 11 - first : 0);
		if (c.count)
			assert_int_equal(c.events[0].version, first);
		free(c.events);
	}
	c = read_all(*state, &sid, UINT64_MAX - 1);
	assert_int_equal(c.count, 0);
}

static void visitor_can_stop_a_read(void **state)
{
	esr_stream_id sid = stream_of("Account", "a-6");
	struct collected c = {.stop_after = 3};

	assert_int_equal(append_n(*state, &sid, 0, 1, 10, NULL), ESR_OK);
	assert_int_equal(esr_store_read(*state, &sid, 1, collect, &c), ESR_ECANCELED);
	assert_int_equal(c.count, 3);
	free(c.events);
}

static void long_streams_cross_internal_boundaries(void **state)
{
	esr_stream_id sid = stream_of("Counter", "long");
	uint64_t v = 0, total = 0;
	struct collected c;
	size_t n = 1;

	/* Batches of growing size, so batches straddle wherever a backend
	 * splits its storage. 140 000 events passes 2^17. */
	while (total < 140000) {
		esr_append_result r;
		assert_int_equal(append_n(*state, &sid, v, (uint32_t)total + 1, n, &r), ESR_OK);
		total += n;
		v = r.version;
		assert_int_equal(v, total);
		n = n % 997 + 1;
	}
	c = read_all(*state, &sid, 1);
	assert_int_equal(c.count, total);
	for (v = 0; v < total; v++) {
		assert_int_equal(c.events[v].version, v + 1);
		assert_int_equal(c.events[v].type, v + 1);
	}
	free(c.events);
	c = read_all(*state, &sid, total - 5);
	assert_int_equal(c.count, 6);
	assert_int_equal(c.events[0].type, total - 5);
	free(c.events);
}

/* --- many streams -------------------------------------------------------------- */

static void many_streams_are_independent(void **state)
{
	enum { STREAMS = 20000 };
	char id[32];
	unsigned i;

	for (i = 0; i < STREAMS; i++) {
		esr_stream_id sid;
		snprintf(id, sizeof id, "acct-%u", i);
		sid = stream_of("Account", id);
		assert_int_equal(append_n(*state, &sid, 0, i, i % 3 + 1, NULL), ESR_OK);
	}
	for (i = 0; i < STREAMS; i++) {
		esr_stream_id sid;
		struct collected c;
		snprintf(id, sizeof id, "acct-%u", i);
		sid = stream_of("Account", id);
		assert_int_equal(version_of(*state, &sid), i % 3 + 1);
		c = read_all(*state, &sid, 1);
		assert_int_equal(c.events[0].type, i);
		free(c.events);
	}
}

static void stream_names_are_exact(void **state)
{
	/* type/id boundaries, binary ids with NULs, and prefixes all differ */
	static const uint8_t bin1[] = {0, 1, 2}, bin2[] = {0, 1, 2, 0};
	esr_stream_id a = stream_of("ab", "c"), b = stream_of("a", "bc");
	esr_stream_id c = {.type = "T", .id = bin1, .id_len = 3};
	esr_stream_id d = {.type = "T", .id = bin2, .id_len = 4};
	esr_stream_id e = stream_of("T", "x"), f = stream_of("U", "x");

	assert_int_equal(append_n(*state, &a, 0, 1, 1, NULL), ESR_OK);
	assert_int_equal(append_n(*state, &b, 0, 1, 2, NULL), ESR_OK);
	assert_int_equal(append_n(*state, &c, 0, 1, 3, NULL), ESR_OK);
	assert_int_equal(append_n(*state, &d, 0, 1, 4, NULL), ESR_OK);
	assert_int_equal(append_n(*state, &e, 0, 1, 5, NULL), ESR_OK);
	assert_int_equal(append_n(*state, &f, 0, 1, 6, NULL), ESR_OK);
	assert_int_equal(version_of(*state, &a), 1);
	assert_int_equal(version_of(*state, &b), 2);
	assert_int_equal(version_of(*state, &c), 3);
	assert_int_equal(version_of(*state, &d), 4);
	assert_int_equal(version_of(*state, &e), 5);
	assert_int_equal(version_of(*state, &f), 6);
}

/* --- limits and bad input: refused, and nothing appended ----------------------- */

static void limits_are_inclusive(void **state)
{
	esr_stream_id sid = stream_of("Blob", "b");
	uint8_t *big = calloc(1, ESR_PAYLOAD_MAX + 1);
	esr_event *many = calloc(ESR_APPEND_MAX + 1, sizeof *many);
	esr_event one = {.type = 1, .payload = big, .payload_len = ESR_PAYLOAD_MAX};
	char id[ESR_ID_MAX + 1];
	char type[ESR_TYPE_NAME_MAX + 2];
	esr_stream_id longest;

	assert_non_null(big);
	assert_non_null(many);
	big[ESR_PAYLOAD_MAX - 1] = 0x5a;
	assert_int_equal(esr_store_append(*state, &sid, 0, &one, 1, NULL), ESR_OK);
	one.payload_len = ESR_PAYLOAD_MAX + 1;
	assert_int_equal(esr_store_append(*state, &sid, 1, &one, 1, NULL), ESR_ETOOBIG);
	assert_int_equal(esr_store_append(*state, &sid, 1, many, ESR_APPEND_MAX + 1, NULL),
	                 ESR_ETOOBIG);
	assert_int_equal(esr_store_append(*state, &sid, 1, many, ESR_APPEND_MAX, NULL),
	                 ESR_OK);
	assert_int_equal(version_of(*state, &sid), 1 + ESR_APPEND_MAX);

	memset(id, 'i', sizeof id);
	memset(type, 'T', sizeof type);
	type[ESR_TYPE_NAME_MAX] = '\0';
	longest = (esr_stream_id){.type = type, .id = id, .id_len = ESR_ID_MAX};
	assert_int_equal(append_n(*state, &longest, 0, 1, 1, NULL), ESR_OK);
	longest.id_len = ESR_ID_MAX + 1;
	assert_int_equal(append_n(*state, &longest, ESR_VERSION_ANY, 1, 1, NULL), ESR_ETOOBIG);
	longest.id_len = ESR_ID_MAX;
	type[ESR_TYPE_NAME_MAX] = 'T';
	type[ESR_TYPE_NAME_MAX + 1] = '\0';
	assert_int_equal(append_n(*state, &longest, ESR_VERSION_ANY, 1, 1, NULL), ESR_ETOOBIG);
	type[ESR_TYPE_NAME_MAX] = '\0';
	assert_int_equal(version_of(*state, &longest), 1);
	free(big);
	free(many);
}

static void bad_arguments_are_refused_and_change_nothing(void **state)
{
	esr_store *s = *state;
	esr_stream_id sid = stream_of("Account", "bad"), bad;
	esr_event ev = {.type = 1, .payload = "p", .payload_len = 1};
	esr_event nullpay = {.type = 1, .payload = NULL, .payload_len = 3};
	esr_append_result r = {.status = ESR_OK, .version = 99};
	uint64_t v;

	assert_int_equal(esr_store_append(NULL, &sid, 0, &ev, 1, &r), ESR_EINVAL);
	assert_int_equal(r.status, ESR_EINVAL);
	assert_int_equal(esr_store_append(s, NULL, 0, &ev, 1, &r), ESR_EINVAL);
	assert_int_equal(esr_store_append(s, &sid, 0, NULL, 1, &r), ESR_EINVAL);
	assert_int_equal(esr_store_append(s, &sid, 0, &ev, 0, &r), ESR_EINVAL);
	assert_int_equal(esr_store_append(s, &sid, 0, &nullpay, 1, &r), ESR_EINVAL);
	bad = sid;
	bad.type = NULL;
	assert_int_equal(esr_store_append(s, &bad, 0, &ev, 1, &r), ESR_EINVAL);
	bad.type = "";
	assert_int_equal(esr_store_append(s, &bad, 0, &ev, 1, &r), ESR_EINVAL);
	bad.type = "Bank Account";
	assert_int_equal(esr_store_append(s, &bad, 0, &ev, 1, &r), ESR_EINVAL);
	bad.type = "Tab\tbed";
	assert_int_equal(esr_store_append(s, &bad, 0, &ev, 1, &r), ESR_EINVAL);
	bad = sid;
	bad.id = NULL;
	assert_int_equal(esr_store_append(s, &bad, 0, &ev, 1, &r), ESR_EINVAL);
	bad = sid;
	bad.id_len = 0;
	assert_int_equal(esr_store_append(s, &bad, 0, &ev, 1, &r), ESR_EINVAL);
	assert_int_equal(esr_store_append_async(s, &sid, 0, &ev, 1, NULL, NULL), ESR_EINVAL);

	assert_int_equal(esr_store_read(NULL, &sid, 0, collect, NULL), ESR_EINVAL);
	assert_int_equal(esr_store_read(s, NULL, 0, collect, NULL), ESR_EINVAL);
	assert_int_equal(esr_store_read(s, &sid, 0, NULL, NULL), ESR_EINVAL);
	assert_int_equal(esr_store_read(s, &bad, 0, collect, NULL), ESR_EINVAL);
	assert_int_equal(esr_store_version(NULL, &sid, &v), ESR_EINVAL);
	assert_int_equal(esr_store_version(s, &sid, NULL), ESR_EINVAL);
	assert_int_equal(esr_store_version(s, &bad, &v), ESR_EINVAL);
	assert_int_equal(version_of(s, &sid), 0);
}

/* --- asynchronous completion --------------------------------------------------------- */

struct completion {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;
	esr_append_result result;
};

static void completed(void *ctx, const esr_append_result *r)
{
	struct completion *c = ctx;

	pthread_mutex_lock(&c->lock);
	c->calls++;
	c->result = *r;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void await_completion(struct completion *c)
{
	pthread_mutex_lock(&c->lock);
	while (c->calls == 0)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

static void async_append_completes_exactly_once(void **state)
{
	esr_stream_id sid = stream_of("Account", "async");
	esr_event ev = {.type = 1};
	struct completion c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}};

	assert_int_equal(esr_store_append_async(*state, &sid, 0, &ev, 1, completed, &c), ESR_OK);
	await_completion(&c);
	assert_int_equal(c.result.status, ESR_OK);
	assert_int_equal(c.result.version, 1);
	c.calls = 0;
	assert_int_equal(esr_store_append_async(*state, &sid, 0, &ev, 1, completed, &c), ESR_OK);
	await_completion(&c);
	assert_int_equal(c.result.status, ESR_ECONFLICT);
	assert_int_equal(c.result.version, 1);
	assert_int_equal(c.calls, 1);
}

/* --- concurrency ------------------------------------------------------------------------ */

/* Every event written by the concurrent tests says who wrote it and where. */
struct tag {
	uint32_t writer, batch, index, size, check;
};

static uint32_t tag_check(const struct tag *t)
{
	return (t->writer * 2654435761u) ^ (t->batch * 40503u) ^ (t->index << 16) ^ t->size;
}

/* More writers than this machine has cores: publication waits reach the
 * sleeping fallback (a descheduled writer holds up the ones behind it). */
enum { WRITERS = 8, BATCHES = 1500 };

struct appender {
	esr_store *store;
	const esr_stream_id *sid;
	uint32_t writer;
	int checked; /* expected version (retry on conflict) vs ESR_VERSION_ANY */
	uint32_t conflicts;
	pthread_barrier_t *go; /* all start together, or they hardly overlap */
};

static void *append_batches(void *arg)
{
	struct appender *a = arg;
	struct tag tags[4];
	esr_event ev[4];
	uint32_t b, i, size;

	pthread_barrier_wait(a->go);
	for (b = 0; b < BATCHES; b++) {
		size = b % 4 + 1;
		for (i = 0; i < size; i++) {
			tags[i] = (struct tag){a->writer, b, i, size, 0};
			tags[i].check = tag_check(&tags[i]);
			ev[i] = (esr_event){.type = a->writer, .payload = &tags[i],
			                    .payload_len = sizeof tags[i]};
		}
		for (;;) {
			uint64_t v = ESR_VERSION_ANY;
			esr_status st;
			if (a->checked)
				THREAD_CHECK(esr_store_version(a->store, a->sid, &v) == ESR_OK);
			st = esr_store_append(a->store, a->sid, v, ev, size, NULL);
			if (st == ESR_OK)
				break;
			THREAD_CHECK(st == ESR_ECONFLICT && a->checked);
			if (st != ESR_ECONFLICT)
				return NULL;
			a->conflicts++;
		}
	}
	return NULL;
}

struct watcher {
	esr_store *store;
	const esr_stream_id *sid;
	volatile int *stop;
	unsigned reads;
	struct tag last;
	uint64_t expect;
	int torn;
};

/* Checks, during a read, that versions run on and batches arrive whole. */
static esr_status watch_event(void *ctx, const esr_recorded_event *rec)
{
	struct watcher *w = ctx;

	if (rec->version != w->expect++ || rec->event.payload_len != sizeof w->last)
		w->torn = 1;
	memcpy(&w->last, rec->event.payload, sizeof w->last);
	if (w->last.check != tag_check(&w->last))
		w->torn = 1;
	return ESR_OK;
}

static void *watch(void *arg)
{
	struct watcher *w = arg;

	while (!__atomic_load_n(w->stop, __ATOMIC_ACQUIRE)) {
		w->expect = 1;
		THREAD_CHECK(esr_store_read(w->store, w->sid, 1, watch_event, w) == ESR_OK);
		/* whatever the read saw must end on the last event of a batch */
		if (w->expect > 1 && w->last.index + 1 != w->last.size)
			w->torn = 1;
		w->reads++;
	}
	return NULL;
}

/* Every batch exactly once, whole, contiguous, in each writer's order. */
static void check_log(esr_store *s, const esr_stream_id *sid)
{
	struct collected c = {0};
	uint32_t next_batch[WRITERS] = {0};
	uint64_t total = 0, i;
	struct tag t;

	for (i = 0; i < BATCHES; i++)
		total += i % 4 + 1;
	total *= WRITERS;
	assert_int_equal(version_of(s, sid), total);
	assert_int_equal(esr_store_read(s, sid, 1, collect, &c), ESR_OK);
	assert_int_equal(c.count, total);
	for (i = 0; i < total;) {
		uint32_t k;
		memcpy(&t, c.events[i].payload, sizeof t);
		assert_int_equal(t.check, tag_check(&t));
		assert_true(t.writer < WRITERS);
		assert_int_equal(t.batch, next_batch[t.writer]);
		assert_int_equal(t.index, 0);
		for (k = 0; k < t.size; k++) {
			struct tag u;
			assert_int_equal(c.events[i + k].version, i + k + 1);
			memcpy(&u, c.events[i + k].payload, sizeof u);
			assert_int_equal(u.writer, t.writer);
			assert_int_equal(u.batch, t.batch);
			assert_int_equal(u.index, k);
		}
		next_batch[t.writer]++;
		i += t.size;
	}
	for (i = 0; i < WRITERS; i++)
		assert_int_equal(next_batch[i], BATCHES);
	free(c.events);
}

static void concurrent_appenders(esr_store *s, int checked)
{
	esr_stream_id sid = stream_of("Hot", checked ? "checked" : "any");
	struct appender a[WRITERS];
	pthread_t t[WRITERS], tw;
	volatile int stop = 0;
	struct watcher w = {.store = s, .sid = &sid, .stop = &stop};
	pthread_barrier_t go;
	uint32_t i, conflicts = 0;

	conformance_thread_failures = 0;
	pthread_barrier_init(&go, NULL, WRITERS);
	pthread_create(&tw, NULL, watch, &w);
	for (i = 0; i < WRITERS; i++) {
		a[i] = (struct appender){s, &sid, i, checked, 0, &go};
		pthread_create(&t[i], NULL, append_batches, &a[i]);
	}
	for (i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		conflicts += a[i].conflicts;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(tw, NULL);
	pthread_barrier_destroy(&go);
	assert_int_equal(conformance_thread_failures, 0);
	assert_false(w.torn);
	assert_true(w.reads > 0);
	check_log(s, &sid);
	print_message("    %s: %u conflicts retried, %u concurrent reads checked\n",
	              checked ? "expected version" : "ESR_VERSION_ANY", conflicts, w.reads);
}

static void concurrent_appenders_with_expected_versions(void **state)
{
	concurrent_appenders(*state, 1);
}

static void concurrent_appenders_with_any_version(void **state)
{
	concurrent_appenders(*state, 0);
}

struct creator {
	esr_store *store;
	pthread_barrier_t *go;
	int ok;
};

static void *create_same_stream(void *arg)
{
	struct creator *c = arg;
	esr_stream_id sid = stream_of("Fresh", "same");
	esr_event ev = {.type = 1};
	int i;

	pthread_barrier_wait(c->go);
	for (i = 0; i < 50; i++)
		c->ok += esr_store_append(c->store, &sid, ESR_VERSION_ANY, &ev, 1, NULL) == ESR_OK;
	return NULL;
}

static void racing_creators_share_one_stream(void **state)
{
	esr_stream_id sid = stream_of("Fresh", "same");
	struct creator c[WRITERS];
	pthread_barrier_t go;
	pthread_t t[WRITERS];
	int i;

	pthread_barrier_init(&go, NULL, WRITERS);
	for (i = 0; i < WRITERS; i++) {
		c[i] = (struct creator){*state, &go, 0};
		pthread_create(&t[i], NULL, create_same_stream, &c[i]);
	}
	for (i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].ok, 50);
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(version_of(*state, &sid), WRITERS * 50);
}

/* Streams created while other threads look existing ones up: lookups must
 * stay right while a backend grows its index (ck_hs tables, for memory). */
enum { KNOWN = 64, CREATED_PER_THREAD = 6000 };

struct grower {
	esr_store *store;
	int id;
	volatile int *stop;
	unsigned lookups;
};

static void *create_streams(void *arg)
{
	struct grower *g = arg;
	esr_event ev = {.type = 1};
	char id[32];
	int i;

	for (i = 0; i < CREATED_PER_THREAD; i++) {
		esr_stream_id sid;
		snprintf(id, sizeof id, "grow-%d-%d", g->id, i);
		sid = stream_of("Grow", id);
		THREAD_CHECK(esr_store_append(g->store, &sid, 0, &ev, 1, NULL) == ESR_OK);
	}
	return NULL;
}

static void *look_up_known(void *arg)
{
	struct grower *g = arg;
	char id[32];

	while (!__atomic_load_n(g->stop, __ATOMIC_ACQUIRE)) {
		int k = (int)(g->lookups++ % KNOWN);
		esr_stream_id sid;
		uint64_t v = 0;
		snprintf(id, sizeof id, "known-%d", k);
		sid = stream_of("Grow", id);
		THREAD_CHECK(esr_store_version(g->store, &sid, &v) == ESR_OK);
		THREAD_CHECK(v == (uint64_t)(k % 3 + 1));
	}
	return NULL;
}

static void lookups_stay_right_while_streams_are_created(void **state)
{
	struct grower g[4];
	pthread_t t[4];
	volatile int stop = 0;
	char id[32];
	int i;

	for (i = 0; i < KNOWN; i++) {
		esr_stream_id sid;
		snprintf(id, sizeof id, "known-%d", i);
		sid = stream_of("Grow", id);
		assert_int_equal(append_n(*state, &sid, 0, 1, (size_t)(i % 3 + 1), NULL), ESR_OK);
	}
	conformance_thread_failures = 0;
	for (i = 0; i < 4; i++) {
		g[i] = (struct grower){*state, i, &stop, 0};
		pthread_create(&t[i], NULL, i < 2 ? create_streams : look_up_known, &g[i]);
	}
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(t[2], NULL);
	pthread_join(t[3], NULL);
	assert_int_equal(conformance_thread_failures, 0);
	assert_true(g[2].lookups + g[3].lookups > 0);
	for (i = 0; i < CREATED_PER_THREAD; i += 997) {
		esr_stream_id sid;
		snprintf(id, sizeof id, "grow-1-%d", i);
		sid = stream_of("Grow", id);
		assert_int_equal(version_of(*state, &sid), 1);
	}
}

/* Sizes around every boundary a backend might keep small payloads by. */
static const uint32_t sizes[] = {0, 1, 7, 8, 15, 16, 17, 24, 31, 32, 33, 64, 200, 4096};
enum { N = sizeof sizes / sizeof sizes[0] };

/* Event v (and v + N) has type i + 1 and sizes[i] bytes (i * 31 + j). */
static esr_status check_sizes(void *ctx, const esr_recorded_event *rec)
{
	size_t i = (size_t)((rec->version - 1) % N), j;
	const uint8_t *p = rec->event.payload;
	int *seen = ctx;

	if (rec->event.type != i + 1 || rec->event.payload_len != sizes[i] ||
	    (sizes[i] != 0 && p == NULL))
		return ESR_ECORRUPT;
	for (j = 0; j < sizes[i]; j++)
		if (p[j] != (uint8_t)(i * 31 + j))
			return ESR_ECORRUPT;
	++*seen;
	return ESR_OK;
}

static void payloads_of_every_size_round_trip(void **state)
{
	esr_stream_id sid = stream_of("Blob", "sizes");
	static uint8_t bytes[N][4096];
	esr_event ev[N];
	size_t i, j;
	int seen = 0;

	for (i = 0; i < N; i++) {
		for (j = 0; j < sizes[i]; j++)
			bytes[i][j] = (uint8_t)(i * 31 + j);
		ev[i] = (esr_event){.type = (uint32_t)i + 1, .payload = sizes[i] ? bytes[i] : NULL,
		                    .payload_len = sizes[i]};
	}
	/* one batch of all sizes, then each size alone */
	assert_int_equal(esr_store_append(*state, &sid, 0, ev, N, NULL), ESR_OK);
	for (i = 0; i < N; i++)
		assert_int_equal(esr_store_append(*state, &sid, N + i, &ev[i], 1, NULL), ESR_OK);
	assert_int_equal(esr_store_read(*state, &sid, 0, check_sizes, &seen), ESR_OK);
	assert_int_equal(seen, 2 * N);
}

/*
 * A backend with resolve/append_resolved: appends through the handle and by
 * id go to one stream with one version sequence, conflicts included.
 */
static void resolved_appends_match_appends_by_id(void **state)
{
	esr_stream_id sid = stream_of("Account", "resolved");
	esr_event ev = {.type = 9, .payload = "by handle", .payload_len = 9};
	static const struct completion fresh = {PTHREAD_MUTEX_INITIALIZER,
	                                        PTHREAD_COND_INITIALIZER, 0, {0}};
	struct completion c = fresh;
	struct collected got;
	void *handle = NULL;

	assert_int_equal(esr__store_resolve(*state, &sid, &handle), ESR_OK);
	if (handle == NULL)
		skip(); /* the backend appends by id only */
	assert_int_equal(version_of(*state, &sid), 0); /* resolved, still empty */
	got = read_all(*state, &sid, 0);
	assert_int_equal(got.count, 0);
	free(got.events);
	assert_int_equal(esr__store_append_built(*state, &sid, handle, 0, &ev, 1, completed, &c),
	                 ESR_OK);
	await_completion(&c);
	assert_int_equal(c.result.status, ESR_OK);
	assert_int_equal(c.result.version, 1);
	assert_int_equal(append_n(*state, &sid, 1, 2, 2, NULL), ESR_OK); /* by id */
	c = fresh;
	assert_int_equal(esr__store_append_built(*state, &sid, handle, 1, &ev, 1, completed, &c),
	                 ESR_OK);
	await_completion(&c);
	assert_int_equal(c.result.status, ESR_ECONFLICT);
	assert_int_equal(c.result.version, 3);
	c = fresh;
	assert_int_equal(esr__store_append_built(*state, &sid, handle, ESR_VERSION_ANY, &ev, 1,
	                                         completed, &c), ESR_OK);
	await_completion(&c);
	assert_int_equal(c.result.status, ESR_OK);
	assert_int_equal(c.result.version, 4);
	got = read_all(*state, &sid, 0);
	assert_int_equal(got.count, 4);
	assert_int_equal(got.events[0].type, 9);
	assert_memory_equal(got.events[0].payload, "by handle", 9);
	assert_int_equal(got.events[1].type, 2);
	assert_int_equal(got.events[3].type, 9);
	free(got.events);
}

int esr_store_conformance_run(const struct store_backend *b)
{
#define T(name) cmocka_unit_test_setup_teardown(name, conformance_open, conformance_close)
	const struct CMUnitTest tests[] = {
		T(absent_stream_is_empty_at_version_0),
		T(versions_start_at_1_and_stay_contiguous),
		T(metadata_and_empty_payloads_round_trip),
		T(payloads_are_copied_at_append),
		T(stale_expected_version_conflicts_with_actual),
		T(absent_stream_conflicts_unless_expected_0),
		T(only_version_any_skips_the_check),
		T(any_version_appends_at_the_end),
		T(reads_start_at_any_version),
		T(visitor_can_stop_a_read),
		T(long_streams_cross_internal_boundaries),
		T(many_streams_are_independent),
		T(stream_names_are_exact),
		T(limits_are_inclusive),
		T(bad_arguments_are_refused_and_change_nothing),
		T(async_append_completes_exactly_once),
		T(concurrent_appenders_with_expected_versions),
		T(concurrent_appenders_with_any_version),
		T(racing_creators_share_one_stream),
		T(lookups_stay_right_while_streams_are_created),
		T(payloads_of_every_size_round_trip),
		T(resolved_appends_match_appends_by_id),
	};
#undef T
	char group[64];

	backend = b;
	snprintf(group, sizeof group, "store conformance: %s", b->name);
	return cmocka_run_group_tests_name(group, tests, NULL, NULL) +
	       esr_store_conformance_global(b) + esr_store_conformance_ids(b);
}
