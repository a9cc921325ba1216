/* tests/runtime/test_emitter.c: the emitter unit (runtime/emitter.c) on its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "runtime/emitter.h"

static void payloads_survive_buffer_growth(void **state)
{
	esr_emitter em;
	const esr_event *ev;
	char payload[300];
	uint32_t i;

	(void)state;
	esr__emitter_init(&em);
	for (i = 0; i < 100; i++) { /* forces several reallocations of both arrays */
		memset(payload, (int)i, sizeof payload);
		assert_int_equal(esr_emit(&em, i, payload, i * 3), ESR_OK);
	}
	ev = esr__emitter_events(&em);
	assert_int_equal(em.count, 100);
	for (i = 0; i < 100; i++) {
		assert_int_equal(ev[i].type, i);
		assert_int_equal(ev[i].payload_len, i * 3);
		if (i == 0) {
			assert_null(ev[i].payload);
			continue;
		}
		memset(payload, (int)i, sizeof payload);
		assert_memory_equal(ev[i].payload, payload, i * 3);
		assert_true(ev[i].meta.timestamp_ns > 0);
	}
	esr__emitter_free(&em);
}

static void reset_keeps_buffers_and_clears_errors(void **state)
{
	esr_emitter em;
	uint8_t *bytes;

	(void)state;
	esr__emitter_init(&em);
	assert_int_equal(esr_emit(&em, 1, "abc", 3), ESR_OK);
	assert_int_equal(esr_emit(&em, 1, NULL, 2), ESR_EINVAL);
	/* sticky: a later, valid emit fails with the first error */
	assert_int_equal(esr_emit(&em, 1, "abc", 3), ESR_EINVAL);
	assert_int_equal(em.error, ESR_EINVAL);
	bytes = em.bytes;
	esr__emitter_reset(&em);
	assert_int_equal(em.count, 0);
	assert_int_equal(em.error, ESR_OK);
	assert_ptr_equal(em.bytes, bytes);
	assert_int_equal(esr_emit(&em, 2, "xy", 2), ESR_OK);
	assert_int_equal(em.count, 1);
	esr__emitter_free(&em);
}

static void limits_are_enforced(void **state)
{
	esr_emitter em;
	esr_event given = {.type = 3, .payload = "p", .payload_len = 1};
	int i;

	(void)state;
	esr__emitter_init(&em);
	assert_int_equal(esr_emit(&em, 1, "x", (size_t)ESR_PAYLOAD_MAX + 1), ESR_ETOOBIG);
	esr__emitter_reset(&em);
	assert_int_equal(esr_emit(&em, 1, "x", (size_t)UINT32_MAX + 2), ESR_ETOOBIG);
	esr__emitter_reset(&em);
	for (i = 0; i < ESR_APPEND_MAX; i++)
		assert_int_equal(esr_emit(&em, 1, NULL, 0), ESR_OK);
	assert_int_equal(esr_emit(&em, 1, NULL, 0), ESR_ETOOBIG);
	esr__emitter_reset(&em);
	assert_int_equal(esr_emit_event(&em, NULL), ESR_EINVAL);
	esr__emitter_reset(&em);
	given.meta.timestamp_ns = 77;
	assert_int_equal(esr_emit_event(&em, &given), ESR_OK);
	assert_int_equal(esr__emitter_events(&em)[0].meta.timestamp_ns, 77);
	esr__emitter_free(&em);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(payloads_survive_buffer_growth),
		cmocka_unit_test(reset_keeps_buffers_and_clears_errors),
		cmocka_unit_test(limits_are_enforced),
	};
	return cmocka_run_group_tests_name("emitter", tests, NULL, NULL);
}
