/*
 * esr/status.h: status codes and the optimistic-conflict report.
 *
 * Every esr function that can fail returns an esr_status. ESR_OK is 0, so
 * `if (st != ESR_OK)` and `if (st)` both read naturally. The numeric values are
 * part of the ABI: new codes are only ever appended.
 */
#ifndef ESR_STATUS_H
#define ESR_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "esr/export.h"
#include "esr/limits.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum esr_status {
	ESR_OK = 0,
	ESR_EINVAL = 1,      /* an argument is NULL, empty or malformed */
	ESR_ENOMEM = 2,      /* an allocation failed; nothing was changed */
	ESR_ETOOBIG = 3,     /* an argument exceeds a documented limit (esr/limits.h) */
	ESR_ENOTYPE = 4,     /* the aggregate type name is not registered */
	ESR_EEXIST = 5,      /* the aggregate type name is already registered */
	ESR_ECONFLICT = 6,   /* optimistic check failed: the stream moved on (see esr_conflict) */
	ESR_EREJECTED = 7,   /* the command handler rejected the command (domain rule) */
	ESR_EBUSY = 8,       /* a bounded queue is full and the policy is to fail fast; a
	                        ticket not complete yet; a file store's directory held
	                        by another store */
	ESR_ESHUTDOWN = 9,   /* the object is stopping or stopped */
	ESR_EIO = 10,        /* an I/O error; the store may have failed as a whole */
	ESR_ECORRUPT = 11,   /* stored data failed an integrity check */
	ESR_ECANCELED = 12,  /* a caller's callback asked to stop early */
	ESR_ENOTSUP = 13,    /* the backend does not support this operation; a store
	                        vtable of another contract version */
	ESR_ETIMEDOUT = 14,  /* a wait ended before what it waited for happened */
	ESR_EUNKNOWN = 15,   /* the outcome is unknown: the write may or may not have taken
	                        effect (a database connection lost during its commit) */
	ESR_EDUPLICATE = 16  /* a store's answer to an append: a command id in it is already
	                        recorded for the stream, so nothing was appended (the
	                        runtime and repository turn it into ESR_OK, duplicate) */
} esr_status;

/*
 * esr_strerror: a stable, one-sentence English description of `status`.
 * Never returns NULL; an unknown value yields a generic sentence. The string is
 * static and must not be freed.
 */
ESR_API const char *esr_strerror(esr_status status);

/*
 * esr_status_name: the enumerator's name ("ESR_ECONFLICT"), for logs and tests.
 * Never returns NULL ("ESR_E?" for an unknown value).
 */
ESR_API const char *esr_status_name(esr_status status);

/*
 * The report of an optimistic append that failed for good: after `attempts`
 * runs of the handler the stream was still not at the version the last attempt
 * expected. It is a plain value (it owns copies of the type name and id), so
 * it stays valid after the call that filled it returns.
 */
typedef struct esr_conflict {
	char type[ESR_TYPE_NAME_MAX + 1]; /* aggregate type name, NUL-terminated */
	uint8_t id[ESR_ID_MAX];           /* aggregate id bytes (not NUL-terminated) */
	size_t id_len;
	uint64_t expected;                /* version the last attempt expected */
	uint64_t actual;                  /* version the store actually had */
	uint32_t attempts;                /* handler runs, first attempt included */
} esr_conflict;

/* Enough for any conflict's text form, NUL included. */
#define ESR_CONFLICT_TEXT_MAX 1280

/*
 * esr_conflict_format: writes the one-line text form into buf, e.g.
 *   esr: optimistic conflict: type=BankAccount id=acct-7 expected-version=2 actual-version=3 attempts=6
 * Id bytes that are not printable ASCII (or are a backslash) are written as
 * \xNN, so the line is always printable and unambiguous.
 * Returns ESR_EINVAL if conflict or buf is NULL or size is 0; ESR_ETOOBIG if
 * the text did not fit (buf then holds a NUL-terminated prefix); else ESR_OK.
 * A buffer of ESR_CONFLICT_TEXT_MAX bytes always fits.
 */
ESR_API esr_status esr_conflict_format(const esr_conflict *conflict, char *buf,
                                       size_t size);

#ifdef __cplusplus
}
#endif

#endif /* ESR_STATUS_H */
