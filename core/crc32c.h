/*
 * core/crc32c.h: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of the file store's records.
 *
 * esr__crc32c uses the CPU's crc32 instruction when it has one (x86-64 with
 * SSE4.2, checked once at run time) and a slicing-by-8 table otherwise; both
 * give the same value, which the tests check. The running form: start with
 * crc = 0, feed pieces in order, and the result is the CRC of their
 * concatenation ("123456789" gives 0xE3069283).
 */
#ifndef ESR_CORE_CRC32C_H
#define ESR_CORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t esr__crc32c(uint32_t crc, const void *data, size_t n);

/* The table version alone, and whether esr__crc32c uses the instruction. */
uint32_t esr__crc32c_table(uint32_t crc, const void *data, size_t n);
int esr__crc32c_hardware(void);

#endif /* ESR_CORE_CRC32C_H */
