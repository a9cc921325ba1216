/*
 * core/futex.h: sleep until a 32-bit word changes, and wake its sleepers
 * (Linux futexes, process-private). A wait returns when the word no longer
 * holds `expected`, when woken, or spuriously: callers re-check in a loop.
 * Includers define _GNU_SOURCE before any header, for syscall().
 */
#ifndef ESR_CORE_FUTEX_H
#define ESR_CORE_FUTEX_H

#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline void esr__futex_wait(uint32_t *word, uint32_t expected,
                                   const struct timespec *timeout)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, timeout, NULL, 0);
}

static inline void esr__futex_wake_all(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* The half of a 64-bit counter that changes first: a futex word for it. */
static inline uint32_t *esr__futex_low_word(uint64_t *counter)
{
	return (uint32_t *)counter + (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
}

#endif
