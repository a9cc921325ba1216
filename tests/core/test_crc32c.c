/*
 * tests/core/test_crc32c.c: CRC-32C against published check values, the
 * instruction against the table on every length and alignment, and the
 * running form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* The catalogue check value and the iSCSI vectors (RFC 3720, B.4). */
static void check_values(crc_fn f)
{
	unsigned char buf[32];
	int i;

	assert_int_equal(f(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(f(0, "", 0), 0);
	memset(buf, 0, sizeof buf);
	assert_int_equal(f(0, buf, 32), 0x8A9136AAu);
	memset(buf, 0xff, sizeof buf);
	assert_int_equal(f(0, buf, 32), 0x62A8AB43u);
	for (i = 0; i < 32; i++)
		buf[i] = (unsigned char)i;
	assert_int_equal(f(0, buf, 32), 0x46DD794Eu);
	for (i = 0; i < 32; i++)
		buf[i] = (unsigned char)(31 - i);
	assert_int_equal(f(0, buf, 32), 0x113FDB5Cu);
}

static void table_matches_published_values(void **state)
{
	(void)state;
	check_values(esr__crc32c_table);
}

static void dispatch_matches_published_values(void **state)
{
	(void)state;
	check_values(esr__crc32c);
}

/* Every length to 300 at every alignment to 8, on random bytes. */
static void instruction_and_table_agree(void **state)
{
	unsigned char buf[320];
	size_t len, off;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	(void)state;
	for (len = 0; len < sizeof buf; len++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[len] = (unsigned char)x;
	}
	for (off = 0; off < 8; off++)
		for (len = 0; len + off <= 300; len++)
			assert_int_equal(esr__crc32c(0, buf + off, len),
			                 esr__crc32c_table(0, buf + off, len));
	if (!esr__crc32c_hardware())
		print_message("(no crc32 instruction here: both sides ran the table)\n");
}

/* crc(a || b) == crc(crc(a), b), split anywhere. */
static void running_form_concatenates(void **state)
{
	const char *text = "The quick brown fox jumps over the lazy dog, twice over.";
	size_t n = strlen(text), cut;
	uint32_t whole = esr__crc32c(0, text, n);

	(void)state;
	assert_int_equal(whole, esr__crc32c_table(0, text, n));
	for (cut = 0; cut <= n; cut++) {
		assert_int_equal(esr__crc32c(esr__crc32c(0, text, cut), text + cut, n - cut), whole);
		assert_int_equal(esr__crc32c_table(esr__crc32c_table(0, text, cut), text + cut,
		                                   n - cut), whole);
	}
}

/* A single flipped bit anywhere changes the value. */
static void every_bit_counts(void **state)
{
	unsigned char buf[64];
	uint32_t base;
	size_t i;
	int b;

	(void)state;
	for (i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	base = esr__crc32c(0, buf, sizeof buf);
	for (i = 0; i < sizeof buf; i++)
		for (b = 0; b < 8; b++) {
			buf[i] ^= (unsigned char)(1u << b);
			assert_int_not_equal(esr__crc32c(0, buf, sizeof buf), base);
			buf[i] ^= (unsigned char)(1u << b);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table_matches_published_values),
		cmocka_unit_test(dispatch_matches_published_values),
		cmocka_unit_test(instruction_and_table_agree),
		cmocka_unit_test(running_form_concatenates),
		cmocka_unit_test(every_bit_counts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
