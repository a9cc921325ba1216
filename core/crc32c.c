/*
 * core/crc32c.c: CRC-32C by instruction or by table (see crc32c.h).
 *
 * The table is slicing-by-8: eight 256-entry tables, built once, let the loop
 * fold eight bytes per step with eight lookups. The hardware path feeds the
 * crc32 instruction eight bytes at a time; it is compiled for SSE4.2 through a
 * function attribute and only called after the CPU said it has it, so the
 * library itself still runs on any x86-64.
 */
#include <pthread.h>
#include <string.h>

#include "core/crc32c.h"

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (j = 1; j < 8; j++)
			table[j][i] = (table[j - 1][i] >> 8) ^ table[0][table[j - 1][i] & 0xff];
}

uint32_t esr__crc32c_table(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t w;

	pthread_once(&table_once, table_init);
	crc = ~crc;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	for (; n >= 8; n -= 8, p += 8) {
		memcpy(&w, p, 8);
		w ^= crc; /* little-endian: the CRC meets the first four bytes */
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
		      table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
		      table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
		      table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
	}
#endif
	while (n--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *data,
                                                                 size_t n)
{
	const unsigned char *p = data;
	uint64_t c = ~crc, w;

	for (; n >= 8; n -= 8, p += 8) {
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	while (n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

static int has_sse42(void)
{
	unsigned a, b, c, d;

	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
}
#else
static uint32_t crc32c_sse42(uint32_t crc, const void *data, size_t n)
{
	return esr__crc32c_table(crc, data, n);
}

static int has_sse42(void)
{
	return 0;
}
#endif

static int hardware = -1; /* unknown until first use */

int esr__crc32c_hardware(void)
{
	int h = __atomic_load_n(&hardware, __ATOMIC_RELAXED);

	if (h < 0) { /* every thread computes the same answer: a race is harmless */
		h = has_sse42();
		__atomic_store_n(&hardware, h, __ATOMIC_RELAXED);
	}
	return h;
}

uint32_t esr__crc32c(uint32_t crc, const void *data, size_t n)
{
	return esr__crc32c_hardware() ? crc32c_sse42(crc, data, n)
	                              : esr__crc32c_table(crc, data, n);
}
