/*
 * tests/store/test_store_memory_order.c: the memory store's global order
 * under racing appenders and readers (store/memory/memory_all.c). Appenders
 * take positions with a fetch-and-add and publish them one by one, so
 * readers that follow the order while it is being written must still see
 * positions 1, 2, ... without a gap or a repeat, each stream's versions in
 * order, every event whole, and a head that never moves back. The runs cross
 * blocks of the index (65 536 positions each), where appenders make the next
 * block while others append. And the store's chunk memory: a thread that
 * appends to several stores in turn cuts each store's chunks from that
 * store's own arena.
 */
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

#include <esr/esr.h>

#define APPENDERS 4
#define READERS 2
#define STREAMS 8 /* per appender, plus one all of them share */

static int appends_per_thread(void)
{
	const char *e = getenv("ESR_STRESS_COMMANDS"); /* CI's stress loops shrink it */
	int n = e ? atoi(e) : 0;

	return n > 0 && n < 20000 ? n : 20000;
}

struct appender {
	esr_store *s;
	int id, n;
	int failures;
};

/* Batches of 1..4 events, to the appender's own streams and (one batch in
 * five) to a stream they all share. */
static void *append_main(void *arg)
{
	struct appender *a = arg;
	esr_event ev[4];
	uint64_t payload[4];
	esr_append_result r;
	char id[16];
	int i, k, n, shared;

	for (i = 0; i < a->n; i++) {
		shared = i % 5 == 0;
		snprintf(id, sizeof id, shared ? "shared" : "a%d-%d", a->id, i % STREAMS);
		esr_stream_id sid = {"Order", id, strlen(id)};
		n = i % 4 + 1;
		for (k = 0; k < n; k++) {
			/* The payload names the appender, the batch and k, which a
			 * reader checks against the event's type. */
			payload[k] = ((uint64_t)a->id << 48) | ((uint64_t)i << 8) | (uint64_t)k;
			ev[k] = (esr_event){.type = (uint32_t)(k + 1), .payload = &payload[k],
			                    .payload_len = sizeof payload[k]};
		}
		if (esr_store_append(a->s, &sid, ESR_VERSION_ANY, ev, (size_t)n, &r) != ESR_OK ||
		    r.position == 0)
			a->failures++;
	}
	return NULL;
}

struct reader {
	esr_store *s;
	const int *stop;
	uint64_t next, last_head, seen;
	int failures;
	/* last version seen per stream, found by a small linear table */
	char names[APPENDERS * STREAMS + 1][16];
	uint64_t versions[APPENDERS * STREAMS + 1];
	int nstreams;
};

static uint64_t *version_of(struct reader *r, const char *id, size_t len)
{
	int i;

	for (i = 0; i < r->nstreams; i++)
		if (strlen(r->names[i]) == len && memcmp(r->names[i], id, len) == 0)
			return &r->versions[i];
	if (r->nstreams == APPENDERS * STREAMS + 1 || len >= sizeof r->names[0])
		return NULL;
	memcpy(r->names[r->nstreams], id, len);
	r->names[r->nstreams][len] = '\0';
	r->versions[r->nstreams] = 0;
	return &r->versions[r->nstreams++];
}

static esr_status visit(void *ctx, const esr_recorded_event *e)
{
	struct reader *r = ctx;
	uint64_t *v = version_of(r, e->stream.id, e->stream.id_len), p;

	if (e->position != r->next + r->seen || v == NULL || e->version != *v + 1 ||
	    e->event.payload_len != sizeof p) {
		r->failures++;
		return ESR_EIO; /* stop at the first wrong event */
	}
	memcpy(&p, e->event.payload, sizeof p);
	if ((p & 0xff) + 1 != e->event.type) /* event k of its batch has type k + 1 */
		r->failures++;
	*v = e->version;
	r->seen++;
	return ESR_OK;
}

/* Follow the order until told to stop, then read to the end once more. */
static void *read_main(void *arg)
{
	struct reader *r = arg;
	uint64_t head, next;
	int last = 0;

	r->next = 1;
	while (r->failures == 0) {
		last = __atomic_load_n(r->stop, __ATOMIC_ACQUIRE);
		if (esr_store_head(r->s, &head) != ESR_OK || head < r->last_head)
			r->failures++;
		r->last_head = head;
		r->seen = 0;
		if (esr_store_read_all(r->s, r->next, 1000, visit, r, &next) != ESR_OK ||
		    next != r->next + r->seen)
			r->failures++;
		r->next = next;
		if (last && next > head)
			break;
		if (r->seen == 0)
			sched_yield(); /* nothing new: let an appender run */
	}
	return NULL;
}

static void readers_follow_racing_appenders_without_a_gap(void **state)
{
	struct appender a[APPENDERS];
	struct reader *r[READERS];
	pthread_t ta[APPENDERS], tr[READERS];
	int n = appends_per_thread(), stop = 0, i;
	uint64_t head, total = 0;
	esr_store *s;

	(void)state;
	assert_int_equal(esr_memory_store_open(&s), ESR_OK);
	for (i = 0; i < READERS; i++) {
		r[i] = calloc(1, sizeof *r[i]);
		assert_non_null(r[i]);
		r[i]->s = s;
		r[i]->stop = &stop;
		assert_int_equal(pthread_create(&tr[i], NULL, read_main, r[i]), 0);
	}
	for (i = 0; i < APPENDERS; i++) {
		a[i] = (struct appender){s, i, n, 0};
		assert_int_equal(pthread_create(&ta[i], NULL, append_main, &a[i]), 0);
	}
	for (i = 0; i < APPENDERS; i++) {
		pthread_join(ta[i], NULL);
		assert_int_equal(a[i].failures, 0);
		total += (uint64_t)(n / 4) * 10 + (uint64_t)(n % 4) * (uint64_t)(n % 4 + 1) / 2;
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	assert_int_equal(esr_store_head(s, &head), ESR_OK);
	assert_int_equal(head, total); /* every event has a position, none twice */
	for (i = 0; i < READERS; i++) {
		pthread_join(tr[i], NULL);
		assert_int_equal(r[i]->failures, 0);
		assert_int_equal(r[i]->next, total + 1); /* read to the end */
		free(r[i]);
	}
	esr_store_close(s);
}

/* Counts the events of one stream read back and checks each one's payload. */
static esr_status count_own(void *ctx, const esr_recorded_event *e)
{
	uint64_t *n = ctx, p;

	if (e->event.payload_len != sizeof p)
		return ESR_EIO;
	memcpy(&p, e->event.payload, sizeof p);
	if (p != e->version)
		return ESR_EIO;
	(*n)++;
	return ESR_OK;
}

/*
 * One thread appends to more stores than it keeps slabs for
 * (memory_arena.c), in turn, then closes them one by one: each store's
 * chunks must have come from its own arena, so the others still read back
 * whole after every close (a chunk cut from a closed store's memory would
 * be unmapped under them; under ASan a use after free).
 */
#define STORES 6
static void stores_in_turn_keep_their_own_memory(void **state)
{
	esr_store *s[STORES];
	uint64_t payload, n;
	int i, j, round;

	(void)state;
	for (i = 0; i < STORES; i++)
		assert_int_equal(esr_memory_store_open(&s[i]), ESR_OK);
	for (round = 0; round < 300; round++)
		for (i = 0; i < STORES; i++)
			for (j = 0; j < 8; j++) {
				char id[16];
				snprintf(id, sizeof id, "s%d", j);
				esr_stream_id sid = {"Turn", id, strlen(id)};
				payload = (uint64_t)round + 1; /* the event's version */
				esr_event ev = {.type = 1, .payload = &payload,
				                .payload_len = sizeof payload};
				assert_int_equal(esr_store_append(s[i], &sid, (uint64_t)round, &ev, 1,
				                                  NULL), ESR_OK);
			}
	for (i = 0; i < STORES; i++) {
		int k = (i * 7 + 3) % STORES; /* not in the order they were opened */
		esr_store_close(s[k]);
		s[k] = NULL;
		for (j = 0; j < STORES; j++) {
			esr_stream_id sid = {"Turn", "s7", 2};
			if (s[j] == NULL)
				continue;
			n = 0;
			assert_int_equal(esr_store_read(s[j], &sid, 1, count_own, &n), ESR_OK);
			assert_int_equal(n, 300);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(readers_follow_racing_appenders_without_a_gap),
		cmocka_unit_test(stores_in_turn_keep_their_own_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
