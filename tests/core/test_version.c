/*
 * tests/core/test_version.c: esr_version() and esr_version_number() agree
 * with the macros of esr/version.h, and with the version the build read
 * from that header (ESR_BUILD_VERSION, passed in by tests/CMakeLists.txt).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

#include <esr/esr.h>

static void the_string_is_the_macros(void **state)
{
	char want[32];

	(void)state;
	snprintf(want, sizeof want, "%d.%d.%d", ESR_VERSION_MAJOR, ESR_VERSION_MINOR,
	         ESR_VERSION_PATCH);
	assert_non_null(esr_version());
	assert_string_equal(esr_version(), want);
}

static void the_number_is_the_macros(void **state)
{
	(void)state;
	assert_int_equal(ESR_VERSION_NUMBER,
	                 ESR_VERSION_MAJOR * 10000 + ESR_VERSION_MINOR * 100 + ESR_VERSION_PATCH);
	assert_int_equal(esr_version_number(), ESR_VERSION_NUMBER);
	/* each part fits its two digits, or the number would be ambiguous */
	assert_true(ESR_VERSION_MINOR >= 0 && ESR_VERSION_MINOR < 100);
	assert_true(ESR_VERSION_PATCH >= 0 && ESR_VERSION_PATCH < 100);
}

/* The build's PROJECT_VERSION (library SOVERSION, esr.pc, the CMake package). */
static void the_build_read_the_same_version(void **state)
{
	(void)state;
	assert_string_equal(esr_version(), ESR_BUILD_VERSION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_string_is_the_macros),
		cmocka_unit_test(the_number_is_the_macros),
		cmocka_unit_test(the_build_read_the_same_version),
	};

	return cmocka_run_group_tests_name("version", tests, NULL, NULL);
}
