/*
 * tests/runtime/test_ticket_pool.c: the pool ticket blocks are reused from
 * (runtime/ticket_pool.c), an internal unit reached through the static
 * library.
 *
 * What it must hold: a block given back is lent again, to one taker at a
 * time, however many threads take and give back at once; blocks larger
 * than the pooled sizes, and blocks past what a pool may own, are plain
 * memory; sizes that overflow are refused.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/sync.h"
#include "runtime/ticket_pool.h"

/* Without a double-width CAS every block is malloc's: nothing is pooled. */
#ifdef CK_F_PR_CAS_PTR_2_VALUE
#define POOLED 1
#else
#define POOLED 0
#endif

#define HEAD 32
#define STRIDE 80

static void reuses_what_is_given_back(void **state)
{
	uint32_t pool, again;
	void *b, *c;

	(void)state;
	if (!POOLED)
		skip();
	b = esr__ticket_pool_get(3, HEAD, STRIDE, 0, &pool);
	assert_non_null(b);
	assert_int_not_equal(pool, 0);
	memset(b, 0xab, HEAD + 4 * STRIDE); /* 3 rounds up to 4: all of it is ours */
	esr__ticket_pool_put(b, pool);
	c = esr__ticket_pool_get(4, HEAD, STRIDE, 0, &again); /* same class */
	assert_ptr_equal(c, b);
	assert_int_equal(again, pool);
	esr__ticket_pool_put(c, again);
	/* Another shape never gets it. */
	c = esr__ticket_pool_get(4, HEAD, STRIDE, 1, &again);
	assert_non_null(c);
	assert_ptr_not_equal(c, b);
	assert_int_not_equal(again, pool);
	esr__ticket_pool_put(c, again);
}

static void large_and_bad_sizes(void **state)
{
	uint32_t pool = 7;
	void *b;

	(void)state;
	b = esr__ticket_pool_get(ESR__POOL_TICKETS + 1, HEAD, STRIDE, 0, &pool);
	assert_non_null(b);
	assert_int_equal(pool, 0); /* malloc's, and free()d when given back */
	memset(b, 0, HEAD + (ESR__POOL_TICKETS + 1) * (size_t)STRIDE);
	esr__ticket_pool_put(b, pool);
	assert_null(esr__ticket_pool_get(0, HEAD, STRIDE, 0, &pool));
	assert_null(esr__ticket_pool_get(SIZE_MAX / 2, HEAD, STRIDE, 0, &pool));
}

/* A pool lends at most ESR__POOL_BYTES of blocks; past that, plain ones. */
static void bounded(void **state)
{
	enum { N = ESR__POOL_TICKETS, SHAPE = 3 };
	const size_t bytes = HEAD + (size_t)N * STRIDE, most = ESR__POOL_BYTES / bytes;
	void *b[ESR__POOL_BYTES / (HEAD + ESR__POOL_TICKETS * STRIDE) + 8];
	uint32_t tag[sizeof b / sizeof b[0]];
	size_t i, pooled = 0;

	(void)state;
	for (i = 0; i < sizeof b / sizeof b[0]; i++) {
		b[i] = esr__ticket_pool_get(N, HEAD, STRIDE, SHAPE, &tag[i]);
		assert_non_null(b[i]);
		memset(b[i], (int)i, bytes);
		pooled += tag[i] != 0;
	}
	assert_int_equal(pooled, POOLED ? most : 0);
	for (i = 0; i < sizeof b / sizeof b[0]; i++)
		esr__ticket_pool_put(b[i], tag[i]);
}

#define THREADS 4
#define ROUNDS 20000
#define HELD 8

/* Each thread holds up to HELD blocks at once, fills each with its own
 * pattern and checks it is still there before giving the block back: a
 * block lent to two threads at once shows as the other's bytes. */
static void *churn(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg, seed = id * 2654435761u + 1, r, k;
	struct {
		unsigned char *b;
		uint32_t tag;
		size_t len;
	} held[HELD] = {{0}};
	uintptr_t bad = 0;
	size_t i, n;

	for (r = 0; r < ROUNDS && bad == 0; r++) {
		seed = seed * 1103515245u + 12345u;
		k = (seed >> 16) % HELD;
		if (held[k].b != NULL) {
			for (i = 0; i < held[k].len; i++)
				bad |= held[k].b[i] != (unsigned char)(id + 1);
			esr__ticket_pool_put(held[k].b, held[k].tag);
			held[k].b = NULL;
		}
		n = 1 + (seed >> 8) % ESR__POOL_TICKETS;
		held[k].b = esr__ticket_pool_get(n, HEAD, STRIDE, 2, &held[k].tag);
		if (held[k].b == NULL)
			return (void *)(uintptr_t)2;
		held[k].len = HEAD + n * STRIDE;
		memset(held[k].b, (int)(id + 1), held[k].len);
	}
	for (k = 0; k < HELD; k++)
		if (held[k].b != NULL)
			esr__ticket_pool_put(held[k].b, held[k].tag);
	return (void *)bad;
}

static void one_taker_at_a_time(void **state)
{
	pthread_t t[THREADS];
	void *out;
	unsigned i;

	(void)state;
	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i), 0);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], &out), 0);
		assert_ptr_equal(out, NULL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reuses_what_is_given_back),
		cmocka_unit_test(large_and_bad_sizes),
		cmocka_unit_test(bounded),
		cmocka_unit_test(one_taker_at_a_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
