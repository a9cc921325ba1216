/* tests/core/test_status.c: status texts and the conflict's one-line form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <esr/esr.h>

static void every_status_has_its_own_name_and_sentence(void **state)
{
	esr_status a, b;

	(void)state;
	for (a = ESR_OK; a <= ESR_EUNKNOWN; a++) {
		assert_true(strlen(esr_strerror(a)) > 5);
		assert_string_not_equal(esr_status_name(a), "ESR_E?");
		for (b = ESR_OK; b < a; b++) {
			assert_string_not_equal(esr_strerror(a), esr_strerror(b));
			assert_string_not_equal(esr_status_name(a), esr_status_name(b));
		}
	}
	assert_string_equal(esr_status_name(ESR_ECONFLICT), "ESR_ECONFLICT");
	assert_string_equal(esr_strerror((esr_status)999), "unknown esr status code");
	assert_string_equal(esr_strerror((esr_status)-1), "unknown esr status code");
	assert_string_equal(esr_status_name((esr_status)999), "ESR_E?");
}

/* ESR_EBUSY means a full bounded queue and also a store directory that
 * another store holds: the sentence names both. */
static void busy_names_its_causes(void **state)
{
	(void)state;
	assert_non_null(strstr(esr_strerror(ESR_EBUSY), "queue is full"));
	assert_non_null(strstr(esr_strerror(ESR_EBUSY), "held by another"));
}

static esr_conflict sample(void)
{
	esr_conflict c = {.expected = 2, .actual = 3, .attempts = 6, .id_len = 6};

	strcpy(c.type, "BankAccount");
	memcpy(c.id, "acct-7", 6);
	return c;
}

static void conflict_formats_as_one_line(void **state)
{
	esr_conflict c = sample();
	char line[ESR_CONFLICT_TEXT_MAX];

	(void)state;
	assert_int_equal(esr_conflict_format(&c, line, sizeof line), ESR_OK);
	assert_string_equal(line, "esr: optimistic conflict: type=BankAccount id=acct-7 "
	                          "expected-version=2 actual-version=3 attempts=6");
}

static void conflict_escapes_unprintable_id_bytes(void **state)
{
	esr_conflict c = sample();
	char line[ESR_CONFLICT_TEXT_MAX];

	(void)state;
	memcpy(c.id, "a\0b c\\\xff", 7);
	c.id_len = 7;
	assert_int_equal(esr_conflict_format(&c, line, sizeof line), ESR_OK);
	assert_string_equal(line, "esr: optimistic conflict: type=BankAccount "
	                          "id=a\\x00b\\x20c\\x5c\\xff expected-version=2 "
	                          "actual-version=3 attempts=6");
	assert_null(strchr(line, '\n'));
}

static void conflict_of_maximal_size_fits_the_documented_buffer(void **state)
{
	esr_conflict c;
	char line[ESR_CONFLICT_TEXT_MAX];

	(void)state;
	memset(c.type, 'T', ESR_TYPE_NAME_MAX);
	c.type[ESR_TYPE_NAME_MAX] = '\0';
	memset(c.id, 0x01, ESR_ID_MAX); /* every byte escaped: 4 characters each */
	c.id_len = ESR_ID_MAX;
	c.expected = c.actual = UINT64_MAX;
	c.attempts = UINT32_MAX;
	assert_int_equal(esr_conflict_format(&c, line, sizeof line), ESR_OK);
	assert_true(strlen(line) < ESR_CONFLICT_TEXT_MAX);
	assert_non_null(strstr(line, "attempts=4294967295"));
}

static void conflict_format_reports_truncation_and_bad_arguments(void **state)
{
	esr_conflict c = sample();
	char small[20], line[ESR_CONFLICT_TEXT_MAX];

	(void)state;
	assert_int_equal(esr_conflict_format(&c, small, sizeof small), ESR_ETOOBIG);
	assert_int_equal(strlen(small), sizeof small - 1);
	assert_memory_equal(small, "esr: optimistic con", sizeof small - 1);
	assert_int_equal(esr_conflict_format(&c, line, 50), ESR_ETOOBIG);
	assert_int_equal(strlen(line), 49);
	assert_int_equal(esr_conflict_format(NULL, line, sizeof line), ESR_EINVAL);
	assert_int_equal(esr_conflict_format(&c, NULL, sizeof line), ESR_EINVAL);
	assert_int_equal(esr_conflict_format(&c, line, 0), ESR_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_status_has_its_own_name_and_sentence),
		cmocka_unit_test(busy_names_its_causes),
		cmocka_unit_test(conflict_formats_as_one_line),
		cmocka_unit_test(conflict_escapes_unprintable_id_bytes),
		cmocka_unit_test(conflict_of_maximal_size_fits_the_documented_buffer),
		cmocka_unit_test(conflict_format_reports_truncation_and_bad_arguments),
	};
	return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
