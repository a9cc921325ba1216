/*
 * core/hash.h: a fast 64-bit hash of short byte strings (stream keys).
 * Not cryptographic: the memory store seeds it per store, which is enough to
 * keep one store's table layout from being predictable across runs.
 */
#ifndef ESR_CORE_HASH_H
#define ESR_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Final avalanche so every input bit affects every output bit. */
static inline uint64_t esr__hash_mix(uint64_t h)
{
	h ^= h >> 31;
	h *= 0x7fb5d329728ea185ULL;
	h ^= h >> 27;
	h *= 0x81dadef4bc2dd44dULL;
	h ^= h >> 33;
	return h;
}

/* Fold `n` bytes into running hash `h`, eight bytes a step. */
static inline uint64_t esr__hash_bytes(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t w;

	h ^= (uint64_t)n * 0x9e3779b97f4a7c15ULL;
	for (; n >= 8; n -= 8, p += 8) {
		memcpy(&w, p, 8);
		h = (h ^ esr__hash_mix(w)) * 0xc2b2ae3d27d4eb4fULL;
	}
	w = 0;
	memcpy(&w, p, n);
	return (h ^ esr__hash_mix(w ^ 0x165667b19e3779f9ULL)) * 0x9e3779b97f4a7c15ULL;
}

#endif /* ESR_CORE_HASH_H */
