/*
 * core/internal.h: argument checks and small helpers shared by every part of
 * the library. Internal names carry the esr__ prefix and are hidden from the
 * shared library's symbol table. docs/architecture.md has the map.
 */
#ifndef ESR_CORE_INTERNAL_H
#define ESR_CORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include "esr/esr.h"

/* A type name: 1..ESR_TYPE_NAME_MAX printable ASCII bytes, no spaces. */
esr_status esr__check_type_name(const char *name);

/* A stream id: a valid type name and 1..ESR_ID_MAX id bytes. */
esr_status esr__check_stream(const esr_stream_id *stream);
/* An aggregate id: ESR_EINVAL if NULL or empty, ESR_ETOOBIG past ESR_ID_MAX. */
esr_status esr__check_id(const void *id, size_t id_len);

/* A batch to append: 1..ESR_APPEND_MAX well-formed events. */
esr_status esr__check_events(const esr_event *events, size_t n);

/* A command id: ESR_OK for {NULL, 0} (none) and 1..ESR_COMMAND_ID_MAX bytes;
 * ESR_EINVAL for any other NULL or empty combination, ESR_ETOOBIG if longer. */
esr_status esr__check_command_id(const esr_command_id *id);

/* Whether two command ids are the same bytes (two "none" are the same). */
int esr__command_id_equal(const esr_command_id *a, const esr_command_id *b);

/* Whether event i starts a run of events carrying one command id (a
 * command's events, in an append: esr/store.h). */
int esr__command_run_starts(const esr_event *events, size_t i);

/* Whether any of events[0..n) carries a command id. */
int esr__events_have_ids(const esr_event *events, size_t n);

/* Wall-clock nanoseconds since the Unix epoch (event timestamps). */
uint64_t esr__now_ns(void);

/* Monotonic milliseconds (timeouts); unrelated to the wall clock. */
uint64_t esr__now_ms(void);

/*
 * Monotonic milliseconds at the kernel tick's resolution (a few ms behind
 * esr__now_ms at most), for an actor's idle stamp and the janitor that reads
 * it: a worker stamps every actor that goes idle, and this clock reads what
 * the tick stored instead of the timestamp counter. Compare its readings
 * only with each other.
 */
uint64_t esr__coarse_ms(void);

/* Sleep ms milliseconds (through signals). */
void esr__sleep_ms(unsigned ms);

/* A monotonic deadline ms from now, for pthread_cond_timedwait on a
 * CLOCK_MONOTONIC condition variable (esr__cond_init_monotonic). */
struct timespec;
void esr__deadline(struct timespec *ts, uint64_t ms);
/* Initialize a condition variable whose timed waits use CLOCK_MONOTONIC. */
void esr__cond_init_monotonic(pthread_cond_t *cond);

/* Append id bytes to buf at *at, escaping what is not plain printable ASCII
 * (\xNN). *at advances by the full length even past size; buf gets what fits,
 * not NUL-terminated. */
void esr__put_id(char *buf, size_t size, size_t *at, const uint8_t *id, size_t n);

/* core/why.c: printf fmt into why (size bytes, always NUL-terminated), if
 * why is not NULL and size not 0; a caller's optional buffer for the reason
 * of a failure. */
void esr__why(char *why, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* ESR_CORE_INTERNAL_H */
