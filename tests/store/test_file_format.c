/*
 * tests/store/test_file_format.c: the file store's record and segment header
 * formats: round trips (with and without command ids), a CRC that covers
 * every bit, truncation at every byte, fields that cannot be, and the
 * segment formats read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/crc32c.h"
#include "store/file/file_format.h"

static esr_event event_of(uint32_t type, const void *payload, uint32_t len)
{
	esr_event ev = {.type = type, .payload = payload, .payload_len = len};

	ev.meta.timestamp_ns = 0x0102030405060708ull;
	for (int i = 0; i < 16; i++) {
		ev.meta.correlation_id.bytes[i] = (uint8_t)(0xa0 + i);
		ev.meta.causation_id.bytes[i] = (uint8_t)(0xc0 + i);
	}
	return ev;
}

static void records_round_trip(void **state)
{
	static uint8_t payload[5000], buf[6000];
	const uint32_t sizes[] = {0, 1, 16, 17, 255, 4999};
	esr_stream_id sid = {"BankAccount", "acct-\x00\xff-7", 10};
	struct esr__rec r;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 13);
	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		esr_event ev = event_of(7 + (uint32_t)i, sizes[i] ? payload : NULL, sizes[i]);
		n = esr__rec_encode(buf, &sid, &ev, 42 + i, 1000 + i, (uint16_t)i, 6);
		assert_int_equal(n, esr__rec_size(&sid, &ev));
		assert_int_equal(esr__rec_decode(buf, n, &r), ESR__REC_OK);
		assert_int_equal(r.length, n);
		assert_int_equal(r.type_len, strlen(sid.type));
		assert_memory_equal(r.type, sid.type, r.type_len);
		assert_int_equal(r.id_len, sid.id_len);
		assert_memory_equal(r.id, sid.id, sid.id_len);
		assert_int_equal(r.version, 42 + i);
		assert_int_equal(r.position, 1000 + i);
		assert_int_equal(r.batch_index, i);
		assert_int_equal(r.batch_count, 6);
		assert_int_equal(r.event.type, ev.type);
		assert_int_equal(r.event.payload_len, sizes[i]);
		if (sizes[i])
			assert_memory_equal(r.event.payload, payload, sizes[i]);
		else
			assert_null(r.event.payload);
		assert_memory_equal(&r.event.meta, &ev.meta, sizeof ev.meta);
		/* trailing bytes are the next record's business */
		assert_int_equal(esr__rec_decode(buf, n + 100, &r), ESR__REC_OK);
		assert_int_equal(r.length, n);
	}
}

/* A command id travels with its event, between the aggregate id and the
 * payload, and costs nothing when absent. */
static void command_ids_round_trip(void **state)
{
	static uint8_t buf[512];
	char longest[ESR_COMMAND_ID_MAX];
	esr_stream_id sid = {"Order", "o-9", 3};
	esr_event ev = event_of(4, "pay", 3), none = event_of(4, "pay", 3);
	struct esr__rec r;
	size_t n;

	(void)state;
	memset(longest, 'q', sizeof longest);
	ev.command_id = (esr_command_id){longest, sizeof longest};
	n = esr__rec_encode(buf, &sid, &ev, 3, 8, 0, 1);
	assert_int_equal(n, esr__rec_size(&sid, &none) + ESR_COMMAND_ID_MAX);
	assert_int_equal(esr__rec_size(&sid, &none), ESR__REC_HEADER + 5 + 3 + 3);
	assert_int_equal(esr__rec_decode(buf, n, &r), ESR__REC_OK);
	assert_int_equal(r.event.command_id.len, ESR_COMMAND_ID_MAX);
	assert_memory_equal(r.event.command_id.bytes, longest, ESR_COMMAND_ID_MAX);
	assert_memory_equal(r.event.payload, "pay", 3);
	n = esr__rec_encode(buf, &sid, &none, 3, 8, 0, 1);
	assert_int_equal(esr__rec_decode(buf, n, &r), ESR__REC_OK);
	assert_null(r.event.command_id.bytes);
	assert_int_equal(r.event.command_id.len, 0);
	assert_int_equal(buf[84] | buf[85] | buf[86] | buf[87], 0); /* as in format 1 */
}

/* A command id longer than the limit, or bytes 86..87 set, is no record,
 * even with a CRC that matches. */
static void impossible_command_ids_are_bad(void **state)
{
	uint8_t buf[512];
	char id[ESR_COMMAND_ID_MAX + 1];
	esr_stream_id sid = {"Order", "o-8", 3};
	esr_event ev = event_of(1, "x", 1);
	struct esr__rec r;
	size_t n;

	(void)state;
	memset(id, 'z', sizeof id);
	ev.command_id = (esr_command_id){id, sizeof id}; /* encoded as given: one too long */
	n = esr__rec_encode(buf, &sid, &ev, 1, 1, 0, 1);
	assert_int_equal(esr__rec_decode(buf, n, &r), ESR__REC_BAD);
	ev.command_id.len = 5;
	n = esr__rec_encode(buf, &sid, &ev, 1, 1, 0, 1);
	buf[87] = 1;
	buf[0] ^= 0xff; /* a CRC put right below */
	{
		uint32_t crc = esr__crc32c(0, buf + 4, n - 4);
		for (int i = 0; i < 4; i++)
			buf[i] = (uint8_t)(crc >> (8 * i));
	}
	assert_int_equal(esr__rec_decode(buf, n, &r), ESR__REC_BAD);
}

/* One flipped bit anywhere in a record, header or payload, and it is refused. */
static void every_bit_is_covered(void **state)
{
	uint8_t buf[256];
	esr_stream_id sid = {"Order", "o-1", 3};
	esr_event ev = event_of(3, "payload bytes", 13);
	size_t n, i;
	struct esr__rec r;
	int b;

	(void)state;
	ev.command_id = (esr_command_id){"command-17", 10}; /* its bytes are covered too */
	n = esr__rec_encode(buf, &sid, &ev, 9, 77, 1, 2);
	for (i = 0; i < n; i++)
		for (b = 0; b < 8; b++) {
			buf[i] ^= (uint8_t)(1u << b);
			if (esr__rec_decode(buf, n, &r) == ESR__REC_OK)
				fail_msg("bit %d of byte %zu flipped, yet the record decoded", b, i);
			buf[i] ^= (uint8_t)(1u << b);
		}
	assert_int_equal(esr__rec_decode(buf, n, &r), ESR__REC_OK);
}

/* Cut anywhere: short, never a record. */
static void truncation_is_short(void **state)
{
	uint8_t buf[256];
	esr_stream_id sid = {"Order", "o-2", 3};
	esr_event ev = event_of(3, "some payload", 12);
	size_t n, cut;
	struct esr__rec r;

	(void)state;
	ev.command_id = (esr_command_id){"cut-me", 6};
	n = esr__rec_encode(buf, &sid, &ev, 1, 1, 0, 1);
	for (cut = 0; cut < n; cut++)
		assert_int_equal(esr__rec_decode(buf, cut, &r), ESR__REC_SHORT);
}

/* A record whose CRC is right but whose fields cannot be is still refused. */
static void impossible_fields_are_bad(void **state)
{
	uint8_t buf[256];
	esr_stream_id sid = {"Order", "o-3", 3};
	esr_event ev = event_of(1, "x", 1);
	struct esr__rec r;

	(void)state;
	esr__rec_encode(buf, &sid, &ev, 0, 1, 0, 1); /* version 0 */
	assert_int_equal(esr__rec_decode(buf, sizeof buf, &r), ESR__REC_BAD);
	esr__rec_encode(buf, &sid, &ev, ESR_VERSION_ANY, 1, 0, 1);
	assert_int_equal(esr__rec_decode(buf, sizeof buf, &r), ESR__REC_BAD);
	esr__rec_encode(buf, &sid, &ev, 5, 1, 2, 2); /* index past the count */
	assert_int_equal(esr__rec_decode(buf, sizeof buf, &r), ESR__REC_BAD);
	esr__rec_encode(buf, &sid, &ev, 5, 1, 0, 0); /* empty batch */
	assert_int_equal(esr__rec_decode(buf, sizeof buf, &r), ESR__REC_BAD);
	memset(buf, 0, sizeof buf); /* zeros, as an extended file shows them */
	assert_int_equal(esr__rec_decode(buf, sizeof buf, &r), ESR__REC_BAD);
}

static void segment_headers_round_trip_and_check(void **state)
{
	uint8_t h[ESR__SEG_HEADER];
	uint64_t seq = 0;
	uint32_t format = 0;
	size_t i;
	int b;

	(void)state;
	esr__seg_header_encode(h, 123456789012ull);
	assert_int_equal(esr__seg_header_decode(h, &seq, &format), 0);
	assert_int_equal(seq, 123456789012ull);
	assert_int_equal(format, ESR__SEG_FORMAT);
	assert_int_equal(h[8], 2);
	for (i = 0; i < ESR__SEG_HEADER; i++)
		for (b = 0; b < 8; b++) {
			h[i] ^= (uint8_t)(1u << b);
			assert_int_not_equal(esr__seg_header_decode(h, &seq, &format), 0);
			h[i] ^= (uint8_t)(1u << b);
		}
}

/* Format 1 (before command ids) is read; formats 0 and 3 are not. */
static void segment_formats_read(void **state)
{
	const uint32_t formats[] = {0, 1, 2, 3};
	uint8_t h[ESR__SEG_HEADER];
	uint64_t seq;
	uint32_t format, crc;
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		esr__seg_header_encode(h, 5);
		h[8] = (uint8_t)formats[i];
		crc = esr__crc32c(0, h, 28);
		for (int k = 0; k < 4; k++)
			h[28 + k] = (uint8_t)(crc >> (8 * k));
		format = 99;
		assert_int_equal(esr__seg_header_decode(h, &seq, &format) == 0,
		                 formats[i] == 1 || formats[i] == 2);
		if (formats[i] == 1 || formats[i] == 2)
			assert_int_equal(format, formats[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(records_round_trip),
		cmocka_unit_test(command_ids_round_trip),
		cmocka_unit_test(impossible_command_ids_are_bad),
		cmocka_unit_test(every_bit_is_covered),
		cmocka_unit_test(truncation_is_short),
		cmocka_unit_test(impossible_fields_are_bad),
		cmocka_unit_test(segment_headers_round_trip_and_check),
		cmocka_unit_test(segment_formats_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
